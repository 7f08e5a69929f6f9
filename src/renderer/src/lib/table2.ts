// The paper's Table 2 from the catalog's runs: rows, best/second-best marks, the "Improv." row, and its
// CSV and LaTeX (booktabs) renderings. Pure TypeScript: no DOM, no runes (unit-tested under node).
//
// Protocol (DESIGN.md §4): a run is *selected* on validation NDCG@10 only; test metrics are reported,
// never used to choose. Marks compare the values as printed (4 decimals), so equal-looking cells get the
// same mark.
import { isAblatedRun } from '../../../shared/ablation';
import { csvText } from './csv';
import { compareKinds, groupByFamily, modelFamily, modelLabel } from './models';

/** The model the "Improv." row is about. Its row appears only when such runs exist. */
export const OURS_KIND = 'almostrec';

export type MetricKey = 'hr10' | 'hr20' | 'ndcg10' | 'ndcg20' | 'mrr';

export const TABLE2_METRICS: readonly { key: MetricKey; label: string }[] = [
  { key: 'hr10', label: 'HR@10' },
  { key: 'hr20', label: 'HR@20' },
  { key: 'ndcg10', label: 'NDCG@10' },
  { key: 'ndcg20', label: 'NDCG@20' },
  { key: 'mrr', label: 'MRR' }
];

export type MetricValues = Record<MetricKey, number>;

/** The fields of a run the table reads; RunSummary satisfies it, and `model` may be any kind string. */
export interface Table2Run {
  id: number;
  model: string;
  status: string;
  valid: MetricValues | null;
  test: MetricValues | null;
  /** The run's stored config; an ablation study's variants are recognised by it (shared/ablation.ts). */
  config?: Record<string, unknown>;
}

export type Mark = 'best' | 'second' | null;

export interface Table2Row {
  runId: number;
  kind: string;
  label: string;
  family: string;
  valid: MetricValues | null;
  test: MetricValues;
  /** Succeeded runs of this kind with test metrics (the candidates of the validation selection). */
  runsOfKind: number;
  marks: Record<MetricKey, Mark>;
}

export interface Table2Group {
  family: string;
  label: string;
  rows: Table2Row[];
}

export interface Improvement {
  /** The validation-selected ALMOSTREC run. */
  oursRunId: number;
  /** Relative improvement in %, per column; null where no other model has a positive value. */
  values: Record<MetricKey, number | null>;
  /** The best other model per column (among validation-selected runs, one per kind). */
  versus: Record<MetricKey, { runId: number; label: string } | null>;
}

export interface Table2 {
  mode: 'best' | 'all';
  groups: Table2Group[];
  improvement: Improvement | null;
  /** Succeeded runs left out because they have no test metrics (e.g. evaluation pending). */
  withoutTest: number;
  /** Runs left out because they are ablation variants (a component taken away): not the model itself. */
  ablationVariants: number;
}

