// Per-user recommendations of a run as CSV: the stored top-k of every test user (Runs view, CLI), or the
// columns of one case study. Ranks are 1-based, as people read them; "hit" = the user's held-out test item.
import { csvText } from '../csv';
import type { CaseStudy } from '../types';

/** One recommended item of one user (runs.recommendations, and the CLI). */
export interface RecommendationRow {
  /** The user's id in the dataset's own files. */
  user: string;
  /** 1-based. */
  rank: number;
  /** The item's id in the dataset's own files. */
  itemId: string;
  title: string;
  score: number;
  hit: boolean;
}

export const RECOMMENDATIONS_CSV_HEADER = ['user', 'rank', 'item_id', 'title', 'score', 'hit'] as const;

/** Full float32 precision (9 significant digits): ties and near-ties stay visible. */
const score = (s: number) => (Number.isFinite(s) ? String(Number(s.toPrecision(9))) : String(s));
const fields = (r: RecommendationRow) => [r.user, String(r.rank), r.itemId, r.title, score(r.score), r.hit ? '1' : '0'];

export function recommendationsCsv(rows: readonly RecommendationRow[]): string {
  return csvText([[...RECOMMENDATIONS_CSV_HEADER], ...rows.map(fields)]);
}

/** The case study's columns as CSV: the same columns, after the run and its model. */
export function caseStudyCsv(study: CaseStudy): string {
  const rows = study.columns.flatMap((c) =>
    c.recommendations.map((r, i) => [
      String(c.runId),
      c.model,
      ...fields({ user: study.user.externalId, rank: i + 1, itemId: r.item.externalId, title: r.item.title, score: r.score, hit: r.hit })
    ])
  );
  return csvText([['run', 'model', ...RECOMMENDATIONS_CSV_HEADER], ...rows]);
}
