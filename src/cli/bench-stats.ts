// Figures as every benchmark prints them: metrics rounded to 6 decimals, medians of per-epoch/step times.
import type { Metrics } from '../shared/types';

export function round(x: number, digits: number): number {
  return Math.round(x * 10 ** digits) / 10 ** digits;
}

const METRIC_ORDER: readonly (keyof Metrics)[] = ['hr10', 'ndcg10', 'hr20', 'ndcg20', 'mrr'];

/** The metrics a record has (ours, or the reference's subset) to 6 decimals, always in the same order. */
export function roundMetrics<M extends Partial<Metrics>>(m: M): M {
  return Object.fromEntries(METRIC_ORDER.filter((k) => m[k] !== undefined).map((k) => [k, round(m[k]!, 6)])) as M;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length === 0 ? 0 : s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}
