// Ranking metrics exactly as DESIGN.md §4: rank = number of items scored strictly higher than the target.
import type { Metrics } from '../../shared/types';

/** Mean HR@10/20, NDCG@10/20 and MRR over 0-based ranks. An empty list gives all zeros. */
export function metricsFromRanks(ranks: ArrayLike<number>): Metrics {
  const n = ranks.length;
  let hr10 = 0;
  let hr20 = 0;
  let ndcg10 = 0;
  let ndcg20 = 0;
  let mrr = 0;
  for (let i = 0; i < n; i++) {
    const r = ranks[i];
    const gain = 1 / Math.log2(r + 2);
    if (r < 10) {
      hr10 += 1;
      ndcg10 += gain;
    }
    if (r < 20) {
      hr20 += 1;
      ndcg20 += gain;
    }
    mrr += 1 / (r + 1);
  }
  const d = Math.max(1, n);
  return { hr10: hr10 / d, ndcg10: ndcg10 / d, hr20: hr20 / d, ndcg20: ndcg20 / d, mrr: mrr / d };
}
