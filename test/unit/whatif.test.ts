// The what-if helpers of the case study (rank changes, moving history items) and the masked top-k the
// inference engine answers with.
import { describe, expect, test } from 'vitest';
import { topKUnseen } from '../../src/core/inference/top-k';
import type { ItemSummary } from '../../src/shared/types';
import { moveItem, rankChange, sameHistory } from '../../src/renderer/src/lib/whatIf';

const item = (id: number): ItemSummary => ({ id, externalId: String(id), title: `T${id}`, genres: [], text: null, imageUrl: null, interactions: 0 });

describe('what-if helpers', () => {
  test('rank change against the stored list: up, down, same, new', () => {
    expect(rankChange(4, 1)).toBe('↑3');
    expect(rankChange(0, 2)).toBe('↓2');
    expect(rankChange(3, 3)).toBe('=');
    expect(rankChange(undefined, 0)).toBe('new');
  });

  test('moving an item earlier or later, clamped at the ends', () => {
    const h = [item(1), item(2), item(3)];
    expect(moveItem(h, 0, 1).map((i) => i.id)).toEqual([2, 1, 3]);
    expect(moveItem(h, 2, -1).map((i) => i.id)).toEqual([1, 3, 2]);
    expect(moveItem(h, 0, -1)).toBe(h);
    expect(sameHistory(moveItem(h, 1, 1), h)).toBe(false);
    expect(sameHistory([...h], h)).toBe(true);
  });
});

test('topKUnseen masks padding and the history, skips NaN and −∞, breaks ties by the lower index', () => {
  const scores = Float32Array.from([99, 0.5, 0.9, NaN, 0.9, -Infinity, 0.7]);
  const itemIds = Int32Array.from([0, 11, 12, 13, 14, 15, 16]);
  expect(topKUnseen(scores, [6], 3, itemIds)).toEqual([
    { itemId: 12, score: Math.fround(0.9) },
    { itemId: 14, score: Math.fround(0.9) },
    { itemId: 11, score: 0.5 }
  ]);
  // Fewer rankable items than k: only those come back.
  expect(topKUnseen(scores, [1, 2, 4], 5, itemIds).map((r) => r.itemId)).toEqual([16]);
});
