import { expect, test } from 'vitest';
import type { SequenceData } from '../../src/core/data/types';
import { evaluate } from '../../src/core/eval/evaluator';
import { fitPopularity } from '../../src/core/models/popularity';

const data: SequenceData = {
  datasetId: 1,
  numItems: 4,
  itemIds: Int32Array.from([0, 11, 12, 13, 14]),
  users: [
    // train parts: [1,1,2], [2,1], [1]; items 3 and 4 appear only as valid/test items
    { userId: 1, items: Int32Array.from([1, 1, 2, 3, 4]), timestamps: new Float64Array(5) },
    { userId: 2, items: Int32Array.from([2, 1, 4, 4]), timestamps: new Float64Array(4) },
    { userId: 3, items: Int32Array.from([1, 3, 3]), timestamps: new Float64Array(3) }
  ]
};

test('counts only training interactions', () => {
  const model = fitPopularity(data);
  expect([...model.counts]).toEqual([0, 4, 2, 0, 0]);
});

test('scores every user the same and ranks through the evaluator', async () => {
  const model = fitPopularity(data);
  const scores = await model.scoreBatch([Int32Array.from([1]), Int32Array.from([2])]);
  expect([...scores]).toEqual([0, 4, 2, 0, 0, 0, 4, 2, 0, 0]);
  expect(model.scorer.scoreBatch).toBe(model.scoreBatch);
  // valid: user1 history [1,1,2] target 3 → unmasked 3,4 tie at 0 → rank 1
  //        user2 history [2,1]   target 4 → unmasked 3,4 tie → rank 1
  //        user3 history [1]     target 3 → item 2 (2) above; 4 ties → rank 2
  const r = await evaluate(model, data, 'valid');
  expect([...r.ranks]).toEqual([1, 1, 2]);
});
