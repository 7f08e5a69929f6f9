// Iterative k-core filter (DESIGN.md §4): drop users AND items with fewer than `minCount` interactions,
// recount, repeat until stable. The k-core is unique, so dropping everything below the threshold in one
// sweep per round gives the same result as any other removal order.

export interface CoreFilterResult {
  /** keep[i] = 1 when interaction i survives. */
  keep: Uint8Array;
  users: number;
  items: number;
  interactions: number;
  removedUsers: number;
  removedItems: number;
  removedInteractions: number;
  rounds: number;
}

/**
 * @param userOf dense user index (0..numUsers-1) of each interaction
 * @param itemOf dense item index (0..numItems-1) of each interaction
 */
export function coreFilter(
  userOf: Int32Array,
  itemOf: Int32Array,
  numUsers: number,
  numItems: number,
  minCount = 5
): CoreFilterResult {
  const n = userOf.length;
  if (itemOf.length !== n) throw new Error('coreFilter: userOf and itemOf differ in length');
  const keep = new Uint8Array(n).fill(1);
  const userCount = new Int32Array(numUsers);
  const itemCount = new Int32Array(numItems);
  const recount = (): void => {
    userCount.fill(0);
    itemCount.fill(0);
    for (let i = 0; i < n; i++) {
      if (keep[i]) {
        userCount[userOf[i]]++;
        itemCount[itemOf[i]]++;
      }
    }
  };
  recount();
  const initialUsers = countPositive(userCount);
  const initialItems = countPositive(itemCount);
  let rounds = 0;
  for (;;) {
    let changed = false;
    for (let i = 0; i < n; i++) {
      if (keep[i] && (userCount[userOf[i]] < minCount || itemCount[itemOf[i]] < minCount)) {
        keep[i] = 0;
        changed = true;
      }
    }
    if (!changed) break;
    rounds++;
    recount();
  }
  const users = countPositive(userCount);
  const items = countPositive(itemCount);
  let interactions = 0;
  for (let i = 0; i < n; i++) interactions += keep[i];
  return {
    keep,
    users,
    items,
    interactions,
    removedUsers: initialUsers - users,
    removedItems: initialItems - items,
    removedInteractions: n - interactions,
    rounds
  };
}

function countPositive(a: Int32Array): number {
  let c = 0;
  for (let i = 0; i < a.length; i++) if (a[i] > 0) c++;
  return c;
}
