// The onnxruntime softmax cross-entropy (src/core/tensor/ort-cross-entropy.ts) against a float64 closed form
// and against the tfjs implementation of tiedSoftmaxCrossEntropy, values and gradients.
import { afterEach, beforeAll, describe, expect, test } from 'vitest';
import { initBackend, tf } from '../../src/core/tensor/backend';
import { crossEntropyImpl, tiedSoftmaxCrossEntropy } from '../../src/core/tensor/ops';
import { ortCrossEntropy } from '../../src/core/tensor/ort-cross-entropy';
import { Rng } from '../../src/core/tensor/rng';

const rng = new Rng(11);
const randArray = (n: number, scale = 1) => Float32Array.from({ length: n }, () => rng.normal() * scale);

beforeAll(async () => {
  await initBackend('wasm');
});

afterEach(() => {
  delete process.env.ALMOSTREC_CROSS_ENTROPY;
});

describe('onnxruntime cross-entropy runner', () => {
  test('loads here and matches the float64 closed form (loss, dh, dtable), ignored rows included', () => {
    const [rows, items, dim] = [7, 13, 5];
    const h = randArray(rows * dim);
    const table = randArray(items * dim);
    const targets = [3, 0, 12, 5, 5, 9, 1];
    const weights = Float32Array.from(targets, (_, i) => (i === 1 ? 0 : 1 / 6)); // row 1 ignored
    const run = ortCrossEntropy(table, items, dim);
    expect(run).not.toBeNull();
    const out = run!({ h, rows, targets: BigInt64Array.from(targets, BigInt), weights });
    let loss = 0;
    const dh = new Float64Array(rows * dim);
    const dtable = new Float64Array(items * dim);
    for (let i = 0; i < rows; i++) {
      const logits = Array.from({ length: items }, (_, j) => {
        let s = 0;
        for (let k = 0; k < dim; k++) s += h[i * dim + k] * table[j * dim + k];
        return s;
      });
      const m = Math.max(...logits);
      const z = logits.reduce((a, l) => a + Math.exp(l - m), 0);
      loss += weights[i] * (Math.log(z) + m - logits[targets[i]]);
      for (let j = 0; j < items; j++) {
        const g = weights[i] * (Math.exp(logits[j] - m) / z - (j === targets[i] ? 1 : 0));
        for (let k = 0; k < dim; k++) {
          dh[i * dim + k] += g * table[j * dim + k];
          dtable[j * dim + k] += g * h[i * dim + k];
        }
      }
    }
    expect(out.loss).toBeCloseTo(loss, 5);
    out.dh.forEach((v, i) => expect(v).toBeCloseTo(dh[i], 5));
    out.dtable.forEach((v, i) => expect(v).toBeCloseTo(dtable[i], 5));
    expect(Math.max(...Array.from({ length: dim }, (_, k) => Math.abs(out.dh[dim + k])))).toBe(0);
  });
});

describe('tiedSoftmaxCrossEntropy: onnxruntime and tfjs agree', () => {
  const lossAndGrads = (impl: 'onnxruntime' | 'tfjs', h: tf.Tensor2D, table: tf.Tensor2D, targets: Int32Array, chunkRows: number) => {
    process.env.ALMOSTREC_CROSS_ENTROPY = impl;
    expect(crossEntropyImpl()).toBe(impl);
    const f = (hh: tf.Tensor, tt: tf.Tensor) => tiedSoftmaxCrossEntropy(hh as tf.Tensor2D, tt as tf.Tensor2D, targets, 0, chunkRows);
    const loss = f(h, table).dataSync()[0];
    const [gh, gt] = tf.grads(f)([h, table]);
    return { loss, gh: gh.dataSync(), gt: gt.dataSync() };
  };

  test.each(['wasm', 'cpu'])('several chunks, padding targets ignored (%s backend)', async (backend) => {
    await tf.setBackend(backend);
    const h = tf.tensor2d(randArray(300 * 8, 0.5), [300, 8]);
    const table = tf.tensor2d(randArray(500 * 8, 0.5), [500, 8]);
    const targets = new Int32Array(300).map((_, i) => (i % 5 === 0 ? 0 : (i * 7919) % 500));
    const ort = lossAndGrads('onnxruntime', h, table, targets, 64);
    const ref = lossAndGrads('tfjs', h, table, targets, 64);
    expect(ort.loss).toBeCloseTo(ref.loss, 5);
    const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i])));
    expect(maxDiff(ort.gh, ref.gh)).toBeLessThan(1e-6);
    expect(maxDiff(ort.gt, ref.gt)).toBeLessThan(1e-6);
    expect(maxDiff(ort.gt, new Float32Array(ort.gt.length))).toBeGreaterThan(1e-4); // gradients are not all zero
    await tf.setBackend('wasm');
  });

  test('only padding targets: loss 0 and zero gradients', () => {
    process.env.ALMOSTREC_CROSS_ENTROPY = 'onnxruntime';
    const h = tf.tensor2d(randArray(4 * 3), [4, 3]);
    const table = tf.tensor2d(randArray(6 * 3), [6, 3]);
    const f = (hh: tf.Tensor, tt: tf.Tensor) => tiedSoftmaxCrossEntropy(hh as tf.Tensor2D, tt as tf.Tensor2D, new Int32Array(4));
    expect(f(h, table).dataSync()[0]).toBe(0);
    for (const g of tf.grads(f)([h, table])) expect(Array.from(g.dataSync()).every((v) => v === 0)).toBe(true);
  });

  test('an unknown ALMOSTREC_CROSS_ENTROPY value is refused', () => {
    process.env.ALMOSTREC_CROSS_ENTROPY = 'fast';
    expect(() => crossEntropyImpl()).toThrow(/not one of onnxruntime, tfjs/);
  });
});
