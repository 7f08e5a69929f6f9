import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, test } from 'vitest';
import {
  adaptiveAvgPoolGrid,
  adaptivePoolBins,
  poolImageTokens,
  poolImageTokensTf,
  pooledTokenCount
} from '../../src/core/backbone/image-token-pool';
import { initBackend } from '../../src/core/tensor/backend';

/** A side × side grid of `dim`-channel tokens with distinct values (token t, channel d → t · 10 + d). */
function grid(side: number, dim: number): Float32Array {
  const v = new Float32Array(side * side * dim);
  for (let t = 0; t < side * side; t++) for (let d = 0; d < dim; d++) v[t * dim + d] = t * 10 + d + Math.sin(t * 7 + d);
  return v;
}

/** Mean of the tokens in rows [r0, r1) × cols [c0, c1), computed from scratch. */
function cellMean(v: Float32Array, side: number, dim: number, r0: number, r1: number, c0: number, c1: number): number[] {
  const out = new Array<number>(dim).fill(0);
  for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) for (let d = 0; d < dim; d++) out[d] += v[(r * side + c) * dim + d];
  return out.map((x) => x / ((r1 - r0) * (c1 - c0)));
}

/** Equal within float32 rounding of the values (relative 1e-6) plus `abs`. */
function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, abs = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(Math.abs(actual[i] - expected[i])).toBeLessThanOrEqual(abs + 1e-6 * Math.abs(expected[i]));
}

beforeAll(async () => {
  await initBackend('wasm');
});

describe('adaptive pooling bins (PyTorch AdaptiveAvgPool2d)', () => {
  test('floor/ceil rule, overlapping when the sides do not divide', () => {
    expect(adaptivePoolBins(7, 3)).toEqual([
      { start: 0, end: 3 },
      { start: 2, end: 5 },
      { start: 4, end: 7 }
    ]);
    expect(adaptivePoolBins(24, 3)).toEqual([
      { start: 0, end: 8 },
      { start: 8, end: 16 },
      { start: 16, end: 24 }
    ]);
    expect(adaptivePoolBins(5, 2)).toEqual([
      { start: 0, end: 3 },
      { start: 2, end: 5 }
    ]);
    expect(adaptivePoolBins(2, 2)).toEqual([
      { start: 0, end: 1 },
      { start: 1, end: 2 }
    ]);
    expect(() => adaptivePoolBins(2, 3)).toThrow(/cannot pool 2 positions to 3/);
  });
});

describe('poolImageTokens', () => {
  const dim = 5;

  test('k = 1 is the mean of all tokens, k = all returns the input', () => {
    const v = grid(4, dim);
    expectClose(poolImageTokens(v, 4, dim, 1), cellMean(v, 4, dim, 0, 4, 0, 4));
    expect(poolImageTokens(v, 4, dim, 'all')).toBe(v);
  });

  test('k = 4 and 9 on a 7×7 grid (MobileNetV2 map) match a hand computation, row-major', () => {
    const v = grid(7, dim);
    const k4 = poolImageTokens(v, 7, dim, 4);
    // 7 → 2: rows [0, 4) and [3, 7).
    const expected4 = [
      ...cellMean(v, 7, dim, 0, 4, 0, 4),
      ...cellMean(v, 7, dim, 0, 4, 3, 7),
      ...cellMean(v, 7, dim, 3, 7, 0, 4),
      ...cellMean(v, 7, dim, 3, 7, 3, 7)
    ];
    expectClose(k4, expected4);
    const k9 = poolImageTokens(v, 7, dim, 9);
    const b = [
      [0, 3],
      [2, 5],
      [4, 7]
    ];
    const expected9 = b.flatMap(([r0, r1]) => b.flatMap(([c0, c1]) => cellMean(v, 7, dim, r0, r1, c0, c1)));
    expectClose(k9, expected9);
  });

  test('a 24×24 CLIP grid pools to 3×3 blocks of 8×8; 2×2 (tiny fixture) to k = 4 is the identity', () => {
    const v = grid(24, 3);
    const k9 = poolImageTokens(v, 24, 3, 9);
    expectClose(k9.subarray(5 * 3, 6 * 3), cellMean(v, 24, 3, 8, 16, 16, 24));
    const small = grid(2, dim);
    expectClose(poolImageTokens(small, 2, dim, 4), small, 0);
    expect(pooledTokenCount(24, 9)).toBe(9);
    expect(pooledTokenCount(24, 'all')).toBe(576);
  });

  test('refuses a non-square token count and a grid smaller than k', () => {
    expect(() => poolImageTokens(new Float32Array(577 * 2), 24, 2, 4)).toThrow(/577 tokens of 2 do not form a 24×24 grid/);
    expect(() => poolImageTokens(grid(2, dim), 2, dim, 9)).toThrow(/2×2 grid cannot be pooled to 3×3/);
    expect(() => poolImageTokens(grid(2, dim), 3, dim, 'all')).toThrow(/do not form a 3×3 grid/);
  });

  test('3×3 grid to 3×3 is the identity (compact tower at k = 9)', () => {
    const v = grid(3, dim);
    expectClose(adaptiveAvgPoolGrid(v, 3, dim, 3), v, 0);
  });
});

describe('poolImageTokensTf (batched, differentiable)', () => {
  test('matches the CPU pooling for every k, on divisible and overlapping grids, without leaking tensors', () => {
    const dim = 4;
    for (const side of [7, 6, 3]) {
      const images = [grid(side, dim), grid(side, dim).map((x) => -x * 0.5)];
      const before = tf.memory().numTensors;
      const input = tf.tensor3d(Float32Array.from(images.flatMap((v) => [...v])), [2, side * side, dim]);
      for (const k of [1, 4, 9] as const) {
        const y = poolImageTokensTf(input, side, k);
        expect(y.shape).toEqual([2, k, dim]);
        const flat = y.dataSync();
        images.forEach((v, b) => expectClose(flat.subarray(b * k * dim, (b + 1) * k * dim), poolImageTokens(v, side, dim, k)));
        y.dispose();
      }
      expect(poolImageTokensTf(input, side, 'all')).toBe(input);
      input.dispose();
      expect(tf.memory().numTensors).toBe(before);
    }
  });

  test('gradient spreads each output cell evenly over its bin (overlaps add up)', () => {
    const x = tf.ones([1, 49, 1]) as tf.Tensor3D;
    const g = tf.grad((t: tf.Tensor) => tf.sum(poolImageTokensTf(t as tf.Tensor3D, 7, 9)))(x);
    const grad = g.dataSync();
    // Row/column 2 and 4 lie in two bins each: the centre (3, 3) is in one bin, (2, 2) in four.
    expect(grad[3 * 7 + 3]).toBeCloseTo(1 / 9, 6);
    expect(grad[2 * 7 + 2]).toBeCloseTo(4 / 9, 6);
    expect(grad[0]).toBeCloseTo(1 / 9, 6);
    tf.dispose([x, g]);
  });

  test('refuses a token count that is not the grid', () => {
    const x = tf.zeros([1, 10, 2]) as tf.Tensor3D;
    expect(() => poolImageTokensTf(x, 3, 4)).toThrow(/10 tokens do not form a 3×3 grid/);
    x.dispose();
  });
});
