// The backbone's visual-token cache: per item image, the projector's output pooled to k tokens, stored in
// the catalog's vision_features table under an id naming the backbone and k. The tokens are frozen
// (vision tower and projector are not trained), so training reads them instead of running the tower.
// The read/write helpers are shape-aware (dims [tokens, dim]) and serve any encoder id. A stored image the
// encoder gives no tokens for (one it cannot decode) is cached too, as a "no tokens" marker (dims [0, dim],
// an empty blob): it reads back as no image, and it is not tried again (nor the vision tower loaded for it).
import type { Catalog } from '../catalog';
import { throwIfCancelled, type CancelSignal, type ProgressFn } from '../progress';
import { itemsWithImage } from '../vision/feature-store';
import { poolImageTokens, pooledSide, pooledTokenCount, type TokenPoolK } from './image-token-pool';

/** What computeBackboneFeatures needs from a vision tower + projector. */
export interface ImageTokenEncoder {
  /** Names the weights behind the tokens: a different backbone never reuses them. */
  id: string;
  tokensPerImage: number;
  dim: number;
  /** Side of the square token grid (tokensPerImage = gridSide² unless a CLS token is kept). */
  gridSide: number;
  /** Projector outputs [tokensPerImage, dim] row-major, per item that has a (decodable) image. */
  encodeItems(itemIds: number[]): Promise<Map<number, Float32Array>>;
}

export interface TokenFeatures {
  tokens: Float32Array;
  /** [token count, dim]. */
  dims: [number, number];
}

export interface BackboneFeatureSummary {
  /** Items encoded now and cached. */
  encoded: number;
  /** Items already cached under this id (with tokens). */
  cached: number;
  /** Items without a stored image, or whose image an earlier call found gives no tokens: they get no visual tokens. */
  withoutImage: number;
  /**
   * Items with a stored image that the encoder returned nothing for now (an image it could not decode);
   * each is cached as a "no tokens" marker, so later calls count it under withoutImage.
   */
  failed: number[];
}

/** Items per encoder call, cache transaction and progress event. */
const BATCH = 16;
/** Keeps IN (…) lists well below SQLite's host-parameter limit. */
const CHUNK = 500;

/** The cache id of a backbone's tokens pooled to k: `backbone:<id>/k<k>`. */
export function backboneFeatureId(backboneId: string, k: TokenPoolK): string {
  return `backbone:${backboneId}/k${k}`;
}

