// Parameter plumbing shared by the user-ID models: variables from checked values, RecBole-style initial
// values, and the user vectors for a batch of histories (ID row, or a fold-in for an unknown history).
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../../tensor/rng';
import type { HistoryIndex } from './interactions';

// Variable names must be unique per engine; several models may coexist (tests, comparisons).
let modelCounter = 0;

/** tf variables for `shapes` (in order) from `values`, with an error naming the model for bad input. */
export function makeVariables(model: string, shapes: [string, number[]][], values: Map<string, Float32Array>): Map<string, tf.Variable> {
  const params = new Map<string, tf.Variable>();
  const prefix = `${model}${++modelCounter}/`;
  for (const [name, dims] of shapes) {
    const v = values.get(name);
    if (!v) throw new Error(`${model}: missing parameter "${name}"`);
    const expected = dims.reduce((a, b) => a * b, 1);
    if (v.length !== expected) throw new Error(`${model}: parameter "${name}" has ${v.length} values, expected [${dims}]`);
    params.set(name, tf.tidy(() => tf.variable(tf.tensor(v, dims), true, prefix + name)));
  }
  return params;
}

/** N(0, std²) values. */
export function normalValues(size: number, std: number, rng: Rng): Float32Array {
  const v = new Float32Array(size);
  for (let i = 0; i < size; i++) v[i] = rng.normal() * std;
  return v;
}

/** U(−bound, bound) values. */
export function uniformValues(size: number, bound: number, rng: Rng): Float32Array {
  const v = new Float32Array(size);
  for (let i = 0; i < size; i++) v[i] = (rng.next() * 2 - 1) * bound;
  return v;
}

/**
 * User vectors [B, d] for a batch of histories. A history the index knows (a user's valid or test input)
 * gets that user's row of `userTable`. Any other history — a new user, or the CLI's live recommendation
 * over a full sequence — is folded in: its vector is the mean of its items' rows of `itemTable` (the
 * user's taste as the average of what they consumed; an empty history gives the zero vector). Returns
 * how many histories were folded in, so callers can report it.
 */
export function userVectors(
  histories: Int32Array[],
  index: HistoryIndex,
  userTable: tf.Tensor2D,
  itemTable: tf.Tensor2D
): { vectors: tf.Tensor2D; foldIns: number } {
  const known: number[] = [];
  const knownAt: number[] = [];
  const foldIds: number[] = [];
  const foldSeg: number[] = [];
  const foldAt: number[] = [];
  histories.forEach((h, b) => {
    const row = index.lookup(h);
    if (row >= 0) {
      known.push(row);
      knownAt.push(b);
      return;
    }
    for (let i = 0; i < h.length; i++) {
      if (h[i] < 1 || h[i] >= (itemTable.shape[0] as number)) throw new Error(`History item index ${h[i]} outside 1..${itemTable.shape[0] - 1}`);
      foldIds.push(h[i]);
      foldSeg.push(foldAt.length);
    }
    foldAt.push(b);
  });
  const vectors = tf.tidy(() => {
    const parts: tf.Tensor2D[] = [];
    if (known.length > 0) parts.push(tf.gather(userTable, tf.tensor1d(known, 'int32')));
    if (foldAt.length > 0) {
      const counts = new Float32Array(foldAt.length);
      for (const s of foldSeg) counts[s]++;
      const sums =
        foldIds.length > 0
          ? tf.unsortedSegmentSum(tf.gather(itemTable, tf.tensor1d(foldIds, 'int32')), tf.tensor1d(foldSeg, 'int32'), foldAt.length)
          : tf.zeros([foldAt.length, itemTable.shape[1] as number]);
      parts.push(tf.div(sums, tf.tensor2d(counts.map((c) => Math.max(1, c)), [foldAt.length, 1])) as tf.Tensor2D);
    }
    const stacked = parts.length === 1 ? parts[0] : tf.concat(parts, 0);
    if (foldAt.length === 0) return stacked;
    // Back to batch order: row b of the result is row position[b] of [known; folded].
    const position = new Int32Array(histories.length);
    knownAt.forEach((b, j) => (position[b] = j));
    foldAt.forEach((b, j) => (position[b] = known.length + j));
    return tf.gather(stacked, tf.tensor1d(position, 'int32')) as tf.Tensor2D;
  });
  return { vectors, foldIns: foldAt.length };
}
