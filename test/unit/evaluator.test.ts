import { describe, expect, test } from 'vitest';
import type { SequenceData } from '../../src/core/data/types';
import { evaluate, rankTarget, type Scorer } from '../../src/core/eval/evaluator';
import { metricsFromRanks } from '../../src/core/eval/metrics';

function dataset(seqs: number[][], numItems: number): SequenceData {
  return {
    datasetId: 1,
    numItems,
    itemIds: Int32Array.from({ length: numItems + 1 }, (_, i) => i * 10),
    users: seqs.map((s, u) => ({ userId: u + 1, items: Int32Array.from(s), timestamps: Float64Array.from(s.map((_, i) => i)) }))
  };
}

/** Fixed scores per item (same for every user) and a log of the histories it was asked about. */
function fixedScorer(scores: number[]): Scorer & { seen: number[][] } {
  const seen: number[][] = [];
  return {
    seen,
    scoreBatch(histories) {
      const out = new Float32Array(histories.length * scores.length);
      histories.forEach((h, b) => {
        seen.push([...h]);
        out.set(scores, b * scores.length);
      });
      return out;
    }
  };
}

describe('rankTarget', () => {
  test('counts higher scores; ties do not favour the target', () => {
    const s = Float32Array.from([9, 5, 5, 5, 1]); // col 0 = padding (masked even though highest)
    expect(rankTarget(s.slice(), [], 2)).toBe(2); // tied with items 1 and 3
    expect(rankTarget(s.slice(), [], 4)).toBe(3);
    expect(rankTarget(Float32Array.from([0, 1, 2, 3]), [], 3)).toBe(0);
  });

  test('a target in the history is masked too and ranks last', () => {
    expect(rankTarget(Float32Array.from([0, 5, 4, 3]), [1], 1)).toBe(2);
  });

  test('history items are masked, including higher-scored ones', () => {
    const s = Float32Array.from([0, 10, 9, 8, 7]);
    expect(rankTarget(s.slice(), [1, 2], 4)).toBe(1); // only item 3 is above item 4
  });

  test('a NaN target score is ranked last', () => {
    expect(rankTarget(Float32Array.from([0, 1, NaN, 3]), [], 2)).toBe(3);
  });
});

describe('evaluate', () => {
  // 5 items; scores favour items 5 > 4 > 3 > 2 > 1.
  const scores = [100, 1, 2, 3, 4, 5];
  const data = dataset(
    [
      [1, 2, 3, 4], // valid: history [1,2] target 3 → above 3: 5, 4 → rank 2; test: history [1,2,3] target 4 → rank 1
      [5, 4, 1, 2], // valid: history [5,4] target 1 → above 1: 3, 2 → rank 2; test: history [5,4,1] target 2 → 3 above → rank 1
      [2, 3, 5, 1, 4] // valid: history [2,3,5] target 1 → above: 4 → rank 1; test: history [2,3,5,1] target 4 → rank 0
    ],
    5
  );

  test('valid split uses the training part as input; ranks by hand', async () => {
    const scorer = fixedScorer(scores);
    const r = await evaluate(scorer, data, 'valid', { batchSize: 2 });
    expect([...r.ranks]).toEqual([2, 2, 1]);
    expect(scorer.seen).toEqual([[1, 2], [5, 4], [2, 3, 5]]);
    expect(r.metrics).toEqual(metricsFromRanks([2, 2, 1]));
  });

  test('test split uses train + valid item as input', async () => {
    const scorer = fixedScorer(scores);
    const r = await evaluate(scorer, data, 'test');
    expect([...r.ranks]).toEqual([1, 1, 0]);
    expect(scorer.seen).toEqual([[1, 2, 3], [5, 4, 1], [2, 3, 5, 1]]);
  });

  test('top-k excludes history and padding, best first', async () => {
    const r = await evaluate(fixedScorer(scores), data, 'valid', { topK: 2 });
    expect(r.topK!.k).toBe(2);
    expect([...r.topK!.items]).toEqual([5, 4, 3, 2, 4, 1]);
    expect([...r.topK!.scores]).toEqual([5, 4, 3, 2, 4, 1]);
  });

  test('all-equal scores put the target last among unmasked items', async () => {
    const r = await evaluate(fixedScorer([0, 1, 1, 1, 1, 1]), data, 'valid');
    // user 1: 3 unmasked items (3,4,5), target among them → 2 others tie with it → rank 2
    expect([...r.ranks]).toEqual([2, 2, 1]);
  });

  test('reports progress, honours cancellation and rejects a wrong-sized score matrix', async () => {
    const seen: number[] = [];
    await evaluate(fixedScorer(scores), data, 'valid', { batchSize: 1, onProgress: (p) => seen.push(p.done) });
    expect(seen).toEqual([1, 2, 3]);
    await expect(evaluate(fixedScorer(scores), data, 'valid', { signal: { aborted: true } })).rejects.toThrow('Cancelled');
    await expect(evaluate(fixedScorer([0, 1, 2]), data, 'valid')).rejects.toThrow(/9 scores for 3 users × 6 columns/);
  });
});
