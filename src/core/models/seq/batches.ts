// Batching shared by the next-item models trained like SASRec (GRU4Rec, NextItNet): an example is a window
// of one user's training part, inputs = seq[a..e−1), targets = seq[a+1..e), cross-entropy at every counted
// non-padding target. Batches are only as long as their longest member (never more than maxLen).
//
// Windows cover every training target: the last window of a user ends at the end of the training part, the
// one before it `stride` targets earlier, and so on. With only the last window (as SASRec trains), a user
// with more than maxLen + 1 training items would never be trained on its earlier targets — on
// ml-latest-small with maxLen 50 that left 74 % of the (history, next item) pairs that RecBole's per-prefix
// training uses out of every epoch. Each target is counted (has a loss) in exactly one window; with
// stride < maxLen the window's earlier positions are context only, so every counted target sees at least
// maxLen − stride items of history (or all of it).
import { trainPart, type SequenceData } from '../../data/types';
import type { Rng } from '../../tensor/rng';

/**
 * 'left': padding first, the last item in the last column (the GRU's final state is the last column).
 * 'right': items from column 0, padding after (a causal model never sees the trailing padding).
 */
export type Alignment = 'left' | 'right';

/** Training examples: each user's training part, if it has at least one (input, target) pair. */
export function trainingSequences(data: SequenceData): Int32Array[] {
  return data.users.map(trainPart).filter((s) => s.length >= 2);
}

/** A fresh random order of n examples and the number of batches it makes. */
export function shuffledBatches(n: number, batchSize: number, rng: Rng): { order: Int32Array; steps: number } {
  const order = Int32Array.from({ length: n }, (_, i) => i);
  rng.shuffle(order);
  return { order, steps: Math.ceil(n / batchSize) };
}

/** Batch step `step` of `order` (the last one may be short). */
export function batchMembers(order: Int32Array, batchSize: number, step: number): Int32Array {
  const members = order.subarray(step * batchSize, (step + 1) * batchSize);
  if (members.length === 0) throw new Error(`Batch ${step} is past the end of the epoch (${order.length} examples, batch size ${batchSize})`);
  return members;
}

/**
 * Shard `shard` of `shards` of a step's members for data-parallel training: members ranked by sequence
 * length, every `shards`-th one, so shards cost about the same (and each still groups by length).
 */
export function shardMembers(members: Int32Array, lengthOf: (member: number) => number, shard: number, shards: number): Int32Array {
  const ranked = Array.from(members).sort((a, b) => lengthOf(a) - lengthOf(b) || a - b);
  return Int32Array.from(ranked.filter((_, r) => r % shards === shard));
}

/**
 * Per sequence, `perUser` distinct target positions t ≥ 1 (all of them when it has fewer), drawn only from
 * `rng` by a partial Fisher–Yates shuffle: flat (sequence, t) pairs, sequences in order. The examples of
 * models that train one sampled target per example (ALMOSTREC's concat layout, LLaRA).
 */
export function sampledTargets(seqs: readonly Int32Array[], perUser: number, rng: Rng): number[] {
  const out: number[] = [];
  seqs.forEach((seq, u) => {
    const candidates = seq.length - 1;
    if (candidates < 1) return;
    const pos = Int32Array.from({ length: candidates }, (_, i) => i + 1);
    const take = Math.min(perUser, candidates);
    for (let i = 0; i < take; i++) {
      const j = i + rng.int(candidates - i);
      [pos[i], pos[j]] = [pos[j], pos[i]];
      out.push(u, pos[i]);
    }
  });
  return out;
}

/** Copy the last min(len, width) items of `seq` into row `row` of a B × width matrix. */
function placeRow(seq: ArrayLike<number>, width: number, out: Int32Array, row: number, align: Alignment): void {
  const n = Math.min(seq.length, width);
  const offset = row * width + (align === 'left' ? width - n : 0);
  for (let i = 0; i < n; i++) out[offset + i] = seq[seq.length - n + i];
}

