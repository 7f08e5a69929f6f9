// The MobileNetV2 → ONNX conversion against tfjs itself: out_relu (raw map and the 3×3 grid the backbone
// caches) and flatten_1 on real posters and a synthetic image must agree within 1e-4 relative
// (max |Δ| / max |x|), which is what lets the encoder ids stay unchanged. A small random network checks the
// paths MobileNetV2 itself does not reach (a Pad a non-convolution reads, Flatten of a map larger than 1×1,
// biases, a plain ReLU), and an unsupported layer type gets a clear error.
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, test } from 'vitest';
import { adaptiveAvgPoolMaps } from '../../src/core/backbone/image-token-pool';
import { loadGridEncoder } from '../../src/core/backbone/grid-encoder';
import { initBackend } from '../../src/core/tensor/backend';
import { scoringSession } from '../../src/core/tensor/onnx-graph';
import { loadOrt } from '../../src/core/tensor/ort-cross-entropy';
import { decodeRgb, loadImageEncoder, type RgbImage } from '../../src/core/vision';
import { loadMobilenetModel, toInputBatch } from '../../src/core/vision/encoder';
import { ONNX_INPUT, mobilenetOnnxModel } from '../../src/core/vision/mobilenet-onnx';
import { loadMobilenetOnnx, mapToTokens } from '../../src/core/vision/mobilenet-session';

// The same posters as /work/shared/datasets/ml-latest-small, as the repository ships them.
const POSTERS = path.resolve(__dirname, '../../resources/datasets/ml-latest-small/posters');
const DIM = 1280;

const poster = (name: string): RgbImage => decodeRgb(fs.readFileSync(path.join(POSTERS, name)));

/** A 190 × 283 image of smooth gradients and a hard-edged square (not a square input: the resize matters). */
function synthetic(): RgbImage {
  const width = 190;
  const height = 283;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      const inSquare = x > 40 && x < 110 && y > 90 && y < 170;
      data[o] = inSquare ? 250 : Math.round((255 * x) / width);
      data[o + 1] = Math.round((255 * y) / height);
      data[o + 2] = inSquare ? 10 : (x * 7 + y * 13) % 256;
    }
  }
  return { width, height, data };
}

/** tfjs's output of `layer` for `images` (flattened per image, tfjs's NHWC order). */
async function tfjsOutput(images: RgbImage[], layer: string, pool?: number): Promise<Float32Array[]> {
  const full = await loadMobilenetModel();
  const m = tfl.model({ inputs: full.inputs, outputs: full.getLayer(layer).output as tfl.SymbolicTensor });
  const y = tf.tidy(() => {
    const out = m.predict(toInputBatch(images)) as tf.Tensor;
    return pool ? adaptiveAvgPoolMaps(out as tf.Tensor4D, pool) : out;
  });
  const flat = y.dataSync() as Float32Array;
  y.dispose();
  const size = flat.length / images.length;
  return images.map((_, i) => flat.slice(i * size, (i + 1) * size));
}

/** max |a − b| and that over max |b| (b the tfjs reference). */
function diff(a: Float32Array, b: Float32Array): { abs: number; rel: number } {
  expect(a.length).toBe(b.length);
  let abs = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    abs = Math.max(abs, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return { abs, rel: abs / scale };
}

function expectClose(label: string, a: Float32Array[], b: Float32Array[]): void {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) {
    const d = diff(a[i], b[i]);
    console.log(`${label} image ${i}: max |Δ| ${d.abs.toExponential(2)}, relative ${d.rel.toExponential(2)}`);
    expect(d.rel).toBeLessThanOrEqual(1e-4);
  }
}

beforeAll(async () => {
  await initBackend('wasm');
});

describe('MobileNetV2 in onnxruntime against tfjs', () => {
  let images: RgbImage[];
  beforeAll(() => {
    expect(loadOrt()).not.toBeNull();
    images = [poster('1.jpg'), poster('260.jpg'), poster('1210.jpg'), synthetic()];
  });

  test('out_relu: the raw 7×7×1280 map and the 3×3 grid the grid encoder caches (≤ 1e-4 relative)', async () => {
    const onnx = (await loadMobilenetOnnx())!;
    const maps = onnx.maps(images).map((m) => mapToTokens(m, DIM, 7));
    expectClose('out_relu 7×7', maps, await tfjsOutput(images, 'out_relu'));
    const grids = (await loadGridEncoder(3)).encode(images);
    expect(grids.every((g) => g.length === 9 * DIM)).toBe(true);
    expectClose('out_relu grid3', grids, await tfjsOutput(images, 'out_relu', 3));
  });

  test('flatten_1: raw, and the encoder’s unit vectors (≤ 1e-4 relative)', async () => {
    const onnx = (await loadMobilenetOnnx())!;
    const reference = await tfjsOutput(images, 'flatten_1');
    expectClose('flatten_1', onnx.features(images), reference);
    const units = (await loadImageEncoder()).encode(images);
    expectClose(
      'flatten_1 unit',
      units,
      reference.map((v) => v.map((x) => x / Math.hypot(...v)))
    );
  });

  test('more intra-op threads give the same outputs', async () => {
    const [one, two] = [(await loadMobilenetOnnx(1))!, (await loadMobilenetOnnx(2))!];
    expectClose('flatten_1 1 vs 2 threads', two.features(images.slice(0, 2)), one.features(images.slice(0, 2)));
    await expect(loadMobilenetOnnx(0)).rejects.toThrow(/threads must be a positive integer/);
  });
});

