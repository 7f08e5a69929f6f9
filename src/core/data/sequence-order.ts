// The one ordering rule of DESIGN.md §4: per user, by timestamp, ties by the dataset's own order
// (the interaction's ordinal = its position in the source file). Leave-one-out roles follow from it.

export type SplitRole = 'train' | 'valid' | 'test';

/**
 * Orders the kept interactions of every user.
 * @param userOf dense user index of each interaction (interaction index = ordinal = file order)
 * @param timestamps timestamp of each interaction; NaN when the dataset has none (file order decides)
 * @param keep optional mask of interactions to include
 * @returns per dense user index, the interaction indices in sequence order (empty when none kept)
 */
export function orderUserSequences(
  userOf: Int32Array,
  timestamps: Float64Array,
  numUsers: number,
  keep?: Uint8Array
): Int32Array[] {
  const n = userOf.length;
  const counts = new Int32Array(numUsers);
  for (let i = 0; i < n; i++) if (!keep || keep[i]) counts[userOf[i]]++;
  const seqs = Array.from({ length: numUsers }, (_, u) => new Int32Array(counts[u]));
  const fill = new Int32Array(numUsers);
  // Interactions are visited in file order, so each bucket starts in ordinal order; a stable sort by
  // timestamp then keeps file order for ties.
  for (let i = 0; i < n; i++) {
    if (keep && !keep[i]) continue;
    const u = userOf[i];
    seqs[u][fill[u]++] = i;
  }
  const key = (i: number): number => (Number.isNaN(timestamps[i]) ? 0 : timestamps[i]);
  for (const seq of seqs) {
    const sorted = Array.from(seq).sort((a, b) => key(a) - key(b) || a - b);
    seq.set(sorted);
  }
  return seqs;
}

/** Leave-one-out role of position `pos` in a sequence of length `len`. */
export function roleAt(pos: number, len: number): SplitRole {
  if (pos === len - 1) return 'test';
  if (pos === len - 2) return 'valid';
  return 'train';
}