/**
 * One training example: sequence `seq`, items before index `end` (exclusive); its targets are seq[t] for
 * t < end (at most maxLen of them, each predicted from the items before it in the window) and those with
 * t ≥ `first` carry the loss.
 */
export interface TrainingWindow {
  seq: number;
  end: number;
  first: number;
}

/**
 * The windows covering every target (index ≥ 1) of every sequence exactly once, last window first per
 * sequence: ends n, n − stride, n − 2·stride, … (1 ≤ stride ≤ maxLen; stride = maxLen: no overlap).
 * `phases[seq]` in [0, stride) shifts the tiling of that sequence: its newest window then trains only the
 * last `phase` targets (0: no shift), so across epochs with fresh phases each target is predicted from
 * contexts of varying length rather than always the same one.
 */
export function trainingWindows(seqs: Int32Array[], maxLen: number, stride = maxLen, phases?: ArrayLike<number>): TrainingWindow[] {
  if (!(stride >= 1 && stride <= maxLen)) throw new Error(`window stride ${stride} must be in [1, maxLen = ${maxLen}]`);
  const out: TrainingWindow[] = [];
  seqs.forEach((s, seq) => {
    const phase = phases ? phases[seq] : 0;
    if (!(Number.isInteger(phase) && phase >= 0 && phase < stride)) throw new Error(`window phase ${phase} of sequence ${seq} must be an integer in [0, ${stride})`);
    for (let end = s.length, next = end - (phase || stride); end >= 2; end = next, next -= stride) {
      out.push({ seq, end, first: Math.max(1, next) });
    }
  });
  return out;
}

/**
 * B × len id matrices (row-major, 0 = padding) for the next-item loss over windows `members` (indices
 * into `windows`); len = the longest input, ≤ maxLen. Targets before a window's `first` are 0 (context only).
 */
export function nextItemBatch(
  seqs: Int32Array[],
  windows: TrainingWindow[],
  members: ArrayLike<number>,
  maxLen: number,
  align: Alignment
): { inputs: Int32Array; targets: Int32Array; batch: number; len: number } {
  const batch = members.length;
  let len = 1;
  for (let b = 0; b < batch; b++) len = Math.max(len, Math.min(maxLen, windows[members[b]].end - 1));
  const inputs = new Int32Array(batch * len);
  const targets = new Int32Array(batch * len);
  for (let b = 0; b < batch; b++) {
    const { seq: i, end, first } = windows[members[b]];
    const seq = seqs[i];
    const counted = seq.slice(1, end);
    counted.fill(0, 0, Math.max(0, first - 1)); // counted[j] is seq[j + 1]
    placeRow(seq.subarray(0, end - 1), len, inputs, b, align);
    placeRow(counted, len, targets, b, align);
  }
  return { inputs, targets, batch, len };
}

/**
 * Histories to score, B × len (len = the longest kept history, ≤ maxLen), with each row's number of kept
 * items. An empty history becomes a row of padding (the model then scores from its initial state).
 */
export function historyBatch(histories: Int32Array[], maxLen: number, align: Alignment): { ids: Int32Array; lengths: Int32Array; batch: number; len: number } {
  const batch = histories.length;
  const lengths = Int32Array.from(histories, (h) => Math.min(h.length, maxLen));
  const len = Math.max(1, ...lengths);
  const ids = new Int32Array(batch * len);
  histories.forEach((h, b) => placeRow(h, len, ids, b, align));
  return { ids, lengths, batch, len };
}

/** Row-major B × L → time-major L × B. */
export function toTimeMajor(ids: Int32Array, batch: number, len: number): Int32Array {
  const out = new Int32Array(batch * len);
  for (let b = 0; b < batch; b++) for (let t = 0; t < len; t++) out[t * batch + b] = ids[b * len + t];
  return out;
}
