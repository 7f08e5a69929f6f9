// Item image features for the visual models: encode what the cache lacks (batched, cancellable, with
// progress), then lay the vectors out by SequenceData item index.
import type { Catalog } from '../catalog';
import type { SequenceData } from '../data/types';
import { throwIfCancelled, type CancelSignal, type ProgressFn } from '../progress';
import { initBackend, isBackendInitialised } from '../tensor/backend';
import type { ItemFeatures } from '../train/model-spec';
import { ENCODER_DIM, ENCODER_ID, loadImageEncoder } from './encoder';
import { itemsWithImage, readFeatures, readItemImages, writeFeatures } from './feature-store';
import { decodeRgb, type RgbImage } from './image-decode';

export { ENCODER_ID } from './encoder';

/** Images per encoder call: large enough to amortise per-op overhead, small enough for a modest heap. */
const BATCH = 16;

export interface EncodeSummary {
  /** Vectors computed now and cached. */
  computed: number;
  /** Vectors already in the cache. */
  cached: number;
  /** Items without a stored image. */
  withoutImage: number;
  /** Items whose stored image failed to decode, with the reason (they count as without an image). */
  failed: { itemId: number; problem: string }[];
}

/**
 * Computes and caches the encoder's vector for every item of `itemIds` that has an image and no cached
 * vector yet. Progress: phase 'encode-images', done/total over the images to compute. A cancel leaves the
 * batches already written in the cache.
 */
export async function encodeItemImages(catalog: Catalog, itemIds: readonly number[], onProgress?: ProgressFn, signal?: CancelSignal): Promise<EncodeSummary> {
  const unique = [...new Set(itemIds)].filter((id) => id > 0);
  const cached = readFeatures(catalog, ENCODER_ID, unique);
  const todo = unique.filter((id) => !cached.has(id));
  const withImage = itemsWithImage(catalog, todo);
  const summary: EncodeSummary = { computed: 0, cached: cached.size, withoutImage: todo.length - withImage.length, failed: [] };
  if (withImage.length === 0) return summary;
  if (!isBackendInitialised()) await initBackend();
  const encoder = await loadImageEncoder();
  onProgress?.({ phase: 'encode-images', done: 0, total: withImage.length });
  for (let start = 0; start < withImage.length; start += BATCH) {
    throwIfCancelled(signal);
    const batch = readItemImages(catalog, withImage.slice(start, start + BATCH));
    const decoded: { itemId: number; image: RgbImage }[] = [];
    for (const { itemId, bytes } of batch) {
      try {
        decoded.push({ itemId, image: decodeRgb(bytes) });
      } catch (e) {
        summary.failed.push({ itemId, problem: e instanceof Error ? e.message : String(e) });
      }
    }
    const vectors = encoder.encode(decoded.map((d) => d.image));
    writeFeatures(catalog, ENCODER_ID, decoded.map((d, i) => ({ itemId: d.itemId, vector: vectors[i] })));
    summary.computed += decoded.length;
    const done = Math.min(withImage.length, start + BATCH);
    onProgress?.({ phase: 'encode-images', done, total: withImage.length, message: `Encoding item images (${ENCODER_ID})` });
    // Yield so a worker's cancel message and progress events get through between batches.
    await new Promise((resolve) => setImmediate(resolve));
  }
  if (summary.failed.length > 0) {
    const first = summary.failed[0];
    onProgress?.({
      phase: 'encode-images',
      done: withImage.length,
      total: withImage.length,
      message: `${summary.failed.length} stored image(s) could not be decoded and count as missing (item ${first.itemId}: ${first.problem})`
    });
  }
  return summary;
}

/**
 * Features for every item index of `data` (row 0 = padding): cached vectors, computing missing ones on
 * demand; zeros and has = 0 for items without a (decodable) image.
 */
export async function loadItemFeatures(catalog: Catalog, data: SequenceData, onProgress?: ProgressFn, signal?: CancelSignal): Promise<ItemFeatures> {
  const ids = Array.from(data.itemIds.subarray(1));
  await encodeItemImages(catalog, ids, onProgress, signal);
  const stored = readFeatures(catalog, ENCODER_ID, ids);
  const dim = ENCODER_DIM;
  const values = new Float32Array((data.numItems + 1) * dim);
  const has = new Uint8Array(data.numItems + 1);
  for (let i = 1; i <= data.numItems; i++) {
    const v = stored.get(data.itemIds[i]);
    if (!v) continue;
    if (v.length !== dim) throw new Error(`catalog vision_features: item ${data.itemIds[i]} has ${v.length} features, ${ENCODER_ID} gives ${dim}`);
    values.set(v, i * dim);
    has[i] = 1;
  }
  return { encoderId: ENCODER_ID, dim, values, has };
}
