// Every custom kernel and gradient is checked against tfjs's stock implementation on the cpu backend.
import { beforeAll, describe, expect, test } from 'vitest';
import { initBackend, tf } from '../../src/core/tensor/backend';
import { bmm, dense, embedding, gelu, layerNorm, tiedSoftmaxCrossEntropy } from '../../src/core/tensor/ops';
import { Rng } from '../../src/core/tensor/rng';

const rng = new Rng(7);
function rand(shape: number[], scale = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = rng.normal() * scale;
  return tf.tensor(v, shape);
}

/** max |a − b| relative to max(1, max |b|). */
function relErr(a: tf.Tensor, b: tf.Tensor): number {
  const x = a.dataSync();
  const y = b.dataSync();
  expect(x.length).toBe(y.length);
  let diff = 0;
  let mag = 1;
  for (let i = 0; i < x.length; i++) {
    diff = Math.max(diff, Math.abs(x[i] - y[i]));
    mag = Math.max(mag, Math.abs(y[i]));
  }
  return diff / mag;
}

function expectClose(a: tf.Tensor[], b: tf.Tensor[]): void {
  expect(a.length).toBe(b.length);
  a.forEach((t, i) => {
    expect(t.shape).toEqual(b[i].shape);
    expect(relErr(t, b[i])).toBeLessThanOrEqual(1e-4);
  });
}

beforeAll(async () => {
  await initBackend('wasm');
});

for (const backend of ['cpu', 'wasm']) {
  describe(`custom ops vs stock (${backend})`, () => {
    beforeAll(async () => {
      await tf.setBackend(backend);
    });

    test('dense forward and gradients match matMul + add', () => {
      const x = rand([3, 5, 8]);
      const w = rand([8, 6]);
      const b = rand([6]);
      const up = rand([3, 5, 6]);
      const f = (fn: typeof dense) => (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(fn(xx, ww, bb), up));
      const stock = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => tf.add(tf.reshape(tf.matMul(tf.reshape(xx, [15, 8]) as tf.Tensor2D, ww as tf.Tensor2D), [3, 5, 6]), bb);
      expectClose([dense(x, w, b)], [stock(x, w, b)]);
      expectClose(tf.grads(f(dense))([x, w, b]), tf.grads(f(stock))([x, w, b]));
    });

    test('bmm forward and gradients match batched matMul', () => {
      const a = rand([6, 7, 3]);
      const b = rand([6, 3, 5]);
      const up = rand([6, 7, 5]);
      const ours = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(bmm(x, y), up));
      const stock = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x as tf.Tensor3D, y as tf.Tensor3D), up));
      expectClose([bmm(a, b)], [tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D)]);
      expectClose(tf.grads(ours)([a, b]), tf.grads(stock)([a, b]));
    });

    test('embedding matches gather, padding row gets no gradient', () => {
      const table = rand([10, 4]);
      const ids = tf.tensor2d([[0, 3, 3], [9, 0, 1]], [2, 3], 'int32');
      const up = rand([2, 3, 4]);
      expectClose([embedding(table, ids)], [tf.gather(table, ids)]);
      const [gOurs] = tf.grads((t: tf.Tensor) => tf.sum(tf.mul(embedding(t, ids), up)))([table]);
      const [gStock] = tf.grads((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, ids), up)))([table]);
      expectClose([gOurs], [gStock]);
      const [gPad] = tf.grads((t: tf.Tensor) => tf.sum(tf.mul(embedding(t, ids, 0), up)))([table]);
      const padded = gStock.arraySync() as number[][];
      padded[0] = [0, 0, 0, 0];
      expectClose([gPad], [tf.tensor(padded)]);
      expect(Math.abs((gStock.arraySync() as number[][])[0][0])).toBeGreaterThan(0);
    });

    test('tied softmax cross-entropy matches logits + stock softmaxCrossEntropy, ignoring padding targets', () => {
      const h = rand([9, 6]);
      const table = rand([12, 6]);
      const targets = new Int32Array([3, 0, 11, 5, 5, 0, 1, 7, 2]);
      const keep = [...targets].map((t, i) => (t !== 0 ? i : -1)).filter((i) => i >= 0);
      const stock = (hh: tf.Tensor, tt: tf.Tensor) => {
        const logits = tf.matMul(hh as tf.Tensor2D, tt as tf.Tensor2D, false, true);
        const rows = tf.gather(logits, keep);
        const labels = tf.oneHot(keep.map((i) => targets[i]), 12);
        return tf.losses.softmaxCrossEntropy(labels, rows);
      };
      const ours = (hh: tf.Tensor, tt: tf.Tensor) => tiedSoftmaxCrossEntropy(hh as tf.Tensor2D, tt as tf.Tensor2D, targets);
      expectClose([ours(h, table)], [stock(h, table)]);
      expectClose(tf.grads(ours)([h, table]), tf.grads(stock)([h, table]));
    });

    test.each([true, false])('tied softmax cross-entropy is exact across chunks (keep probabilities: %s)', (keep) => {
      // 64-row chunks: 300 rows span five chunks, the last one partial.
      const h = rand([300, 8], 0.5);
      const table = rand([500, 8], 0.5);
      const targets = new Int32Array(300).map((_, i) => (i % 5 === 0 ? 0 : (i * 7919) % 500));
      const ours = (hh: tf.Tensor, tt: tf.Tensor) => tiedSoftmaxCrossEntropy(hh as tf.Tensor2D, tt as tf.Tensor2D, targets, 0, 64, keep);
      const mask = tf.tensor1d([...targets].map((t) => (t !== 0 ? 1 : 0)));
      const stock = (hh: tf.Tensor, tt: tf.Tensor) => {
        const logits = tf.matMul(hh as tf.Tensor2D, tt as tf.Tensor2D, false, true);
        const nll = tf.sub(tf.logSumExp(logits, 1), tf.sum(tf.mul(logits, tf.cast(tf.oneHot(tf.tensor1d(targets, 'int32'), 500), 'float32')), 1));
        return tf.div(tf.sum(tf.mul(nll, mask)), tf.sum(mask));
      };
      expectClose([ours(h, table)], [stock(h, table)]);
      expectClose(tf.grads(ours)([h, table]), tf.grads(stock)([h, table]));
    });

    test('layerNorm and gelu match their closed forms', () => {
      const x = rand([5, 8], 3);
      const g = rand([8]);
      const b = rand([8]);
      const xs = x.arraySync() as number[][];
      const expected = xs.map((row) => {
        const m = row.reduce((a, c) => a + c, 0) / row.length;
        const v = row.reduce((a, c) => a + (c - m) ** 2, 0) / row.length;
        const gs = g.arraySync() as number[];
        const bs = b.arraySync() as number[];
        return row.map((c, j) => ((c - m) / Math.sqrt(v + 1e-5)) * gs[j] + bs[j]);
      });
      expectClose([layerNorm(x, g, b)], [tf.tensor(expected)]);
      // GELU(x) = x·Φ(x); Φ(1) = 0.841344746, Φ(−2) = 0.022750132.
      expectClose([gelu(tf.tensor1d([1, -2, 0]))], [tf.tensor1d([0.841344746, -2 * 0.022750132, 0])]);
    });
  });
}

