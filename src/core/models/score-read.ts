// A batch's scores computed on the device and read back: synchronously (dataSync) for scoreBatch, as the
// CPU backends always have, or asynchronously (await data()) for scoreBatchAsync, the only way the webgpu
// backend reads in Node. A model yields its score tensors (one, or one per chunk bounding memory) and
// both readers place them alike, so the two give the same values on every backend.
import type * as tf from '@tensorflow/tfjs-core';

/** Score tensors of a B × width result, each with the offset (in floats) of its first value; the reader frees each one. */
export type ScoreChunks = Iterable<{ offset: number; scores: tf.Tensor }>;

export interface ScoreShape {
  rows: number;
  width: number;
  /** Set column 0 (padding) to −Infinity: it is never a recommendation. */
  maskPadding: boolean;
}

function finish(out: Float32Array, shape: ScoreShape): Float32Array {
  if (shape.maskPadding) for (let b = 0; b < shape.rows; b++) out[b * shape.width] = -Infinity;
  return out;
}

/** The scores read synchronously (fails on webgpu in Node: use readScoresAsync there). */
export function readScores(shape: ScoreShape, chunks: ScoreChunks): Float32Array {
  const out = new Float32Array(shape.rows * shape.width);
  for (const { offset, scores } of chunks) {
    try {
      out.set(scores.dataSync() as Float32Array, offset);
    } finally {
      scores.dispose();
    }
  }
  return finish(out, shape);
}

/** The scores read asynchronously (every backend). */
export async function readScoresAsync(shape: ScoreShape, chunks: ScoreChunks): Promise<Float32Array> {
  const out = new Float32Array(shape.rows * shape.width);
  for (const { offset, scores } of chunks) {
    try {
      out.set((await scores.data()) as Float32Array, offset);
    } finally {
      scores.dispose();
    }
  }
  return finish(out, shape);
}
