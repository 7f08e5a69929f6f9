// The frozen image encoder: MobileNetV2 (Keras, alpha 1.0, 224 × 224) as shipped inside the nsfwjs npm
// package. Its blocks 0–10 are ImageNet weights kept frozen by nsfwjs; blocks 11–16 and the last 1×1
// convolution were fine-tuned by nsfwjs on its 5-class image data (weights stored as uint8-quantised
// tfjs layers artifacts). No npm package ships plain ImageNet weights for tfjs/ONNX (the
// @tensorflow-models ones download them at run time), so this is the best pretrained encoder available
// offline. We take the 1280-d global-average-pooled output (flatten_1, before nsfwjs's classifier head);
// backbone/grid-encoder.ts reads the 7 × 7 × 1280 map that flatten_1 averages (out_relu) as spatial tokens.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { RgbImage } from './image-decode';
import { ENCODER_DIM, MOBILENET_ID_PREFIX, loadMobilenetModel, toInputBatch } from './mobilenet-model';
import { loadMobilenetOnnx } from './mobilenet-session';

export { ENCODER_DIM, ENCODER_INPUT_SIZE, MOBILENET_ID_PREFIX, loadMobilenetModel, toInputBatch } from './mobilenet-model';
/** Names the weights the cached features came from: a different encoder never reuses them. */
export const ENCODER_ID = `${MOBILENET_ID_PREFIX}/flatten_1`;
const FEATURE_LAYER = 'flatten_1';

export interface ImageEncoder {
  id: string;
  dim: number;
  /** L2-normalised feature vectors, one per image (eval mode, no gradients). */
  encode(images: RgbImage[]): Float32Array[];
}

export interface EncoderOptions {
  /** onnxruntime intra-op threads (default 1: the app's other work keeps the other core). */
  threads?: number;
}

const loading = new Map<number, Promise<ImageEncoder>>();

/**
 * Loads the encoder once per process (and thread count) from the package's files (no network). It runs in
 * onnxruntime (mobilenet-session.ts), or in tfjs where onnxruntime-node does not load; both give flatten_1
 * within 1e-4 relative (test/unit/vision-mobilenet-onnx.test.ts), so ENCODER_ID names either.
 */
export function loadImageEncoder(options: EncoderOptions = {}): Promise<ImageEncoder> {
  const threads = options.threads ?? 1;
  let p = loading.get(threads);
  if (!p) {
    p = load(threads).catch((e: unknown) => {
      loading.delete(threads);
      throw e;
    });
    loading.set(threads, p);
  }
  return p;
}

const normalise = (v: Float32Array): Float32Array => {
  const n = Math.max(Math.hypot(...v), 1e-12);
  return v.map((x) => x / n);
};

async function load(threads: number): Promise<ImageEncoder> {
  const onnx = await loadMobilenetOnnx(threads);
  if (onnx) return { id: ENCODER_ID, dim: ENCODER_DIM, encode: (images) => onnx.features(images).map(normalise) };
  return loadTfjs();
}

async function loadTfjs(): Promise<ImageEncoder> {
  const full = await loadMobilenetModel();
  const features = tfl.model({ inputs: full.inputs, outputs: full.getLayer(FEATURE_LAYER).output as tfl.SymbolicTensor });
  const outDim = features.outputs[0].shape[1];
  if (outDim !== ENCODER_DIM) throw new Error(`Image encoder: ${FEATURE_LAYER} has ${outDim} features, expected ${ENCODER_DIM}`);
  return {
    id: ENCODER_ID,
    dim: ENCODER_DIM,
    encode(images: RgbImage[]): Float32Array[] {
      if (images.length === 0) return [];
      const out = tf.tidy(() => {
        const y = features.predict(toInputBatch(images)) as tf.Tensor2D;
        return tf.div(y, tf.maximum(tf.norm(y, 'euclidean', 1, true), 1e-12));
      });
      const flat = out.dataSync() as Float32Array;
      out.dispose();
      return images.map((_, i) => flat.slice(i * ENCODER_DIM, (i + 1) * ENCODER_DIM));
    }
  };
}
