import { describe, expect, test } from 'vitest';
import { metricsFromRanks } from '../../src/core/eval/metrics';

describe('metricsFromRanks (DESIGN §4)', () => {
  test('single ranks by hand', () => {
    // rank 0: HR 1, NDCG 1/log2(2) = 1, MRR 1
    expect(metricsFromRanks([0])).toEqual({ hr10: 1, ndcg10: 1, hr20: 1, ndcg20: 1, mrr: 1 });
    // rank 2: NDCG 1/log2(4) = 0.5, MRR 1/3
    const r2 = metricsFromRanks([2]);
    expect(r2.ndcg10).toBeCloseTo(0.5, 12);
    expect(r2.mrr).toBeCloseTo(1 / 3, 12);
    // rank 9 is the last hit of @10: NDCG 1/log2(11)
    expect(metricsFromRanks([9]).ndcg10).toBeCloseTo(1 / Math.log2(11), 12);
    // rank 10 misses @10, hits @20
    const r10 = metricsFromRanks([10]);
    expect(r10.hr10).toBe(0);
    expect(r10.ndcg10).toBe(0);
    expect(r10.hr20).toBe(1);
    expect(r10.ndcg20).toBeCloseTo(1 / Math.log2(12), 12);
    expect(r10.mrr).toBeCloseTo(1 / 11, 12);
    // rank 20 misses both
    const r20 = metricsFromRanks([20]);
    expect([r20.hr10, r20.hr20, r20.ndcg10, r20.ndcg20]).toEqual([0, 0, 0, 0]);
    expect(r20.mrr).toBeCloseTo(1 / 21, 12);
  });

  test('averages over users', () => {
    // ranks 0, 1, 15, 100:
    // HR@10 = 2/4; HR@20 = 3/4
    // NDCG@10 = (1 + 1/log2 3)/4; NDCG@20 = (1 + 1/log2 3 + 1/log2 17)/4
    // MRR = (1 + 1/2 + 1/16 + 1/101)/4
    const m = metricsFromRanks(new Int32Array([0, 1, 15, 100]));
    expect(m.hr10).toBe(0.5);
    expect(m.hr20).toBe(0.75);
    expect(m.ndcg10).toBeCloseTo((1 + 1 / Math.log2(3)) / 4, 12);
    expect(m.ndcg20).toBeCloseTo((1 + 1 / Math.log2(3) + 1 / Math.log2(17)) / 4, 12);
    expect(m.mrr).toBeCloseTo((1 + 0.5 + 1 / 16 + 1 / 101) / 4, 12);
    expect(m.ndcg10).toBeCloseTo(0.407732, 5);
  });

  test('empty input gives zeros, not NaN', () => {
    expect(metricsFromRanks([])).toEqual({ hr10: 0, ndcg10: 0, hr20: 0, ndcg20: 0, mrr: 0 });
  });
});