describe('the converter on a small network', () => {
  /** Random weights, BatchNormalization statistics included (variance kept positive). */
  function randomise(model: tfl.LayersModel): void {
    let seed = 1;
    for (const layer of model.layers) {
      const values = layer.getWeights().map((w) => {
        const v = tf.randomUniform(w.shape, 0.2, 1.2, 'float32', seed++);
        return layer.getClassName() === 'BatchNormalization' ? v : tf.sub(v, 0.7);
      });
      layer.setWeights(values);
    }
  }

  test('padding, stride-2 same, depthwise with bias, folded BN, Clip and Relu, Add, Flatten of a 3×3 map match tfjs', () => {
    const input = tfl.input({ shape: [11, 11, 3] });
    const padded = tfl.layers.zeroPadding2d({ padding: [[0, 1], [0, 1]], name: 'pad' }).apply(input) as tfl.SymbolicTensor;
    const conv = tfl.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'valid', useBias: false, name: 'conv' }).apply(padded) as tfl.SymbolicTensor;
    const bn = tfl.layers.batchNormalization({ name: 'bn' }).apply(conv) as tfl.SymbolicTensor;
    const relu6 = tfl.layers.reLU({ maxValue: 6, name: 'relu6' }).apply(bn) as tfl.SymbolicTensor;
    const dw = tfl.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'same', useBias: true, name: 'dw' }).apply(relu6) as tfl.SymbolicTensor;
    const relu = tfl.layers.reLU({ name: 'relu' }).apply(dw) as tfl.SymbolicTensor;
    const proj = tfl.layers.conv2d({ filters: 8, kernelSize: 1, padding: 'same', name: 'proj' }).apply(relu) as tfl.SymbolicTensor;
    const sum = tfl.layers.add({ name: 'sum' }).apply([proj, dw]) as tfl.SymbolicTensor;
    // A Pad read by Add (not a convolution) must become a Pad node.
    const pad2 = tfl.layers.zeroPadding2d({ padding: [[1, 0], [0, 1]], name: 'pad2' }).apply(sum) as tfl.SymbolicTensor;
    const pool = tfl.layers.averagePooling2d({ poolSize: 2, strides: 1, padding: 'valid', name: 'pool' }).apply(pad2) as tfl.SymbolicTensor;
    const flat = tfl.layers.flatten({ name: 'flat' }).apply(pool) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: flat });
    randomise(model);

    const x = tf.randomUniform([2, 11, 11, 3], 0, 1, 'float32', 7);
    const expected = (model.predict(x) as tf.Tensor).dataSync() as Float32Array;
    const ort = loadOrt()!;
    const session = scoringSession(ort, mobilenetOnnxModel(model, ['flat']));
    const got = session.run({ [ONNX_INPUT]: new ort.Tensor('float32', x.dataSync() as Float32Array, [2, 11, 11, 3]) }, { flat: null }, {}).flat;
    expect(got.dims).toEqual([2, expected.length / 2]);
    expectClose('small network', [got.data], [expected]);
    x.dispose();
  });

  test('an unsupported layer type gets a clear error', () => {
    const input = tfl.input({ shape: [8, 8, 3], name: 'in' });
    const conv = tfl.layers.conv2d({ filters: 4, kernelSize: 3, name: 'c' }).apply(input) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: tfl.layers.maxPooling2d({ poolSize: 2, name: 'mp' }).apply(conv) as tfl.SymbolicTensor });
    expect(() => mobilenetOnnxModel(model, ['mp'])).toThrow(/layer mp is a MaxPooling2D, which the converter does not handle \(it handles InputLayer, .*Flatten\)/);
    expect(() => mobilenetOnnxModel(model, ['nope'])).toThrow(/the model has no layer "nope"/);
  });
});
