// The frozen-feature projection's custom gradient against stock tfjs.
import { beforeAll, expect, test } from 'vitest';
import { initBackend, tf } from '../../src/core/tensor/backend';
import { Rng } from '../../src/core/tensor/rng';
import type { ItemFeatures } from '../../src/core/train/model-spec';
import { FrozenFeatures, fusedItemTable } from '../../src/core/vision/projection';

const rng = new Rng(11);
const randn = (n: number): Float32Array => Float32Array.from({ length: n }, () => rng.normal());

function features(numItems: number, dim: number, has: number[]): ItemFeatures {
  return { encoderId: 'synthetic', dim, values: randn((numItems + 1) * dim), has: Uint8Array.from(has) };
}

beforeAll(async () => {
  await initBackend('wasm');
});

test('F · W and its gradient match stock tfjs; rows without an image (and padding) are zero', () => {
  const numItems = 9;
  const dim = 7;
  const d = 5;
  const f = features(numItems, dim, [1, 1, 0, 1, 1, 0, 1, 1, 1, 0]);
  const frozen = new FrozenFeatures(f, numItems, 'test');
  const masked = f.values.slice();
  f.has.forEach((h, i) => {
    if (!h || i === 0) masked.fill(0, i * dim, (i + 1) * dim);
  });
  const F = tf.tensor2d(masked, [numItems + 1, dim]);
  const w = tf.tensor2d(randn(dim * d), [dim, d]);
  const r = tf.tensor2d(randn((numItems + 1) * d), [numItems + 1, d]);
  const ours = tf.valueAndGrad((x: tf.Tensor) => tf.sum(tf.mul(frozen.project(x), r)) as tf.Scalar)(w);
  const stock = tf.valueAndGrad((x: tf.Tensor) => tf.sum(tf.mul(tf.matMul(F, x as tf.Tensor2D), r)) as tf.Scalar)(w);
  expect(ours.value.dataSync()[0]).toBeCloseTo(stock.value.dataSync()[0], 3);
  const [g1, g2] = [ours.grad.dataSync(), stock.grad.dataSync()];
  for (let i = 0; i < g1.length; i++) expect(g1[i]).toBeCloseTo(g2[i], 4);

  const emb = tf.tensor2d(randn((numItems + 1) * d), [numItems + 1, d]);
  const table = fusedItemTable(emb, frozen, w).arraySync();
  const embRows = emb.arraySync();
  f.has.forEach((h, i) => {
    if (!h || i === 0) expect(table[i]).toEqual(embRows[i]);
    else expect(table[i]).not.toEqual(embRows[i]);
  });
  frozen.dispose();
});

test('features that do not cover the dataset are refused', () => {
  expect(() => new FrozenFeatures(features(4, 3, [0, 1, 1, 1, 1]), 5, 'SASRec_ID+V')).toThrow(/SASRec_ID\+V: item features \(synthetic\) cover 4 items/);
});
