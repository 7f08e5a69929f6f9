// Shapes shared by the catalog (which builds them) and the models/evaluator (which consume them).

/**
 * A dataset's interaction sequences after the 5-core filter, in the order DESIGN.md §4 fixes
 * (timestamp, ties by the dataset's own order). Items are re-indexed 1..numItems; 0 is padding.
 */
export interface SequenceData {
  datasetId: number;
  numItems: number;
  /** index → catalog item id; itemIds[0] = 0 (padding). Length numItems + 1. */
  itemIds: Int32Array;
  users: UserSequence[];
}

export interface UserSequence {
  /** Catalog user id. */
  userId: number;
  /** Full ordered sequence of item indices (1..numItems). Length ≥ 3 after filtering. */
  items: Int32Array;
  /** Timestamps (unix seconds) aligned with items. */
  timestamps: Float64Array;
}

export type SplitName = 'valid' | 'test';

/** Leave-one-out: last = test, second-last = valid, the rest = train. */
export function trainPart(u: UserSequence): Int32Array {
  return u.items.subarray(0, u.items.length - 2);
}

/** Input history and target for a split: valid predicts from train; test from train + valid. */
export function splitInput(u: UserSequence, split: SplitName): { history: Int32Array; target: number } {
  const n = u.items.length;
  return split === 'valid'
    ? { history: u.items.subarray(0, n - 2), target: u.items[n - 2] }
    : { history: u.items.subarray(0, n - 1), target: u.items[n - 1] };
}
