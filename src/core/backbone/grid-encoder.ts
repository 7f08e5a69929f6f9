// The compact backbone's frozen vision tower: nsfwjs's MobileNetV2 (vision/encoder.ts) read at out_relu, the
// 7 × 7 × 1280 map whose plain 7 × 7 average is flatten_1, adaptive-average-pooled to g × g tokens
// (row-major, not normalised: the projector sees activations, as LLaVA's does CLIP's). Cached per item in
// vision_features with dims [g², 1280]; items without a poster get no entry (no visual tokens, never a
// black image).
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { Catalog } from '../catalog';
import { throwIfCancelled, type CancelSignal, type ProgressFn } from '../progress';
import { initBackend, isBackendInitialised } from '../tensor/backend';
import { ENCODER_DIM, MOBILENET_ID_PREFIX, loadMobilenetModel, toInputBatch, type EncoderOptions } from '../vision/encoder';
import { itemsWithImage, readItemImages } from '../vision/feature-store';
import { loadMobilenetOnnx, mapToTokens } from '../vision/mobilenet-session';
import type { EncodeSummary } from '../vision/features';
import { decodeRgb, type RgbImage } from '../vision/image-decode';
import { cachedItemIds, readBackboneFeatures, writeBackboneFeatures } from './feature-cache';
import { adaptiveAvgPoolGrid, adaptiveAvgPoolMaps } from './image-token-pool';

export const GRID_LAYER = 'out_relu';
/** Side of the out_relu map for a 224 × 224 input. */
export const GRID_MAP_SIDE = 7;
export const DEFAULT_GRID_SIZE = 3;
/** Images per forward pass: one batch of out_relu maps is 16 × 62,720 floats (4 MB); activations peak far higher. */
const BATCH = 16;

/** Pins package version, layer and grid: `nsfwjs@4.4.0/mobilenet_v2/out_relu/grid3`. */
export function gridEncoderId(gridSize: number = DEFAULT_GRID_SIZE): string {
  checkGridSize(gridSize);
  return `${MOBILENET_ID_PREFIX}/${GRID_LAYER}/grid${gridSize}`;
}

function checkGridSize(gridSize: number): void {
  if (!Number.isInteger(gridSize) || gridSize < 1 || gridSize > GRID_MAP_SIDE) {
    throw new Error(`Grid encoder: grid size ${gridSize} must be an integer from 1 to ${GRID_MAP_SIDE}`);
  }
}

export interface GridEncoder {
  id: string;
  gridSize: number;
  /** gridSize². */
  tokens: number;
  dim: number;
  /** One Float32Array [gridSize² · dim] per image, token (r, c) at r · gridSize + c (eval mode, no gradients). */
  encode(images: readonly RgbImage[]): Float32Array[];
}

let mapModel: Promise<tfl.LayersModel> | null = null;

/** The tfjs sub-model up to out_relu (where onnxruntime does not load), built once per process on the shared weights. */
function loadMapModel(): Promise<tfl.LayersModel> {
  mapModel ??= loadMobilenetModel()
    .then((full) => {
      const model = tfl.model({ inputs: full.inputs, outputs: full.getLayer(GRID_LAYER).output as tfl.SymbolicTensor });
      const [, h, w, c] = model.outputs[0].shape;
      if (h !== GRID_MAP_SIDE || w !== GRID_MAP_SIDE || c !== ENCODER_DIM) {
        throw new Error(`Grid encoder: ${GRID_LAYER} is ${h}×${w}×${c}, expected ${GRID_MAP_SIDE}×${GRID_MAP_SIDE}×${ENCODER_DIM}`);
      }
      return model;
    })
    .catch((e: unknown) => {
      mapModel = null;
      throw e;
    });
  return mapModel;
}

/**
 * The grid encoder for g × g tokens (no network: the weights are the package's files). It runs in
 * onnxruntime with `threads` intra-op threads (default 1), or in tfjs where onnxruntime-node does not load;
 * both match within 1e-4 relative (test/unit/vision-mobilenet-onnx.test.ts), so the id names either.
 */
export async function loadGridEncoder(gridSize: number = DEFAULT_GRID_SIZE, options: EncoderOptions = {}): Promise<GridEncoder> {
  const id = gridEncoderId(gridSize);
  const onnx = await loadMobilenetOnnx(options.threads ?? 1);
  const encode = onnx
    ? (images: readonly RgbImage[]): Float32Array[] =>
        onnx.maps(images).map((map) => adaptiveAvgPoolGrid(mapToTokens(map, ENCODER_DIM, GRID_MAP_SIDE), GRID_MAP_SIDE, ENCODER_DIM, gridSize))
    : tfjsGrids(await loadMapModel(), gridSize);
  return { id, gridSize, tokens: gridSize * gridSize, dim: ENCODER_DIM, encode: (images) => batched(images, encode) };
}