describe('wasm per-batch matmul kernel', () => {
  test('matches the cpu BatchMatMul on attention-sized operands, twice in a row (no stale operator cache)', async () => {
    for (let round = 0; round < 2; round++) {
      const a = rand([8, 20, 16]);
      const b = rand([8, 16, 20]);
      await tf.setBackend('cpu');
      const expected = tf.matMul(tf.tensor3d(a.dataSync(), [8, 20, 16]), tf.tensor3d(b.dataSync(), [8, 16, 20]));
      const expectedData = expected.dataSync().slice();
      await tf.setBackend('wasm');
      const got = bmm(tf.tensor(a.dataSync(), a.shape), tf.tensor(b.dataSync(), b.shape));
      expect(got.shape).toEqual([8, 20, 20]);
      expect(relErr(got, tf.tensor(expectedData, [8, 20, 20]))).toBeLessThanOrEqual(1e-5);
    }
  });
});

describe('wasm UnsortedSegmentSum kernel', () => {
  test('matches the cpu kernel, including out-of-range ids', async () => {
    const x = rand([50, 3, 2]);
    const ids = tf.tensor1d(Array.from({ length: 50 }, (_, i) => ((i * 37) % 13) - 1), 'int32');
    await tf.setBackend('cpu');
    const expected = tf.unsortedSegmentSum(x, ids, 12);
    const expectedData = expected.dataSync().slice();
    await tf.setBackend('wasm');
    const x2 = tf.tensor(x.dataSync(), x.shape);
    const ids2 = tf.tensor1d(ids.dataSync() as Int32Array, 'int32');
    const got = tf.unsortedSegmentSum(x2, ids2 as tf.Tensor1D, 12);
    expect(got.shape).toEqual([12, 3, 2]);
    expect(relErr(got, tf.tensor(expectedData, [12, 3, 2]))).toBeLessThanOrEqual(1e-6);
  });
});
