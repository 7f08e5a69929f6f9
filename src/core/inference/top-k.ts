// The k best unseen items of one score row, masked as the evaluator masks (padding and the input history
// excluded, evaluator.ts), ties broken by the lower item index as the evaluator's stored top-k does.

export interface ScoredItem {
  /** Catalog item id. */
  itemId: number;
  score: number;
}

/**
 * `scores`: numItems + 1 entries, column 0 padding; `history`: item indices; `itemIds`: index → catalog id.
 * NaN and −∞ scores never enter the list (fewer than k items come back when fewer are rankable).
 */
export function topKUnseen(scores: Float32Array, history: ArrayLike<number>, k: number, itemIds: Int32Array): ScoredItem[] {
  const seen = new Uint8Array(scores.length);
  seen[0] = 1;
  for (let i = 0; i < history.length; i++) seen[history[i]] = 1;
  // Insertion into a sorted buffer of k: O(n·k) worst case, and k ≤ 100 (the API's bound).
  const idx: number[] = [];
  const val: number[] = [];
  for (let i = 1; i < scores.length; i++) {
    const s = scores[i];
    if (seen[i] || s === -Infinity || Number.isNaN(s)) continue;
    if (idx.length === k && s <= val[k - 1]) continue;
    let j = idx.length < k ? idx.length : k - 1;
    while (j > 0 && val[j - 1] < s) {
      val[j] = val[j - 1];
      idx[j] = idx[j - 1];
      j--;
    }
    val[j] = s;
    idx[j] = i;
  }
  return idx.map((i, r) => ({ itemId: itemIds[i], score: val[r] }));
}