/** Runs `encode` BATCH images at a time (bounds the activations' memory). */
function batched(images: readonly RgbImage[], encode: (part: readonly RgbImage[]) => Float32Array[]): Float32Array[] {
  const out: Float32Array[] = [];
  for (let start = 0; start < images.length; start += BATCH) out.push(...encode(images.slice(start, start + BATCH)));
  return out;
}

function tfjsGrids(model: tfl.LayersModel, gridSize: number): (part: readonly RgbImage[]) => Float32Array[] {
  const size = gridSize * gridSize * ENCODER_DIM;
  return (part) => {
    if (part.length === 0) return [];
    const pooled = tf.tidy(() => adaptiveAvgPoolMaps(model.predict(toInputBatch(part)) as tf.Tensor4D, gridSize));
    const flat = pooled.dataSync() as Float32Array;
    pooled.dispose();
    return part.map((_, i) => flat.slice(i * size, (i + 1) * size));
  };
}

/**
 * Computes and caches the g × g grid of every item of `itemIds` that has an image and no cached grid yet.
 * Progress: phase 'encode-image-grids', done/total over the images to compute. A cancel keeps the batches
 * already written.
 */
export async function encodeItemGrids(
  catalog: Catalog,
  itemIds: readonly number[],
  gridSize: number = DEFAULT_GRID_SIZE,
  onProgress?: ProgressFn,
  signal?: CancelSignal
): Promise<EncodeSummary> {
  const id = gridEncoderId(gridSize);
  const unique = [...new Set(itemIds)].filter((itemId) => itemId > 0);
  const cached = cachedItemIds(catalog, id, unique);
  const todo = unique.filter((itemId) => !cached.has(itemId));
  const withImage = itemsWithImage(catalog, todo);
  const summary: EncodeSummary = { computed: 0, cached: cached.size, withoutImage: todo.length - withImage.length, failed: [] };
  if (withImage.length === 0) return summary;
  if (!isBackendInitialised()) await initBackend();
  const encoder = await loadGridEncoder(gridSize);
  onProgress?.({ phase: 'encode-image-grids', done: 0, total: withImage.length, message: `Encoding item images (${id})` });
  for (let start = 0; start < withImage.length; start += BATCH) {
    throwIfCancelled(signal);
    const decoded: { itemId: number; image: RgbImage }[] = [];
    for (const { itemId, bytes } of readItemImages(catalog, withImage.slice(start, start + BATCH))) {
      try {
        decoded.push({ itemId, image: decodeRgb(bytes) });
      } catch (e) {
        summary.failed.push({ itemId, problem: e instanceof Error ? e.message : String(e) });
      }
    }
    const grids = encoder.encode(decoded.map((d) => d.image));
    writeBackboneFeatures(
      catalog,
      id,
      decoded.map((d, i) => ({ itemId: d.itemId, tokens: grids[i], dims: [encoder.tokens, encoder.dim] }))
    );
    summary.computed += decoded.length;
    const done = Math.min(withImage.length, start + BATCH);
    onProgress?.({ phase: 'encode-image-grids', done, total: withImage.length, message: `Encoding item images (${id})` });
    // Yield so a worker's cancel message and progress events get through between batches.
    await new Promise((resolve) => setImmediate(resolve));
  }
  if (summary.failed.length > 0) {
    const first = summary.failed[0];
    onProgress?.({
      phase: 'encode-image-grids',
      done: withImage.length,
      total: withImage.length,
      message: `${summary.failed.length} stored image(s) could not be decoded and count as missing (item ${first.itemId}: ${first.problem})`
    });
  }
  return summary;
}

/**
 * The g × g grids ([g² · 1280] each) of those of `itemIds` that have an image, computing missing ones on
 * demand; items without a (decodable) image are absent from the map.
 */
export async function loadItemGrids(
  catalog: Catalog,
  itemIds: readonly number[],
  gridSize: number = DEFAULT_GRID_SIZE,
  onProgress?: ProgressFn,
  signal?: CancelSignal
): Promise<Map<number, Float32Array>> {
  await encodeItemGrids(catalog, itemIds, gridSize, onProgress, signal);
  const id = gridEncoderId(gridSize);
  const out = new Map<number, Float32Array>();
  for (const [itemId, { tokens, dims }] of readBackboneFeatures(catalog, id, itemIds)) {
    if (dims[0] !== gridSize * gridSize || dims[1] !== ENCODER_DIM) {
      throw new Error(`catalog vision_features: item ${itemId} (${id}) has shape [${dims.join(', ')}], expected [${gridSize * gridSize}, ${ENCODER_DIM}]`);
    }
    out.set(itemId, tokens);
  }
  return out;
}
