// Shared by the user-ID models (BPR-MF, NCF): the training (user, item) pairs, per-user sets of training
// items for negative sampling, and the map from an evaluator history back to its user. Hand-written: no
// maintained JS library does seeded negative sampling over our SequenceData.
import { splitInput, trainPart, type SequenceData } from '../../data/types';
import type { Rng } from '../../tensor/rng';

/** Every training interaction as parallel arrays (user row in data.users order, item index 1..numItems). */
export interface TrainingPairs {
  users: Int32Array;
  items: Int32Array;
  /** seen[u] = the user's distinct training items, ascending (never valid/test items: DESIGN §4). */
  seen: Int32Array[];
}

export function trainingPairs(data: SequenceData): TrainingPairs {
  let total = 0;
  for (const u of data.users) total += trainPart(u).length;
  const users = new Int32Array(total);
  const items = new Int32Array(total);
  const seen: Int32Array[] = [];
  let at = 0;
  data.users.forEach((u, row) => {
    const train = trainPart(u);
    for (let i = 0; i < train.length; i++) {
      if (train[i] < 1 || train[i] > data.numItems) throw new Error(`User ${u.userId}: item index ${train[i]} outside 1..${data.numItems}`);
      users[at] = row;
      items[at++] = train[i];
    }
    seen.push(Int32Array.from(new Set(train)).sort());
  });
  return { users, items, seen };
}

/**
 * A uniformly drawn item in 1..numItems that is not in `seen` (sorted ascending, distinct), using exactly
 * one draw from rng: the k-th unseen item, found by stepping over the seen items below it. O(|seen|),
 * with no rejection loop, so dense users cost no more than sparse ones and the rng stream stays fixed.
 */
export function sampleNegative(rng: Rng, seen: Int32Array, numItems: number): number {
  const free = numItems - seen.length;
  if (free <= 0) throw new Error(`Negative sampling: a user has interacted with all ${numItems} items`);
  let item = rng.int(free) + 1;
  for (let i = 0; i < seen.length && seen[i] <= item; i++) item++;
  return item;
}

/** Returns 0..n-1 shuffled by rng. */
export function shuffledOrder(n: number, rng: Rng): Int32Array {
  const order = Int32Array.from({ length: n }, (_, i) => i);
  rng.shuffle(order);
  return order;
}

/** FNV-1a over the item indices (and the length), for looking histories up by content. */
function hashItems(items: ArrayLike<number>): number {
  let h = 0x811c9dc5 ^ items.length;
  for (let i = 0; i < items.length; i++) {
    let x = items[i];
    for (let b = 0; b < 4; b++) {
      h = Math.imul(h ^ (x & 0xff), 0x01000193);
      x >>>= 8;
    }
  }
  return h >>> 0;
}

function sameItems(a: Int32Array, b: Int32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Maps an evaluator input history back to the user it belongs to. The evaluator passes
 * splitInput(u, split).history: the training part (valid) or training part + valid item (test). Both are
 * registered for every user, keyed by a hash of their contents and confirmed by comparing contents, so a
 * copied array still finds its user. Should two users share identical histories, the one whose items
 * buffer the history is a view of wins (the evaluator's case); otherwise the first registered.
 */
export class HistoryIndex {
  private readonly byHash = new Map<number, { row: number; seq: Int32Array }[]>();

  constructor(data: SequenceData) {
    data.users.forEach((u, row) => {
      for (const split of ['valid', 'test'] as const) {
        const seq = splitInput(u, split).history;
        const key = hashItems(seq);
        const list = this.byHash.get(key);
        if (list) list.push({ row, seq });
        else this.byHash.set(key, [{ row, seq }]);
      }
    });
  }

  /** The user row (data.users order) whose valid or test history equals `history`, or −1 if none does. */
  lookup(history: Int32Array): number {
    const candidates = this.byHash.get(hashItems(history));
    if (!candidates) return -1;
    let found = -1;
    for (const c of candidates) {
      if (!sameItems(c.seq, history)) continue;
      if (c.seq.buffer === history.buffer && c.seq.byteOffset === history.byteOffset) return c.row;
      if (found < 0) found = c.row;
    }
    return found;
  }
}