export interface Table2Options {
  /** Keep one run per model kind, chosen on validation NDCG@10 (default true). */
  bestPerModel?: boolean;
  label?: (kind: string) => string;
  family?: (kind: string) => string;
  compareKinds?: (a: string, b: string) => number;
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** The value as printed, so marks agree with what the reader sees. */
function printed(v: number): number {
  return Number(v.toFixed(4));
}

function hasTest(r: Table2Run): r is Table2Run & { test: MetricValues } {
  return r.status === 'succeeded' && r.test != null;
}

/** Validation NDCG@10, higher is better; a run without one ranks below every run with one. */
function validationScore(r: Table2Run): number {
  const v = r.valid?.ndcg10;
  return finite(v) ? v : -Infinity;
}

/** The run to report for one kind: best validation NDCG@10, ties to the latest run (highest id). */
export function selectByValidation<R extends Table2Run>(runs: readonly R[]): R | null {
  let best: R | null = null;
  for (const r of runs) {
    if (best == null) best = r;
    else {
      const d = validationScore(r) - validationScore(best);
      if (d > 0 || ((d === 0 || Number.isNaN(d)) && r.id > best.id)) best = r;
    }
  }
  return best;
}

function byKind<R extends Table2Run>(runs: readonly R[]): Map<string, R[]> {
  const map = new Map<string, R[]>();
  for (const r of runs) {
    const list = map.get(r.model);
    if (list) list.push(r);
    else map.set(r.model, [r]);
  }
  return map;
}

function emptyMarks(): Record<MetricKey, Mark> {
  return { hr10: null, hr20: null, ndcg10: null, ndcg20: null, mrr: null };
}

export function buildTable2(runs: readonly Table2Run[], options: Table2Options = {}): Table2 {
  const bestPerModel = options.bestPerModel ?? true;
  const label = options.label ?? modelLabel;
  const family = options.family ?? modelFamily;
  const cmpKinds = options.compareKinds ?? compareKinds;

  const ablated = (r: Table2Run) => r.config !== undefined && isAblatedRun(r.config);
  const candidates = runs.filter((r) => !ablated(r));
  const eligible = candidates.filter(hasTest);
  const withoutTest = candidates.filter((r) => r.status === 'succeeded' && r.test == null).length;
  const kinds = byKind(eligible);
  const selected = new Map<string, Table2Run & { test: MetricValues }>();
  for (const [kind, list] of kinds) selected.set(kind, selectByValidation(list)!);

  const shown = bestPerModel ? [...selected.values()] : eligible;
  const rows: Table2Row[] = shown
    .slice()
    .sort((a, b) => cmpKinds(a.model, b.model) || a.id - b.id)
    .map((r) => ({
      runId: r.id,
      kind: r.model,
      label: label(r.model),
      family: family(r.model),
      valid: r.valid,
      test: r.test,
      runsOfKind: kinds.get(r.model)?.length ?? 1,
      marks: emptyMarks()
    }));

  for (const { key } of TABLE2_METRICS) {
    const distinct = [...new Set(rows.map((r) => r.test[key]).filter(finite).map(printed))].sort((a, b) => b - a);
    const [first, second] = distinct;
    for (const row of rows) {
      const v = row.test[key];
      if (!finite(v)) continue;
      const p = printed(v);
      row.marks[key] = p === first ? 'best' : second !== undefined && p === second ? 'second' : null;
    }
  }

  const groups = groupByFamily(rows, (r) => r.family).map((g) => ({ family: g.family, label: g.label, rows: g.items }));
  const ablationVariants = runs.length - candidates.length;
  return { mode: bestPerModel ? 'best' : 'all', groups, improvement: improvement(selected, label), withoutTest, ablationVariants };
}

/** ALMOSTREC's validation-selected run against the best validation-selected run of every other kind, per column. */
function improvement(selected: Map<string, Table2Run & { test: MetricValues }>, label: (kind: string) => string): Improvement | null {
  const ours = selected.get(OURS_KIND);
  if (!ours) return null;
  const others = [...selected.values()].filter((r) => r.model !== OURS_KIND);
  const values = {} as Record<MetricKey, number | null>;
  const versus = {} as Record<MetricKey, { runId: number; label: string } | null>;
  for (const { key } of TABLE2_METRICS) {
    let best: (Table2Run & { test: MetricValues }) | null = null;
    for (const r of others) if (finite(r.test[key]) && (best == null || r.test[key] > best.test[key])) best = r;
    const base = best?.test[key];
    const mine = ours.test[key];
    values[key] = best && finite(base) && base > 0 && finite(mine) ? ((mine - base) / base) * 100 : null;
    versus[key] = best ? { runId: best.id, label: label(best.model) } : null;
  }
  return { oursRunId: ours.id, values, versus };
}

export function allRows(table: Table2): Table2Row[] {
  return table.groups.flatMap((g) => g.rows);
}

export function formatMetric(v: number | null | undefined): string {
  return finite(v) ? v.toFixed(4) : '—';
}

export function formatImprovement(v: number | null | undefined): string {
  return finite(v) ? `${v.toFixed(2)}%` : '—';
}

// ---------------------------------------------------------------------------------------------- CSV

/** RFC 4180 CSV (CRLF). Metrics with 4 decimals; the "Improv." row, when present, in percent. */
export function table2Csv(table: Table2): string {
  const header = ['Family', 'Model', 'Kind', 'Run', ...TABLE2_METRICS.map((m) => m.label), 'Valid NDCG@10'];
  const lines = [header];
  for (const g of table.groups) {
    for (const r of g.rows) {
      lines.push([
        g.label,
        r.label,
        r.kind,
        String(r.runId),
        ...TABLE2_METRICS.map((m) => (finite(r.test[m.key]) ? r.test[m.key].toFixed(4) : '')),
        finite(r.valid?.ndcg10) ? r.valid.ndcg10.toFixed(4) : ''
      ]);
    }
  }
  if (table.improvement) {
    const imp = table.improvement;
    lines.push(['', 'Improv.', OURS_KIND, String(imp.oursRunId), ...TABLE2_METRICS.map((m) => (finite(imp.values[m.key]) ? formatImprovement(imp.values[m.key]) : '')), '']);
  }
  return csvText(lines);
}

// -------------------------------------------------------------------------------------------- LaTeX

const TEX_ESCAPES: Record<string, string> = {
  '\\': '\\textbackslash{}',
  '&': '\\&',
  '%': '\\%',
  $: '\\$',
  '#': '\\#',
  _: '\\_',
  '{': '\\{',
  '}': '\\}',
  '~': '\\textasciitilde{}',
  '^': '\\textasciicircum{}'
};

export function texEscape(s: string): string {
  return s.replace(/[\\&%$#_{}~^]/g, (c) => TEX_ESCAPES[c]);
}

function texCell(v: number, mark: Mark): string {
  if (!finite(v)) return '--';
  const s = formatMetric(v);
  return mark === 'best' ? `\\textbf{${s}}` : mark === 'second' ? `\\underline{${s}}` : s;
}

export interface LatexOptions {
  /** Written as a comment line above the tabular (e.g. the dataset and the selection rule). */
  title?: string;
}

/**
 * A booktabs tabular in the paper's layout: a family column (named on each group's first row), the model,
 * then the five metrics; best per column in \textbf, second best in \underline; "Improv." last.
 * Needs \usepackage{booktabs}. In "all runs" mode each model name carries its run id.
 */
export function table2Latex(table: Table2, options: LatexOptions = {}): string {
  const cols = TABLE2_METRICS.length + 2;
  const out: string[] = [];
  if (options.title) out.push(`% ${options.title.replace(/[\r\n]+/g, ' ')}`);
  const runs = allRows(table).map((r) => `${r.label} #${r.runId}`);
  if (runs.length > 0) out.push(`% Runs: ${runs.join(', ')}`);
  out.push('% Requires \\usepackage{booktabs}; best per column in bold, second best underlined.');
  out.push(`\\begin{tabular}{ll${'c'.repeat(TABLE2_METRICS.length)}}`);
  out.push('\\toprule');
  out.push(['Type', 'Model', ...TABLE2_METRICS.map((m) => m.label)].join(' & ') + ' \\\\');
  table.groups.forEach((g) => {
    out.push('\\midrule');
    g.rows.forEach((r, i) => {
      const name = table.mode === 'all' ? `${texEscape(r.label)} (\\#${r.runId})` : texEscape(r.label);
      out.push([i === 0 ? texEscape(g.label) : '', name, ...TABLE2_METRICS.map((m) => texCell(r.test[m.key], r.marks[m.key]))].join(' & ') + ' \\\\');
    });
  });
  if (table.groups.length === 0) out.push('\\midrule', `\\multicolumn{${cols}}{c}{No runs with test metrics} \\\\`);
  if (table.improvement) {
    const imp = table.improvement;
    out.push('\\midrule');
    out.push(['\\multicolumn{2}{l}{Improv.}', ...TABLE2_METRICS.map((m) => (finite(imp.values[m.key]) ? texEscape(formatImprovement(imp.values[m.key])) : '--'))].join(' & ') + ' \\\\');
  }
  out.push('\\bottomrule');
  out.push('\\end{tabular}');
  return out.join('\n') + '\n';
}