function chunks<T>(xs: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

// Explicitly little-endian whatever the host (the table's documented layout).
function toBlob(v: Float32Array): Buffer {
  const blob = Buffer.alloc(v.length * 4);
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  for (let i = 0; i < v.length; i++) view.setFloat32(i * 4, v[i], true);
  return blob;
}

function fromBlob(blob: Uint8Array, size: number): Float32Array {
  const v = new Float32Array(size);
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  for (let i = 0; i < size; i++) v[i] = view.getFloat32(i * 4, true);
  return v;
}

/**
 * Stores token tensors under `id` (replacing any for the same item and id) in one transaction. A row with
 * dims [0, dim] and no tokens is the "no tokens" marker of an image that gave none.
 */
export function writeBackboneFeatures(catalog: Catalog, id: string, rows: readonly ({ itemId: number } & TokenFeatures)[]): void {
  for (const { itemId, tokens, dims } of rows) {
    if (dims.length !== 2 || tokens.length !== dims[0] * dims[1]) {
      throw new Error(`vision_features (${id}): item ${itemId} has ${tokens.length} values for shape [${dims.join(', ')}]`);
    }
  }
  const stmt = catalog.db.prepare('INSERT OR REPLACE INTO vision_features (item_id, encoder_id, dims, tensor) VALUES (?, ?, ?, ?)');
  catalog.db.transaction(() => {
    for (const { itemId, tokens, dims } of rows) stmt.run(itemId, id, JSON.stringify(dims), toBlob(tokens));
  })();
}

/**
 * Token tensors cached under `id` for those of `itemIds` that have one; a "no tokens" marker reads as no
 * image (no entry). Throws on a row whose blob or shape is off.
 */
export function readBackboneFeatures(catalog: Catalog, id: string, itemIds: readonly number[]): Map<number, TokenFeatures> {
  const out = new Map<number, TokenFeatures>();
  for (const part of chunks(itemIds, CHUNK)) {
    const rows = catalog.db
      .prepare(`SELECT item_id, dims, tensor FROM vision_features WHERE encoder_id = ? AND item_id IN (${part.map(() => '?').join(',')})`)
      .all(id, ...part) as { item_id: number; dims: string; tensor: Buffer }[];
    for (const r of rows) {
      const dims = JSON.parse(r.dims) as unknown;
      if (isNoTokensShape(dims) && r.tensor.length === 0) continue;
      if (!Array.isArray(dims) || dims.length !== 2 || !dims.every((d) => Number.isInteger(d) && d > 0)) {
        throw new Error(`catalog vision_features: item ${r.item_id} (${id}) has shape ${r.dims}, expected [tokens, dim]`);
      }
      const shape = dims as [number, number];
      if (r.tensor.length !== shape[0] * shape[1] * 4) {
        throw new Error(`catalog vision_features: item ${r.item_id} (${id}) has ${r.tensor.length} bytes for shape [${shape.join(', ')}]`);
      }
      out.set(r.item_id, { tokens: fromBlob(r.tensor, shape[0] * shape[1]), dims: shape });
    }
  }
  return out;
}

/** dims of a "no tokens" marker: [0, dim]. */
function isNoTokensShape(dims: unknown): boolean {
  return Array.isArray(dims) && dims.length === 2 && dims[0] === 0 && Number.isInteger(dims[1]) && (dims[1] as number) > 0;
}

/** Per item of `itemIds` with a row under `id`: whether the row holds tokens (false: a "no tokens" marker). Reads no blobs. */
function cachedRows(catalog: Catalog, id: string, itemIds: readonly number[]): Map<number, boolean> {
  const out = new Map<number, boolean>();
  for (const part of chunks(itemIds, CHUNK)) {
    const rows = catalog.db
      .prepare(`SELECT item_id, length(tensor) > 0 FROM vision_features WHERE encoder_id = ? AND item_id IN (${part.map(() => '?').join(',')})`)
      .raw()
      .all(id, ...part) as [number, number][];
    for (const [itemId, hasTokens] of rows) out.set(itemId, hasTokens === 1);
  }
  return out;
}

/**
 * Those of `itemIds` with a row under `id` (without reading the blobs), "no tokens" markers included: an item
 * listed here needs no encoding, and one with a marker reads back as no image.
 */
export function cachedItemIds(catalog: Catalog, id: string, itemIds: readonly number[]): Set<number> {
  return new Set(cachedRows(catalog, id, itemIds).keys());
}

/** Those of `itemIds` with a stored image and nothing (neither tokens nor a marker) cached under `id`: what an encoder would have to run on. */
export function uncachedItemsWithImage(catalog: Catalog, id: string, itemIds: readonly number[]): number[] {
  const cached = cachedItemIds(catalog, id, itemIds);
  return itemsWithImage(catalog, itemIds.filter((itemId) => !cached.has(itemId)));
}

/**
 * Encodes and caches, pooled to k tokens, every item of `itemIds` that has an image and nothing cached
 * under backboneFeatureId(encoder.id, k). Progress: phase 'backbone-features', done/total over the items
 * to encode, once per batch. A cancel keeps the batches already written.
 */
export async function computeBackboneFeatures(
  catalog: Catalog,
  itemIds: readonly number[],
  encoder: ImageTokenEncoder,
  k: TokenPoolK,
  onProgress?: ProgressFn,
  signal?: CancelSignal
): Promise<BackboneFeatureSummary> {
  const id = backboneFeatureId(encoder.id, k);
  // A kept CLS token makes the tokens no grid: only k = 'all' can store them as they are.
  if (pooledSide(k) !== null && encoder.tokensPerImage !== encoder.gridSide * encoder.gridSide) {
    throw new Error(`${encoder.id}: ${encoder.tokensPerImage} tokens per image are not a ${encoder.gridSide}×${encoder.gridSide} grid; only k = all applies`);
  }
  const outTokens = pooledSide(k) === null ? encoder.tokensPerImage : pooledTokenCount(encoder.gridSide, k);
  const unique = [...new Set(itemIds)].filter((itemId) => itemId > 0);
  const cached = cachedRows(catalog, id, unique);
  const todo = unique.filter((itemId) => !cached.has(itemId));
  const withImage = itemsWithImage(catalog, todo);
  const withTokens = [...cached.values()].filter((hasTokens) => hasTokens).length;
  const summary: BackboneFeatureSummary = {
    encoded: 0,
    cached: withTokens,
    withoutImage: todo.length - withImage.length + cached.size - withTokens,
    failed: []
  };
  if (withImage.length === 0) return summary;
  const expected = encoder.tokensPerImage * encoder.dim;
  onProgress?.({ phase: 'backbone-features', done: 0, total: withImage.length, message: `Encoding item images (${id})` });
  for (let start = 0; start < withImage.length; start += BATCH) {
    throwIfCancelled(signal);
    const batch = withImage.slice(start, start + BATCH);
    const encoded = await encoder.encodeItems(batch);
    const rows: ({ itemId: number } & TokenFeatures)[] = [];
    const failed: number[] = [];
    for (const itemId of batch) {
      const tokens = encoded.get(itemId);
      if (!tokens) {
        failed.push(itemId);
        rows.push({ itemId, tokens: new Float32Array(0), dims: [0, encoder.dim] });
        continue;
      }
      if (tokens.length !== expected) {
        throw new Error(`${encoder.id}: item ${itemId} gave ${tokens.length} values, expected ${encoder.tokensPerImage} tokens × ${encoder.dim}`);
      }
      const pooled = pooledSide(k) === null ? tokens : poolImageTokens(tokens, encoder.gridSide, encoder.dim, k);
      rows.push({ itemId, tokens: pooled, dims: [outTokens, encoder.dim] });
    }
    writeBackboneFeatures(catalog, id, rows);
    summary.encoded += rows.length - failed.length;
    summary.failed.push(...failed);
    onProgress?.({ phase: 'backbone-features', done: start + batch.length, total: withImage.length, message: `Encoding item images (${id})` });
    // Yield so a worker's cancel message and progress events get through between batches.
    await new Promise((resolve) => setImmediate(resolve));
  }
  if (summary.failed.length > 0) {
    onProgress?.({
      phase: 'backbone-features',
      done: withImage.length,
      total: withImage.length,
      message: `${summary.failed.length} stored image(s) gave no tokens and count as missing from now on (first: item ${summary.failed[0]})`
    });
  }
  return summary;
}
