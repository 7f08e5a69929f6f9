// The frozen image encoder: MobileNetV2 (Keras, alpha 1.0, 224 × 224) as shipped inside the nsfwjs npm
// package. Its blocks 0–10 are ImageNet weights kept frozen by nsfwjs; blocks 11–16 and the last 1×1
// convolution were fine-tuned by nsfwjs on its 5-class image data (weights stored as uint8-quantised
// tfjs layers artifacts). No npm package ships plain ImageNet weights for tfjs/ONNX (the
// @tensorflow-models ones download them at run time), so this is the best pretrained encoder available
// offline. We take the 1280-d global-average-pooled output (flatten_1, before nsfwjs's classifier head);
// backbone/grid-encoder.ts reads the 7 × 7 × 1280 map that flatten_1 averages (out_relu) as spatial tokens.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { RgbImage } from './image-decode';

const PACKAGE = 'nsfwjs';
const PACKAGE_VERSION = '4.4.0';
/** Pins the package version (and so the weights); an encoder id adds the layer read from the model. */
export const MOBILENET_ID_PREFIX = `${PACKAGE}@${PACKAGE_VERSION}/mobilenet_v2`;
/** Names the weights the cached features came from: a different encoder never reuses them. */
export const ENCODER_ID = `${MOBILENET_ID_PREFIX}/flatten_1`;
export const ENCODER_DIM = 1280;
export const ENCODER_INPUT_SIZE = 224;
const FEATURE_LAYER = 'flatten_1';

// Runtime require (as in tensor/backend.ts): works under vitest and from the electron-vite bundle.
const runtimeRequire = createRequire(import.meta.url);

export interface ImageEncoder {
  id: string;
  dim: number;
  /** L2-normalised feature vectors, one per image (eval mode, no gradients). */
  encode(images: RgbImage[]): Float32Array[];
}

let loading: Promise<ImageEncoder> | null = null;
let loadingModel: Promise<tfl.LayersModel> | null = null;

/** Loads the encoder once per process from the package's files (no network). */
export function loadImageEncoder(): Promise<ImageEncoder> {
  loading ??= load().catch((e: unknown) => {
    loading = null;
    throw e;
  });
  return loading;
}

/**
 * The whole nsfwjs MobileNetV2 (classifier head included), loaded once per process from the package's
 * files; feature extractors are sub-models of it that share its weights.
 */
export function loadMobilenetModel(): Promise<tfl.LayersModel> {
  loadingModel ??= tfl.loadLayersModel(tf.io.fromMemory(readArtifacts())).catch((e: unknown) => {
    loadingModel = null;
    throw e;
  });
  return loadingModel;
}

/**
 * The network's input batch [n, 224, 224, 3] as nsfwjs feeds it (and fine-tuned it): RGB / 255, bilinear
 * resize with aligned corners, no crop. Call inside tf.tidy.
 */
export function toInputBatch(images: readonly RgbImage[]): tf.Tensor4D {
  const S = ENCODER_INPUT_SIZE;
  return tf.stack(
    images.map((img) =>
      tf.image.resizeBilinear(tf.div(tf.tensor3d(img.data, [img.height, img.width, 3], 'float32'), 255) as tf.Tensor3D, [S, S], true)
    )
  ) as tf.Tensor4D;
}

/** model.json and the weight shard, from the files the package ships (UMD modules: JSON object, base64 string). */
function readArtifacts(): tf.io.ModelArtifacts {
  let entry: string;
  try {
    entry = runtimeRequire.resolve(`${PACKAGE}/models/mobilenet_v2`);
  } catch {
    throw new Error(`Image encoder: the "${PACKAGE}" package is not installed (npm install)`);
  }
  // entry = <pkg>/dist/cjs/models/mobilenet_v2.js; the artifacts live in <pkg>/dist/models/mobilenet_v2/.
  const pkgDir = join(dirname(entry), '..', '..', '..');
  const version = (runtimeRequire(join(pkgDir, 'package.json')) as { version: string }).version;
  if (version !== PACKAGE_VERSION) {
    throw new Error(`Image encoder: ${join(pkgDir, 'package.json')} is version ${version}, expected ${PACKAGE_VERSION} (ENCODER_ID pins it)`);
  }
  const dir = join(pkgDir, 'dist', 'models', 'mobilenet_v2');
  const json = runtimeRequire(join(dir, 'model.min.js')) as { modelTopology?: object; weightsManifest?: tf.io.WeightsManifestConfig };
  if (!json.modelTopology || !json.weightsManifest) throw new Error(`Image encoder: ${join(dir, 'model.min.js')} has no model topology or weights manifest`);
  const buffers: Uint8Array[] = [];
  const weightSpecs: tf.io.WeightsManifestEntry[] = [];
  for (const group of json.weightsManifest) {
    weightSpecs.push(...group.weights);
    for (const p of group.paths) {
      const file = join(dir, `${p}.min.js`);
      const b64 = runtimeRequire(file) as unknown;
      if (typeof b64 !== 'string') throw new Error(`Image encoder: ${file} does not hold a base64 weight shard`);
      buffers.push(Buffer.from(b64, 'base64'));
    }
  }
  const weightData = new Uint8Array(buffers.reduce((n, b) => n + b.length, 0));
  let offset = 0;
  for (const b of buffers) {
    weightData.set(b, offset);
    offset += b.length;
  }
  return { modelTopology: json.modelTopology, weightSpecs, weightData: weightData.buffer };
}

async function load(): Promise<ImageEncoder> {
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
