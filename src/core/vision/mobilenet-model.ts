// nsfwjs 4.4.0's MobileNetV2 (see encoder.ts) loaded from the npm package's files, and the input batch it
// expects. Shared by the tfjs encoders and the onnxruntime conversion (mobilenet-session.ts).
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { RgbImage } from './image-decode';

const PACKAGE = 'nsfwjs';
const PACKAGE_VERSION = '4.4.0';
/** Pins the package version (and so the weights); an encoder id adds the layer read from the model. */
export const MOBILENET_ID_PREFIX = `${PACKAGE}@${PACKAGE_VERSION}/mobilenet_v2`;
export const ENCODER_DIM = 1280;
export const ENCODER_INPUT_SIZE = 224;

// Runtime require (as in tensor/backend.ts): works under vitest and from the electron-vite bundle.
const runtimeRequire = createRequire(import.meta.url);

let loadingModel: Promise<tfl.LayersModel> | null = null;

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
