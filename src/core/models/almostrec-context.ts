// What an ALMOSTREC run is built on (ModelContext.backbone), loaded from the catalog by the run config's
// references: the backbone (weights, tokenizer), M (the item_embeddings artifact of a finished SASRec or
// GRU4Rec run on the same dataset), every item's title tokens and, with images, the backbone's pooled visual
// tokens — computed now, with progress, for the items that have an image and nothing cached yet.
import { backboneImageEncoder } from '../backbone/image-encoder';
import { backboneTokenizer } from '../backbone/backbone-tokenizer';
import { backboneFeatureId, computeBackboneFeatures, readBackboneFeatures, uncachedItemsWithImage } from '../backbone/feature-cache';
import { loadHfCheckpoint, openHfCheckpoint } from '../backbone/hf-checkpoint';
import type { TokenPoolK } from '../backbone/image-token-pool';
import type { Catalog } from '../catalog';
import type { SequenceData } from '../data/types';
import type { CancelSignal, ProgressFn } from '../progress';
import { onSyncReadableBackend } from '../tensor/backend';
import { readSafetensorsHeader, readSafetensorsTensors } from '../tensor/safetensors';
import { ITEM_EMBEDDINGS_FORMAT } from '../train/item-embeddings';
import type { BackboneInputs, BackboneSource } from '../train/model-spec';
import { tokenPoolK, type AlmostrecConfig } from './almostrec-config';
import { tokenizeTitles } from './almostrec-prompt';
import { resolveAlmostrecReferences } from './almostrec-references';

/** M from an item_embeddings file, checked against the dataset's current item indexing (on its header, before reading). */
export function readItemTable(path: string, data: SequenceData): { values: Float32Array; dim: number } {
  const header = readSafetensorsHeader(path);
  const meta = header.metadata;
  const t = header.tensors.get('item_embeddings');
  if (meta.format !== ITEM_EMBEDDINGS_FORMAT || !t || t.dtype !== 'F32' || t.shape.length !== 2) {
    throw new Error(`${path}: not an item-embeddings file (format ${JSON.stringify(meta.format)})`);
  }
  if (Number(meta.datasetId) !== data.datasetId) throw new Error(`${path}: item embeddings of dataset ${meta.datasetId}, not ${data.datasetId}`);
  if (t.shape[0] !== data.numItems + 1 || meta.itemIds !== JSON.stringify(Array.from(data.itemIds))) {
    throw new Error(`${path}: its rows are not this dataset's items (${t.shape[0] - 1} vs ${data.numItems}); the dataset changed since the run`);
  }
  const values = readSafetensorsTensors(path, header, ['item_embeddings']).get('item_embeddings')!.data as Float32Array;
  return { values, dim: t.shape[1] };
}

/** Per item index, the cached visual tokens [k', dim] (null without an image), computing the missing ones. */
async function visualTokens(
  catalog: Catalog,
  backboneId: number,
  data: SequenceData,
  k: TokenPoolK,
  dim: number,
  onProgress?: ProgressFn,
  signal?: CancelSignal
): Promise<NonNullable<BackboneInputs['visual']>> {
  const itemIds = Array.from(data.itemIds.subarray(1));
  const cacheId = backboneFeatureId(String(backboneId), k);
  // The vision tower is loaded only when some item with an image has nothing cached yet (an image that
  // gave no tokens before is cached as such and not retried).
  // The encoder reads synchronously: on webgpu it runs on a CPU backend (the tokens are cached as arrays).
  if (uncachedItemsWithImage(catalog, cacheId, itemIds).length > 0) {
    await onSyncReadableBackend(async () => {
      const encoder = await backboneImageEncoder(catalog, backboneId, onProgress, signal);
      try {
        await computeBackboneFeatures(catalog, itemIds, encoder, k, onProgress, signal);
      } finally {
        encoder.dispose();
      }
    });
  }
  const feats = readBackboneFeatures(catalog, cacheId, itemIds);
  let tokensPerImage = 0;
  const tokens = Array.from(data.itemIds, (id, i) => {
    const f = i === 0 ? undefined : feats.get(id);
    if (!f) return null;
    if (f.dims[1] !== dim || (tokensPerImage && f.dims[0] !== tokensPerImage)) {
      throw new Error(`vision_features (${cacheId}): item ${id} has [${f.dims}], expected [${tokensPerImage || 'k'}, ${dim}]`);
    }
    tokensPerImage = f.dims[0];
    return f.tokens;
  });
  return { cacheId, tokensPerImage, dim, tokens };
}

