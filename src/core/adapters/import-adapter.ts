// `almostrec import-adapter DIR` and the Adapters view's Import (issue 14 item 2): a bundle from another
// catalog becomes a finished run here — same kind, config and artifacts — once its dataset (fingerprint) and
// backbone (content hash) are found in this catalog. Its rows are this catalog's item order, so W^T's columns
// and M's rows are permuted by external id; M is stored as the run's own item table (no sequential run here).
// Files go to the new run's folder and the rows in one transaction: a refused or failed import leaves nothing.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { modelDescriptor, type ModelKind } from '../../shared/models';
import { openHfCheckpoint } from '../backbone/hf-checkpoint';
import { readJsonObject } from '../backbone/json-file';
import { loraModuleShapes } from '../backbone/lora';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, readPeftAdapter } from '../backbone/peft-adapter';
import type { Catalog } from '../catalog';
import { BACKBONE_NAME_KEY, runCheckpointDir, SEQ_RUN_MODEL_KEY } from '../jobs/run-jobs';
import { loraConfigOf, type AlmostrecConfig } from '../models/almostrec-config';
import { ALMOSTREC_MANIFEST_FILE, ALMOSTREC_TENSORS_FILE, LORA_DIR } from '../models/almostrec-export';
import { loraName } from '../models/almostrec-params';
import { readSafetensorsHeader, readSafetensorsTensors, writeSafetensors } from '../tensor/safetensors';
import { writeWeights, type ParamShapes } from '../train/checkpoint';
import type { TrainableKind } from '../train/model-spec';
import { BEST_FILE } from '../train/train-model';
import { ITEM_EMBEDDINGS_FILE, ITEM_EMBEDDINGS_FORMAT } from '../train/item-embeddings';
import { crashPoint } from '../crash-point';
import { fsError } from './atomic-folder';
import { BUNDLE_MANIFEST, BUNDLE_PEFT_DIR, bundleManifestSchema, type BundleManifest } from './bundle-manifest';
import { backboneContentHash, datasetFingerprint } from './fingerprints';

const short = (hash: string) => `${hash.slice(0, 12)}…`;

