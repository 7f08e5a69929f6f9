// Grouped bars: the data and scale rules the Ablation view's chart (renderer components/BarChart.svelte) and
// its exported figure (bar-chart-svg.ts) share.

export interface BarSeries {
  name: string;
  color: string;
}

export interface BarGroup {
  key: string;
  label: string;
  /** One value per series, in series order; null = no value yet. */
  values: (number | null)[];
  /** Drawn on a shaded band with a bold label (e.g. the full model among its ablations). */
  highlight?: boolean;
  /** Said in the group's place while it has no values (e.g. "queued", "training…", "failed"). */
  note?: string;
}

/** The top of the y axis: the largest value rounded up to 1, 2, 2.5 or 5 × 10^n (1 when nothing is positive). */
export function niceMax(values: readonly (number | null)[]): number {
  const max = Math.max(0, ...values.filter((v): v is number => v != null && Number.isFinite(v)));
  if (max <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(max));
  const step = [1, 2, 2.5, 5, 10].find((s) => s * magnitude >= max * (1 - 1e-9))!;
  return step * magnitude;
}

/** Splits a label into lines of at most `maxChars` characters at spaces (a longer word keeps its own line). */
export function wrapLabel(label: string, maxChars: number): string[] {
  const lines: string[] = [];
  for (const word of label.split(/\s+/).filter(Boolean)) {
    const last = lines.at(-1);
    if (last !== undefined && last.length + 1 + word.length <= maxChars) lines[lines.length - 1] = `${last} ${word}`;
    else lines.push(word);
  }
  return lines;
}
