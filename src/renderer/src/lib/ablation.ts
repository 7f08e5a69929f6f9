// The ablation study as the paper's Figure 3 draws it — grouped bars of HR@k and NDCG@k per variant on the
// test split, the full model highlighted — and its CSV export. Pure: unit tests import it under node.
import type { AblationStudy, AblationStudyVariant } from '../../../shared/ablation';
import { barChartFigure } from '../../../shared/figures/bar-chart-svg';
import type { Figure } from '../../../shared/figures/svg';
import type { Metrics } from '../../../shared/types';
import type { BarGroup, BarSeries } from './barChart';
import { ACCENT_COLOR, HELDOUT_COLOR } from './colors';
import { csvText } from './csv';

export function ablationSeries(k: 10 | 20): BarSeries[] {
  return [
    { name: `HR@${k}`, color: ACCENT_COLOR },
    { name: `NDCG@${k}`, color: HELDOUT_COLOR }
  ];
}

/** What a variant without test metrics shows in its place. */
function statusNote(v: AblationStudyVariant): string {
  switch (v.run.status) {
    case 'running':
      return 'training…';
    case 'succeeded':
      return 'not evaluated';
    default:
      return v.run.status; // queued, failed, cancelled
  }
}

export function ablationGroups(study: AblationStudy, k: 10 | 20): BarGroup[] {
  return study.variants.map((v) => {
    const t = v.run.test;
    return {
      key: String(v.run.id),
      label: v.label,
      highlight: v.variant === 'full',
      values: t ? (k === 10 ? [t.hr10, t.ndcg10] : [t.hr20, t.ndcg20]) : [null, null],
      note: t ? undefined : statusNote(v)
    };
  });
}

/** The view's two charts (k = 10, 20) as one publication figure (Figure 3). */
export function ablationFigure(study: AblationStudy): Figure {
  return barChartFigure(
    ([10, 20] as const).map((k) => ({ title: `HR@${k} and NDCG@${k} (test)`, groups: ablationGroups(study, k), series: ablationSeries(k) })),
    `Ablation study #${study.id} on ${study.datasetName}`
  );
}

/** Relative change of a test metric against the study's full model, in %; null when either is missing. */
export function changeVsFull(study: AblationStudy, v: AblationStudyVariant, key: keyof Metrics): number | null {
  const full = study.variants.find((x) => x.variant === 'full')?.run.test?.[key];
  const mine = v.run.test?.[key];
  return full != null && full > 0 && mine != null ? ((mine - full) / full) * 100 : null;
}

const METRIC_COLUMNS: readonly { key: keyof Metrics; label: string }[] = [
  { key: 'hr10', label: 'HR@10' },
  { key: 'ndcg10', label: 'NDCG@10' },
  { key: 'hr20', label: 'HR@20' },
  { key: 'ndcg20', label: 'NDCG@20' },
  { key: 'mrr', label: 'MRR' }
];

/** One row per variant: test metrics with 4 decimals, validation NDCG@10, and NDCG@10 against the full model. */
export function ablationCsv(study: AblationStudy): string {
  const header = ['Study', 'Variant', 'Label', 'Run', 'Status', ...METRIC_COLUMNS.map((m) => m.label), 'Valid NDCG@10', 'NDCG@10 vs full (%)'];
  const fixed = (v: number | null | undefined, digits = 4) => (v != null && Number.isFinite(v) ? v.toFixed(digits) : '');
  const rows = study.variants.map((v) => [
    String(study.id),
    v.variant,
    v.label,
    String(v.run.id),
    v.run.status,
    ...METRIC_COLUMNS.map((m) => fixed(v.run.test?.[m.key])),
    fixed(v.run.valid?.ndcg10),
    v.variant === 'full' ? '' : fixed(changeVsFull(study, v, 'ndcg10'), 2)
  ]);
  return csvText([header, ...rows]);
}