/** bundle.json, parsed and checked, and every file it lists checked against its sha256. */
export function readBundle(dir: string): BundleManifest {
  const path = join(dir, BUNDLE_MANIFEST);
  if (!existsSync(path)) throw new Error(`${path}: missing (not an adapter bundle? export one with --format bundle)`);
  const parsed = bundleManifestSchema.safeParse(readJsonObject(path));
  if (!parsed.success) throw new Error(`${path}: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'manifest'}: ${i.message}`).join('; ')}`);
  const m = parsed.data;
  for (const f of m.files) {
    const file = join(dir, f.path);
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch (e) {
      throw fsError(file, e);
    }
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== f.sha256) throw new Error(`${file}: sha256 ${short(actual)} differs from ${short(f.sha256)} in ${BUNDLE_MANIFEST} (damaged or edited)`);
  }
  if (!m.files.some((f) => f.path === ALMOSTREC_TENSORS_FILE)) throw new Error(`${path}: lists no ${ALMOSTREC_TENSORS_FILE}`);
  if (m.dataset.itemExternalIds.length !== m.dataset.numItems + 1) throw new Error(`${path}: dataset.itemExternalIds has ${m.dataset.itemExternalIds.length} entries, expected numItems + 1 = ${m.dataset.numItems + 1}`);
  return m;
}

/** The dataset of this catalog with the bundle's fingerprint; refused naming both fingerprints. */
function matchDataset(catalog: Catalog, m: BundleManifest, manifestPath: string): number {
  const seen: string[] = [];
  const datasets = catalog.listDatasets().sort((a, b) => Number(b.name === m.dataset.name) - Number(a.name === m.dataset.name));
  for (const ds of datasets) {
    const fp = datasetFingerprint(catalog, ds.id);
    if (fp === m.dataset.fingerprint) return ds.id;
    seen.push(`"${ds.name}" ${fp}`);
  }
  throw new Error(
    `${manifestPath}: dataset fingerprint ${m.dataset.fingerprint} ("${m.dataset.name}") matches no dataset of this catalog` +
      (seen.length ? ` (${seen.join(', ')})` : ' (it holds none)') +
      '; import the same dataset first'
  );
}

/** The finished backbone of this catalog with the bundle's content hash; refused naming both hashes. */
async function matchBackbone(catalog: Catalog, m: BundleManifest, manifestPath: string): Promise<{ id: number; name: string; path: string }> {
  const seen: string[] = [];
  const candidates = catalog
    .listBackbones()
    .filter((b) => b.status === 'succeeded')
    .sort((a, b) => Number(b.name === m.backbone.name) - Number(a.name === m.backbone.name));
  for (const b of candidates) {
    let hash: string;
    try {
      hash = await backboneContentHash(b.path);
    } catch (e) {
      seen.push(`"${b.name}" unreadable (${(e as Error).message})`);
      continue;
    }
    if (hash === m.backbone.contentHash) return b;
    seen.push(`"${b.name}" ${hash}`);
  }
  throw new Error(
    `${manifestPath}: backbone content hash ${m.backbone.contentHash} ("${m.backbone.name}") matches no finished backbone of this catalog` +
      (seen.length ? ` (${seen.join(', ')})` : ' (it holds none)') +
      '; register the same backbone folder first'
  );
}

/** For each row of this catalog's item order, the bundle's row holding the same item (row 0: padding). */
function rowPermutation(bundleIds: readonly string[], ourIds: readonly string[], manifestPath: string): Int32Array {
  const bundleRow = new Map(bundleIds.map((id, i) => [id, i]));
  const perm = new Int32Array(ourIds.length);
  for (let r = 1; r < ourIds.length; r++) {
    const src = bundleRow.get(ourIds[r]);
    if (src === undefined || src === 0) throw new Error(`${manifestPath}: item "${ourIds[r]}" of this catalog has no row in the bundle`);
    perm[r] = src;
  }
  if (ourIds.length !== bundleIds.length) throw new Error(`${manifestPath}: ${bundleIds.length - 1} items in the bundle, ${ourIds.length - 1} here`);
  return perm;
}

export interface ImportedAdapter {
  runId: number;
  datasetId: number;
  backboneId: number;
  name: string;
}

/**
 * Imports the bundle at `dir` as a finished run (not yet evaluated: run the 'evaluate' job on it for metrics
 * and the case study's stored recommendations).
 */
export async function importAdapter(catalog: Catalog, dataDir: string, dir: string, opts: { name?: string } = {}): Promise<ImportedAdapter> {
  const manifestPath = join(dir, BUNDLE_MANIFEST);
  const m = readBundle(dir);
  const datasetId = matchDataset(catalog, m, manifestPath);
  const backbone = await matchBackbone(catalog, m, manifestPath);
  const data = catalog.loadSequences(datasetId);
  const items = catalog.getItems(Array.from(data.itemIds.subarray(1)));
  const ourIds = Array.from(data.itemIds, (id, i) => (i === 0 ? '' : items.get(id)!.externalId));
  const perm = rowPermutation(m.dataset.itemExternalIds, ourIds, manifestPath);

  const kind = m.model as ModelKind;
  const known = new Set(modelDescriptor(kind).params.map((p) => p.key));
  const hyper = Object.fromEntries(Object.entries(m.config).filter(([k]) => known.has(k)));
  // backboneId: this catalog's; seqRunId 0: M is the run's own (imported) item table.
  const config: Record<string, number> = { ...hyper, backboneId: backbone.id, seqRunId: 0 };
  const cfg = config as unknown as AlmostrecConfig;

  const tensorsPath = join(dir, ALMOSTREC_TENSORS_FILE);
  const t = readSafetensorsTensors(tensorsPath, readSafetensorsHeader(tensorsPath), ['W_B', 'W_T', 'M']);
  const [wb, wt, mt] = [t.get('W_B'), t.get('W_T'), t.get('M')];
  if (!wb || !wt || !mt) throw new Error(`${tensorsPath}: needs W_B, W_T and M`);
  const hf = openHfCheckpoint(backbone.path).config;
  const dm = hf.text.hiddenSize;
  const width = data.numItems + 1;
  const [di] = wb.shape;
  if (wb.shape[1] !== dm || wt.shape[0] !== dm || wt.shape[1] !== width || mt.shape[0] !== width || mt.shape[1] !== di) {
    throw new Error(`${tensorsPath}: W_B [${wb.shape}], W_T [${wt.shape}], M [${mt.shape}] do not fit d_m = ${dm} and ${data.numItems} items`);
  }
  const wtIn = wt.data as Float32Array;
  const mIn = mt.data as Float32Array;
  const wtOut = new Float32Array(wtIn.length);
  for (let d = 0; d < dm; d++) for (let r = 0; r < width; r++) wtOut[d * width + r] = wtIn[d * width + perm[r]];
  const mOut = new Float32Array(mIn.length);
  for (let r = 1; r < width; r++) mOut.set(mIn.subarray(perm[r] * di, (perm[r] + 1) * di), r * di);

  const params = new Map<string, Float32Array>([
    ['w_b', wb.data as Float32Array],
    ['w_t', wtOut]
  ]);
  const shapes: ParamShapes = [
    ['w_b', [di, dm]],
    ['w_t', [dm, width]]
  ];
  const lora = loraConfigOf(cfg);
  const peftDir = join(dir, BUNDLE_PEFT_DIR);
  if (lora) {
    const { modules } = readPeftAdapter(peftDir);
    const expected = loraModuleShapes(hf, lora);
    const extra = [...modules.keys()].filter((k) => !expected.has(k));
    const missing = [...expected.keys()].filter((k) => !modules.has(k));
    if (extra.length || missing.length) throw new Error(`${join(peftDir, ADAPTER_WEIGHTS_FILE)}: modules differ from the config's LoRA targets (missing: ${missing.join(', ') || 'none'}; unexpected: ${extra.join(', ') || 'none'})`);
    for (const [path, [outDim, inDim]] of expected) {
      const { a, b } = modules.get(path)!;
      if (a.shape[1] !== inDim || b.shape[0] !== outDim) throw new Error(`${join(peftDir, ADAPTER_WEIGHTS_FILE)}: ${path} has A [${a.shape}], B [${b.shape}], expected in ${inDim}, out ${outDim}`);
      params.set(loraName(path, 'A'), a.data);
      params.set(loraName(path, 'B'), b.data);
      shapes.push([loraName(path, 'A'), [lora.r, inDim]], [loraName(path, 'B'), [outDim, lora.r]]);
    }
  }

  const name = opts.name?.trim() || m.name;
  const seqModel = m.sequentialRun?.model ?? 'sasrec';
  return catalog.db.transaction(() => {
    const runId = catalog.createRun({ datasetId, model: kind, config: { ...config, [BACKBONE_NAME_KEY]: backbone.name, [SEQ_RUN_MODEL_KEY]: seqModel }, backend: null });
    const runDir = runCheckpointDir(dataDir, runId);
    try {
      // The row is new: a folder of that id is what a killed import (its row rolled back) left; start clean.
      rmSync(runDir, { recursive: true, force: true });
      mkdirSync(runDir, { recursive: true });
      const best = join(runDir, BEST_FILE);
      writeWeights(best, { kind: kind as TrainableKind, config, numItems: data.numItems, datasetId, encoderId: null, epoch: m.epoch, valid: null, params }, shapes);
      const table = join(runDir, ITEM_EMBEDDINGS_FILE);
      writeSafetensors(
        table,
        { item_embeddings: { dtype: 'F32', shape: [width, di], data: mOut } },
        { format: ITEM_EMBEDDINGS_FORMAT, model: seqModel, config: '{}', datasetId: String(datasetId), epoch: '0', itemIds: JSON.stringify(Array.from(data.itemIds)) }
      );
      const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
      catalog.addArtifact(runId, 'checkpoint', best, sha(best));
      catalog.addArtifact(runId, 'item_embeddings', table, sha(table));
      // The adapter files themselves, byte for byte at the run folder's paths: the content hash stays the exporter's.
      const copies: [string, string, string][] = [
        [join(dir, ALMOSTREC_TENSORS_FILE), join(runDir, ALMOSTREC_TENSORS_FILE), 'almostrec_tensors'],
        [join(dir, ALMOSTREC_MANIFEST_FILE), join(runDir, ALMOSTREC_MANIFEST_FILE), 'almostrec_manifest']
      ];
      if (lora) {
        mkdirSync(join(runDir, LORA_DIR));
        copies.push([join(peftDir, ADAPTER_WEIGHTS_FILE), join(runDir, LORA_DIR, ADAPTER_WEIGHTS_FILE), 'lora_adapter'], [join(peftDir, ADAPTER_CONFIG_FILE), join(runDir, LORA_DIR, ADAPTER_CONFIG_FILE), 'lora_adapter_config']);
      }
      for (const [from, to, artifact] of copies) {
        copyFileSync(from, to);
        catalog.addArtifact(runId, artifact, to, sha(to));
      }
      // Every file written, nothing committed: a kill here must leave the catalog as it was (test/safety).
      crashPoint('adapter-import');
      const now = new Date().toISOString();
      catalog.updateRun(runId, { status: 'succeeded', startedAt: now, endedAt: now, checkpointPath: best, bestEpoch: m.epoch });
      if (!catalog.registerAdapter(runId, { source: 'imported', name, origin: { runId: m.origin.runId, datasetName: m.dataset.name, seqRunModel: m.sequentialRun?.model ?? null } })) {
        throw new Error(`${manifestPath}: the imported files did not form an adapter`);
      }
      return { runId, datasetId, backboneId: backbone.id, name };
    } catch (e) {
      rmSync(runDir, { recursive: true, force: true });
      throw e;
    }
  })();
}
