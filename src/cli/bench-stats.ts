// Figures as every benchmark prints them: metrics rounded to 6 decimals, medians of per-epoch/step times.
import type { Metrics } from '../shared/types';

export function roundMetrics(m: Metrics): Metrics {
  const r = (x: number) => Math.round(x * 1e6) / 1e6;
  return { hr10: r(m.hr10), ndcg10: r(m.ndcg10), hr20: r(m.hr20), ndcg20: r(m.ndcg20), mrr: r(m.mrr) };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length === 0 ? 0 : s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}
