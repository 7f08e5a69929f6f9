// Pools an image's square grid of visual tokens (CLIP patches, the MobileNetV2 grid) down to k tokens so
// long histories fit the language model (DESIGN §5). Bins follow PyTorch's AdaptiveAvgPool2d: output cell
// i covers input rows floor(i·H/g) … ceil((i+1)·H/g) − 1, so bins overlap when g does not divide H (7 → 3
// gives rows 0–2, 2–4, 4–6) and every output cell averages the same number of inputs along an axis.
import * as tf from '@tensorflow/tfjs-core';

export type TokenPoolK = 1 | 4 | 9 | 'all';

export const TOKEN_POOL_KS: readonly TokenPoolK[] = [1, 4, 9, 'all'];

export interface PoolBin {
  start: number;
  end: number;
}

/** The `outSide` bins [start, end) over `inSide` positions (AdaptiveAvgPool2d's rule). */
export function adaptivePoolBins(inSide: number, outSide: number): PoolBin[] {
  if (!Number.isInteger(inSide) || !Number.isInteger(outSide) || outSide < 1 || inSide < outSide) {
    throw new Error(`adaptive pooling: cannot pool ${inSide} positions to ${outSide} (need integers with 1 ≤ out ≤ in)`);
  }
  return Array.from({ length: outSide }, (_, i) => ({ start: Math.floor((i * inSide) / outSide), end: Math.ceil(((i + 1) * inSide) / outSide) }));
}

/** Side of the pooled grid for k tokens (null for 'all': no pooling). */
export function pooledSide(k: TokenPoolK): number | null {
  if (k === 'all') return null;
  const side = Math.round(Math.sqrt(k));
  if (side * side !== k) throw new Error(`image token pooling: k = ${String(k)} is not one of 1, 4, 9, all`);
  return side;
}

/** Tokens one image gives after pooling a gridSide × gridSide grid to k. */
export function pooledTokenCount(gridSide: number, k: TokenPoolK): number {
  const side = pooledSide(k);
  if (side === null) return gridSide * gridSide;
  checkGrid(gridSide, side);
  return side * side;
}

function checkGrid(gridSide: number, side: number): void {
  if (!Number.isInteger(gridSide) || gridSide < 1) throw new Error(`image token pooling: grid side ${gridSide} is not a positive integer`);
  if (gridSide < side) throw new Error(`image token pooling: a ${gridSide}×${gridSide} grid cannot be pooled to ${side}×${side} tokens`);
}

function checkTokens(tokens: Float32Array, gridSide: number, dim: number): void {
  if (tokens.length !== gridSide * gridSide * dim) {
    throw new Error(`image token pooling: ${tokens.length / dim} tokens of ${dim} do not form a ${gridSide}×${gridSide} grid`);
  }
}

/**
 * Adaptive average pooling of one grid: `tokens` is [gridSide·gridSide, dim] row-major (token r·side + c
 * is row r, column c), the result [outSide·outSide, dim] in the same order.
 */
export function adaptiveAvgPoolGrid(tokens: Float32Array, gridSide: number, dim: number, outSide: number): Float32Array {
  checkGrid(gridSide, outSide);
  checkTokens(tokens, gridSide, dim);
  const bins = adaptivePoolBins(gridSide, outSide);
  const out = new Float32Array(outSide * outSide * dim);
  // Accumulate in float64: a 24×24 CLIP grid sums 576 tokens into one.
  const acc = new Float64Array(dim);
  for (let i = 0; i < outSide; i++) {
    for (let j = 0; j < outSide; j++) {
      acc.fill(0);
      const rows = bins[i];
      const cols = bins[j];
      for (let r = rows.start; r < rows.end; r++) {
        for (let c = cols.start; c < cols.end; c++) {
          const base = (r * gridSide + c) * dim;
          for (let d = 0; d < dim; d++) acc[d] += tokens[base + d];
        }
      }
      const n = (rows.end - rows.start) * (cols.end - cols.start);
      const o = (i * outSide + j) * dim;
      for (let d = 0; d < dim; d++) out[o + d] = acc[d] / n;
    }
  }
  return out;
}

/**
 * One image's tokens [gridSide², dim] pooled to k (1 = mean, 4 = 2×2, 9 = 3×3, 'all' = unchanged).
 * Throws when the tokens are not a gridSide × gridSide grid or the grid is smaller than k's.
 */
export function poolImageTokens(tokens: Float32Array, gridSide: number, dim: number, k: TokenPoolK): Float32Array {
  const side = pooledSide(k);
  if (side === null) {
    checkGrid(gridSide, 1);
    checkTokens(tokens, gridSide, dim);
    return tokens;
  }
  return adaptiveAvgPoolGrid(tokens, gridSide, dim, side);
}

/**
 * Batched, differentiable pooling of feature maps [batch, side, side, dim] to [batch, outSide², dim]
 * (row-major tokens). Uniform bins (outSide divides side) take one avgPool; others a slice-mean per bin.
 */
export function adaptiveAvgPoolMaps(maps: tf.Tensor4D, outSide: number): tf.Tensor3D {
  const [batch, height, width, dim] = maps.shape;
  if (height !== width) throw new Error(`image token pooling: feature map ${height}×${width} is not square`);
  checkGrid(height, outSide);
  return tf.tidy(() => {
    if (height % outSide === 0) {
      const s = height / outSide;
      return tf.reshape(tf.avgPool(maps, [s, s], [s, s], 'valid'), [batch, outSide * outSide, dim]);
    }
    const bins = adaptivePoolBins(height, outSide);
    const cells: tf.Tensor2D[] = [];
    for (const rows of bins) {
      for (const cols of bins) {
        const cell = tf.slice(maps, [0, rows.start, cols.start, 0], [batch, rows.end - rows.start, cols.end - cols.start, dim]);
        cells.push(tf.mean(cell, [1, 2]) as tf.Tensor2D);
      }
    }
    return tf.stack(cells, 1) as tf.Tensor3D;
  });
}

/** Batched poolImageTokens: tokens [batch, gridSide², dim] → [batch, k', dim] ('all' returns the input). */
export function poolImageTokensTf(tokens: tf.Tensor3D, gridSide: number, k: TokenPoolK): tf.Tensor3D {
  const [batch, count, dim] = tokens.shape;
  if (count !== gridSide * gridSide) throw new Error(`image token pooling: ${count} tokens do not form a ${gridSide}×${gridSide} grid`);
  const side = pooledSide(k);
  if (side === null) return tokens;
  return tf.tidy(() => adaptiveAvgPoolMaps(tf.reshape(tokens, [batch, gridSide, gridSide, dim]), side));
}
