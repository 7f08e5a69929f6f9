// What-if histories in the case study (issue 14 §5): pure helpers for editing the input history and for
// reading a live ranking against the original one.
import type { ItemSummary } from '../../../shared/types';

/** The history with item `i` moved by `delta` places (clamped); the same array when it cannot move. */
export function moveItem(items: readonly ItemSummary[], i: number, delta: number): ItemSummary[] {
  const j = Math.max(0, Math.min(items.length - 1, i + delta));
  if (j === i) return items as ItemSummary[];
  const out = [...items];
  const [moved] = out.splice(i, 1);
  out.splice(j, 0, moved);
  return out;
}

export const sameHistory = (a: readonly ItemSummary[], b: readonly ItemSummary[]): boolean => a.length === b.length && a.every((x, i) => x.id === b[i].id);

/**
 * How an item's place changed from the original top-k to the live one (both 0-based): '↑3' when it rose
 * three places, '↓2' when it fell two, '=' when it kept its place, 'new' when the original top-k lacked it.
 */
export function rankChange(originalRank: number | undefined, liveRank: number): string {
  if (originalRank === undefined) return 'new';
  const d = originalRank - liveRank;
  return d > 0 ? `↑${d}` : d < 0 ? `↓${-d}` : '=';
}
