// Seconds per poster for the frozen MobileNetV2 grid encoder (out_relu → 3×3 grid): tfjs (the wasm backend,
// one thread: the path grid-encoder.ts used before) against onnxruntime (vision/mobilenet-session.ts, one
// intra-op thread). Decoding is excluded; both run in batches of 16 after a warm-up. Not part of the suite
// (outside vitest's include); run through vitest for its CommonJS interop:
//   node --input-type=module -e "import { startVitest } from 'vitest/node'; await startVitest('test', ['tools/mobilenet-speed.ts'], { run: true, include: ['tools/mobilenet-speed.ts'], testTimeout: 600000 })"
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { test } from 'vitest';
import { loadGridEncoder } from '../src/core/backbone/grid-encoder';
import { adaptiveAvgPoolMaps } from '../src/core/backbone/image-token-pool';
import { initBackend } from '../src/core/tensor/backend';
import { decodeRgb, type RgbImage } from '../src/core/vision';
import { loadMobilenetModel, toInputBatch } from '../src/core/vision/encoder';

const POSTERS = path.resolve(process.cwd(), 'resources/datasets/ml-latest-small/posters');
const COUNT = 64;
const BATCH = 16;

function timed(images: readonly RgbImage[], encode: (part: readonly RgbImage[]) => void): number {
  encode(images.slice(0, 2)); // warm-up
  const t0 = performance.now();
  for (let start = 0; start < images.length; start += BATCH) encode(images.slice(start, start + BATCH));
  return (performance.now() - t0) / 1000 / images.length;
}

test('MobileNetV2 seconds per image: tfjs against onnxruntime', async () => {
  process.env.ALMOSTREC_THREADS = '1';
  const backend = await initBackend('wasm');
  const images = fs.readdirSync(POSTERS).sort().slice(0, COUNT).map((name) => decodeRgb(fs.readFileSync(path.join(POSTERS, name))));
  const full = await loadMobilenetModel();
  const map = tfl.model({ inputs: full.inputs, outputs: full.getLayer('out_relu').output as tfl.SymbolicTensor });
  const tfjs = timed(images, (part) => {
    const y = tf.tidy(() => adaptiveAvgPoolMaps(map.predict(toInputBatch(part)) as tf.Tensor4D, 3));
    y.dataSync();
    y.dispose();
  });
  const resize = timed(images, (part) => {
    const x = tf.tidy(() => toInputBatch(part));
    x.dataSync();
    x.dispose();
  });
  const grid = await loadGridEncoder(3, { threads: 1 });
  const onnx = timed(images, (part) => grid.encode(part));
  console.log(`MobileNetV2 out_relu → 3×3 grid, ${images.length} posters, one thread (${backend.device}, ${backend.threads} thread(s)):`);
  console.log(`  tfjs ${backend.name}: ${tfjs.toFixed(3)} s/image`);
  console.log(`  onnxruntime:  ${onnx.toFixed(3)} s/image (${(tfjs / onnx).toFixed(1)}× faster), of which the tfjs resize to 224 × 224 ${resize.toFixed(3)} s`);
});