/** BackboneInputs again from their cloneable source (a replica worker's copy): weights and tokenizer from the folder. */
export function reloadBackboneInputs(source: BackboneSource): BackboneInputs {
  const loaded = loadHfCheckpoint(source.backbone.path);
  return {
    ...source,
    backbone: { ...source.backbone, config: loaded.config, weights: loaded.weights },
    tokenizer: backboneTokenizer(source.backbone.path),
    dispose: () => {
      for (const t of loaded.weights.values()) t.dispose();
      loaded.weights.clear();
    }
  };
}

/** What loading reads of a run config: its references, and the visual tokens when it uses images (E4SRec never does). */
export type BackboneInputsConfig = Pick<AlmostrecConfig, 'backboneId'> & Partial<Pick<AlmostrecConfig, 'seqRunId' | 'useImages' | 'visualTokens'>>;

/** Loads ModelContext.backbone for an ALMOSTREC-family config on `data` (call dispose() when done). */
export async function loadBackboneInputs(
  catalog: Catalog,
  data: SequenceData,
  config: BackboneInputsConfig,
  onProgress?: ProgressFn,
  signal?: CancelSignal,
  /** The model's label, for the reference errors. */
  model = 'ALMOSTREC',
  /** An imported adapter's own M (its run's item_embeddings file): no sequential run of this catalog is read. */
  importedItemTable: { path: string; model: string } | null = null,
  /**
   * The backbone's weights already loaded by the caller (the inference worker shares one backbone between
   * the runs built on it): used as they are and left to the caller, so dispose() frees nothing.
   */
  shared?: Pick<BackboneInputs['backbone'], 'config' | 'weights'>
): Promise<BackboneInputs> {
  const refs = importedItemTable
    ? resolveAlmostrecReferences(catalog, data.datasetId, { backboneId: config.backboneId }, model)
    : resolveAlmostrecReferences(catalog, data.datasetId, config, model);
  const b = refs.backbone;
  const k = config.useImages ? tokenPoolK(config.visualTokens ?? 1) : null;
  onProgress?.({ phase: 'loading backbone', done: 0, total: 1 });
  const itemTable = importedItemTable
    ? { ...readItemTable(importedItemTable.path, data), runId: 0, model: importedItemTable.model, path: importedItemTable.path }
    : refs.seqRun && refs.itemEmbeddingsPath
      ? { ...readItemTable(refs.itemEmbeddingsPath, data), runId: refs.seqRun.id, model: refs.seqRun.model, path: refs.itemEmbeddingsPath }
      : null;
  const tokenizer = backboneTokenizer(b.path);
  const items = catalog.getItems(Array.from(data.itemIds.subarray(1)));
  const titleTokens = tokenizeTitles(
    tokenizer,
    Array.from(data.itemIds, (id, i) => (i === 0 ? '' : (items.get(id)?.title ?? '')))
  );
  const dim = openHfCheckpoint(b.path).config.text.hiddenSize;
  const visual = k !== null ? await visualTokens(catalog, b.id, data, k, dim, onProgress, signal) : null;
  // Last: the largest allocation, so nothing above can leak it.
  const loaded = shared ?? loadHfCheckpoint(b.path);
  onProgress?.({ phase: 'loading backbone', done: 1, total: 1 });
  return {
    backbone: { id: b.id, name: b.name, path: b.path, config: loaded.config, weights: loaded.weights },
    tokenizer,
    datasetName: catalog.getDataset(data.datasetId)?.name ?? String(data.datasetId),
    itemTable,
    titleTokens,
    visual,
    dispose: () => {
      if (shared) return;
      for (const t of loaded.weights.values()) t.dispose();
      loaded.weights.clear();
    }
  };
}
