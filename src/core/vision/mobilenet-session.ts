// The frozen MobileNetV2 run by onnxruntime-node (graph from mobilenet-onnx.ts): ~4–5× faster per image
// than tfjs-wasm on one core (tools/mobilenet-speed.ts), which shortens the backbone pretraining's critical
// path. The graph is built once per process from the package's weights (in memory, nothing written to
// disk); sessions are cached per thread count. One intra-op thread by default: the table-2 benchmark
// pretrains beside SASRec on the other core.
import * as tf from '@tensorflow/tfjs-core';
import { scoringSession } from '../tensor/onnx-graph';
import { loadOrt, type NativeSession, type OrtModules } from '../tensor/ort-cross-entropy';
import { ENCODER_DIM, ENCODER_INPUT_SIZE, loadMobilenetModel, toInputBatch } from './mobilenet-model';
import type { RgbImage } from './image-decode';
import { ONNX_INPUT, mobilenetOnnxModel } from './mobilenet-onnx';

/** The 7 × 7 × 1280 map the grid encoder pools (NCHW out of the graph). */
export const MAP_LAYER = 'out_relu';
/** Its 7 × 7 average, the 1280-d feature vector. */
export const FEATURE_LAYER = 'flatten_1';
export const MAP_SIDE = 7;

export interface MobilenetOnnx {
  /** out_relu per image, NCHW [1280, 7, 7] flattened. */
  maps(images: readonly RgbImage[]): Float32Array[];
  /** flatten_1 per image (raw, not normalised). */
  features(images: readonly RgbImage[]): Float32Array[];
}

let bytes: Promise<Uint8Array> | null = null;
const sessions = new Map<number, NativeSession>();

/** The serialized graph (both outputs), built once per process. */
function modelBytesOnce(): Promise<Uint8Array> {
  bytes ??= loadMobilenetModel()
    .then((model) => mobilenetOnnxModel(model, [MAP_LAYER, FEATURE_LAYER]))
    .catch((e: unknown) => {
      bytes = null;
      throw e;
    });
  return bytes;
}

/**
 * MobileNetV2 in onnxruntime with `threads` intra-op threads, or null where onnxruntime-node does not load
 * (callers then keep tfjs, whose outputs these match within 1e-4 relative). Needs an initialised tfjs
 * backend: the input resize stays tfjs's resizeBilinear, exactly what nsfwjs fine-tuned on.
 */
export async function loadMobilenetOnnx(threads = 1): Promise<MobilenetOnnx | null> {
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`MobileNetV2 (onnxruntime): threads must be a positive integer, got ${threads}`);
  const ort = loadOrt();
  if (!ort) return null;
  const model = await modelBytesOnce();
  let session = sessions.get(threads);
  if (!session) {
    session = scoringSession(ort, model, threads);
    sessions.set(threads, session);
  }
  const run = (images: readonly RgbImage[], output: string, size: number): Float32Array[] => runBatch(ort, session, images, output, size);
  return {
    maps: (images) => run(images, MAP_LAYER, ENCODER_DIM * MAP_SIDE * MAP_SIDE),
    features: (images) => run(images, FEATURE_LAYER, ENCODER_DIM)
  };
}

function runBatch(ort: OrtModules, session: NativeSession, images: readonly RgbImage[], output: string, size: number): Float32Array[] {
  if (images.length === 0) return [];
  const S = ENCODER_INPUT_SIZE;
  const batch = tf.tidy(() => toInputBatch(images));
  const input = batch.dataSync() as Float32Array;
  batch.dispose();
  const out = session.run({ [ONNX_INPUT]: new ort.Tensor('float32', input, [images.length, S, S, 3]) }, { [output]: null }, {})[output];
  if (out.data.length !== images.length * size) throw new Error(`MobileNetV2 (onnxruntime): ${output} gave ${out.data.length} values for ${images.length} image(s)`);
  return images.map((_, i) => out.data.slice(i * size, (i + 1) * size));
}

/** One image's NCHW map [dim, side, side] as row-major tokens [side², dim] (what image-token-pool pools). */
export function mapToTokens(map: Float32Array, dim: number, side: number): Float32Array {
  const hw = side * side;
  const out = new Float32Array(map.length);
  for (let c = 0; c < dim; c++) for (let p = 0; p < hw; p++) out[p * dim + c] = map[c * hw + p];
  return out;
}
