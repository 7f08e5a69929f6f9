// Full-ranking leave-one-out evaluation shared by every model (DESIGN.md §4).
import type { Metrics } from '../../shared/types';
import { splitInput, type SequenceData, type SplitName } from '../data/types';
import { throwIfCancelled, type CancelSignal, type ProgressFn } from '../progress';
import { metricsFromRanks } from './metrics';

export interface Scorer {
  /** Scores for a batch of input histories: batch × (numItems + 1), row-major; column 0 is padding. */
  scoreBatch(histories: Int32Array[]): Promise<Float32Array> | Float32Array;
}

export interface EvaluateOptions {
  batchSize?: number;
  /** Also return each user's top-k items (after masking) and their scores. */
  topK?: number;
  onProgress?: ProgressFn;
  signal?: CancelSignal;
}

export interface EvaluationResult {
  metrics: Metrics;
  /** 0-based rank of each user's target, in data.users order. */
  ranks: Int32Array;
  topK?: { k: number; items: Int32Array; scores: Float32Array };
}

/**
 * Rank of `target` among `scores` (length numItems + 1) after masking padding and the history: the number
 * of items scored strictly higher, plus the other items tied with it — ties never favour the target
 * (DESIGN §4's stated intent; counting only strictly higher scores would put a tied target first).
 * Without ties this is exactly the reference's count of strictly higher scores. Masks `scores` in place.
 */
export function rankTarget(scores: Float32Array, history: ArrayLike<number>, target: number): number {
  scores[0] = -Infinity;
  for (let i = 0; i < history.length; i++) scores[history[i]] = -Infinity;
  const t = scores[target];
  // A NaN target score must not count as a hit: rank it last.
  if (Number.isNaN(t)) return scores.length - 1;
  let rank = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i] > t || (scores[i] === t && i !== target)) rank++;
  return rank;
}

/** Indices of the k highest finite scores (ties by lower index), best first. */
function topKOf(scores: Float32Array, k: number, items: Int32Array, vals: Float32Array, at: number): void {
  // Small k: keep a sorted insertion buffer; O(n·k) worst case but k ≤ 100 in practice.
  let filled = 0;
  for (let i = 1; i < scores.length; i++) {
    const s = scores[i];
    if (s === -Infinity || Number.isNaN(s)) continue;
    if (filled === k && s <= vals[at + k - 1]) continue;
    let j = filled < k ? filled++ : k - 1;
    while (j > 0 && vals[at + j - 1] < s) {
      vals[at + j] = vals[at + j - 1];
      items[at + j] = items[at + j - 1];
      j--;
    }
    vals[at + j] = s;
    items[at + j] = i;
  }
  for (let j = filled; j < k; j++) {
    items[at + j] = 0;
    vals[at + j] = -Infinity;
  }
}

export async function evaluate(scorer: Scorer, data: SequenceData, split: SplitName, opts: EvaluateOptions = {}): Promise<EvaluationResult> {
  const batchSize = Math.max(1, opts.batchSize ?? 256);
  const width = data.numItems + 1;
  const n = data.users.length;
  const ranks = new Int32Array(n);
  const k = opts.topK ?? 0;
  const topItems = new Int32Array(n * k);
  const topScores = new Float32Array(n * k);
  for (let start = 0; start < n; start += batchSize) {
    throwIfCancelled(opts.signal);
    const users = data.users.slice(start, start + batchSize);
    const inputs = users.map((u) => splitInput(u, split));
    const scores = await scorer.scoreBatch(inputs.map((x) => x.history));
    if (scores.length !== users.length * width) {
      throw new Error(`Scorer returned ${scores.length} scores for ${users.length} users × ${width} columns`);
    }
    for (let b = 0; b < users.length; b++) {
      const row = scores.subarray(b * width, (b + 1) * width);
      ranks[start + b] = rankTarget(row, inputs[b].history, inputs[b].target);
      if (k > 0) topKOf(row, k, topItems, topScores, (start + b) * k);
    }
    opts.onProgress?.({ phase: split === 'valid' ? 'validate' : 'test', done: Math.min(n, start + batchSize), total: n });
  }
  const result: EvaluationResult = { metrics: metricsFromRanks(ranks), ranks };
  if (k > 0) result.topK = { k, items: topItems, scores: topScores };
  return result;
}
