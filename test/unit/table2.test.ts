import { describe, expect, it } from 'vitest';
import {
  allRows,
  buildTable2,
  formatImprovement,
  selectByValidation,
  table2Csv,
  table2Latex,
  texEscape,
  type MetricValues,
  type Table2Run
} from '../../src/renderer/src/lib/table2';
import { fileSlug } from '../../src/renderer/src/lib/csv';

function m(v: number, over: Partial<MetricValues> = {}): MetricValues {
  return { hr10: v, hr20: v * 1.5, ndcg10: v / 2, ndcg20: v / 1.8, mrr: v / 3, ...over };
}

function run(id: number, model: string, valid: number | null, test: MetricValues | null, status = 'succeeded'): Table2Run {
  return { id, model, status, valid: valid == null ? null : m(1, { ndcg10: valid }), test };
}

const RUNS: Table2Run[] = [
  run(1, 'popularity', 0.01, m(0.05)),
  run(2, 'sasrec', 0.05, m(0.2)),
  // Better on test but worse on validation: must never be the reported SASRec run.
  run(3, 'sasrec', 0.04, m(0.3)),
  run(4, 'sasrec_id_v', 0.06, m(0.25)),
  run(5, 'bpr', 0.02, m(0.1)),
  run(6, 'sasrec', null, null, 'failed'),
  run(7, 'gru4rec', 0.03, null) // succeeded, evaluation pending
];

describe('Table 2', () => {
  it('keeps one run per kind chosen on validation NDCG@10, never on test', () => {
    const t = buildTable2(RUNS);
    const ids = allRows(t).map((r) => r.runId);
    expect(ids).toContain(2);
    expect(ids).not.toContain(3);
    expect(t.withoutTest).toBe(1);
    expect(allRows(t).find((r) => r.kind === 'sasrec')?.runsOfKind).toBe(2);
  });

  it('breaks validation ties towards the latest run and ranks missing validation last', () => {
    expect(selectByValidation([run(1, 'x', 0.1, m(0.1)), run(2, 'x', 0.1, m(0.2))])?.id).toBe(2);
    expect(selectByValidation([run(4, 'x', null, m(0.9)), run(3, 'x', 0.01, m(0.1))])?.id).toBe(3);
  });

  it('groups by family in paper order, then later families, unknown kinds last', () => {
    const t = buildTable2([...RUNS, run(8, 'almostrec', 0.1, m(0.4)), run(9, 'zeta', 0.1, m(0.01))], {
      family: (k) => (k === 'almostrec' ? 'multimodal-llm' : k === 'zeta' ? 'other' : ({ popularity: 'non-sequential', bpr: 'non-sequential', sasrec: 'sequential', sasrec_id_v: 'visual-sequential' } as Record<string, string>)[k])
    });
    expect(t.groups.map((g) => g.family)).toEqual(['non-sequential', 'sequential', 'visual-sequential', 'multimodal-llm', 'other']);
    expect(t.groups[3].label).toBe('LLM: text + visual + sequential');
    // Catalogue order inside a family: Popularity is listed before BPR-MF.
    expect(t.groups[0].rows.map((r) => r.kind)).toEqual(['popularity', 'bpr']);
  });

  it('uses the catalogue for labels and families, and the kind itself for unknown kinds', () => {
    const t = buildTable2([run(1, 'sasrec_id_v', 0.1, m(0.1)), run(2, 'almostrec', 0.1, m(0.2)), run(3, 'zeta', 0.1, m(0.3)), run(4, 'e4srec', 0.1, m(0.15))]);
    expect(allRows(t).map((r) => [r.label, r.family])).toEqual([
      ['SASRec_ID+V', 'visual-sequential'],
      ['E4SRec', 'text-sequential-llm'],
      ['ALMOSTREC', 'multimodal-llm'],
      ['zeta', 'other']
    ]);
    // The paper's two LLM groups: Text + Sequential (E4SRec…) before Text + Visual + Sequential (ALMOSTREC…).
    expect(t.groups.map((g) => g.label)).toEqual(['Visual sequential', 'LLM: text + sequential', 'LLM: text + visual + sequential', 'Other']);
  });

  it('marks the best and second-best value per column, ties by the printed value', () => {
    const t = buildTable2([
      run(1, 'popularity', 0.1, m(0.1, { mrr: 0.12341 })),
      run(2, 'sasrec', 0.1, m(0.3, { mrr: 0.12344 })),
      run(3, 'bpr', 0.1, m(0.2, { mrr: 0.01 }))
    ]);
    const byId = new Map(allRows(t).map((r) => [r.runId, r]));
    expect(byId.get(2)?.marks.hr10).toBe('best');
    expect(byId.get(3)?.marks.hr10).toBe('second');
    expect(byId.get(1)?.marks.hr10).toBeNull();
    // 0.12341 and 0.12344 both print as 0.1234: both best, the next distinct value is second.
    expect(byId.get(1)?.marks.mrr).toBe('best');
    expect(byId.get(2)?.marks.mrr).toBe('best');
    expect(byId.get(3)?.marks.mrr).toBe('second');
  });

  it('shows every run with test metrics in "all runs" mode', () => {
    const t = buildTable2(RUNS, { bestPerModel: false });
    expect(t.mode).toBe('all');
    expect(allRows(t).map((r) => r.runId).sort()).toEqual([1, 2, 3, 4, 5]);
    const sasrec = allRows(t).filter((r) => r.kind === 'sasrec');
    expect(sasrec.map((r) => r.runId)).toEqual([2, 3]);
    expect(sasrec[1].marks.hr10).toBe('best');
  });

  it('leaves ablation-study variants out of the ALMOSTREC row, but not the study\'s full model', () => {
    const tagged = (r: Table2Run, variant: string): Table2Run => ({ ...r, config: { ablationStudy: 20, ablationVariant: variant } });
    const runs = [
      ...RUNS,
      tagged(run(20, 'almostrec', 0.2, m(0.5)), 'full'),
      // Better on validation, but with the images taken away it is not ALMOSTREC.
      tagged(run(21, 'almostrec', 0.3, m(0.6)), 'no-images'),
      tagged(run(22, 'almostrec', 0.3, m(0.6)), 'no-lora')
    ];
    for (const bestPerModel of [true, false]) {
      const t = buildTable2(runs, { bestPerModel });
      expect(allRows(t).filter((r) => r.kind === 'almostrec').map((r) => r.runId)).toEqual([20]);
      expect(t.improvement?.oursRunId).toBe(20);
      expect(t.ablationVariants).toBe(2);
    }
  });

  it('has no Improv. row without ALMOSTREC runs', () => {
    expect(buildTable2(RUNS).improvement).toBeNull();
    expect(table2Csv(buildTable2(RUNS))).not.toContain('Improv.');
    expect(table2Latex(buildTable2(RUNS))).not.toContain('Improv.');
  });

  it('computes the Improv. row against the best other validation-selected run per column', () => {
    const runs = [
      ...RUNS,
      run(10, 'almostrec', 0.2, m(0.5, { mrr: 0.05 })),
      run(11, 'almostrec', 0.1, m(0.9)) // better on test, worse on validation: not the reported one
    ];
    const t = buildTable2(runs, { bestPerModel: false });
    const imp = t.improvement!;
    expect(imp.oursRunId).toBe(10);
    // Best other HR@10 is SASRec_ID+V (0.25); SASRec run 3 (0.3) is not validation-selected.
    expect(imp.versus.hr10).toEqual({ runId: 4, label: 'SASRec_ID+V' });
    expect(imp.values.hr10).toBeCloseTo(100, 10);
    // MRR: 0.05 vs 0.25 / 3 → negative.
    expect(imp.values.mrr).toBeCloseTo(((0.05 - 0.25 / 3) / (0.25 / 3)) * 100, 10);
    expect(formatImprovement(imp.values.hr10)).toBe('100.00%');
  });

  it('gives no improvement against a zero baseline', () => {
    const t = buildTable2([run(1, 'popularity', 0, m(0)), run(2, 'almostrec', 0.1, m(0.1))]);
    expect(t.improvement?.values.hr10).toBeNull();
  });

  it('writes RFC 4180 CSV with 4 decimals and quoted fields', () => {
    const t = buildTable2([run(1, 'popularity', 0.01, m(0.05)), run(2, 'odd, "kind"', 0.1, m(0.123456)), run(3, 'almostrec', 0.2, m(0.2))]);
    const csv = table2Csv(t);
    const lines = csv.split('\r\n');
    expect(lines[0]).toBe('Family,Model,Kind,Run,HR@10,HR@20,NDCG@10,NDCG@20,MRR,Valid NDCG@10');
    expect(lines[1]).toBe('Non-sequential,Popularity,popularity,1,0.0500,0.0750,0.0250,0.0278,0.0167,0.0100');
    expect(csv).toContain('"odd, ""kind""","odd, ""kind""",2,0.1235');
    // vs the best other model per column (run 2, 0.123456)
    expect(lines.at(-2)).toMatch(/^,Improv\.,almostrec,3,62\.00%,/);
    expect(csv.endsWith('\r\n')).toBe(true);
  });

  it('writes a booktabs tabular with bold/underline, escaped labels and the Improv. row', () => {
    const t = buildTable2([run(1, 'popularity', 0.01, m(0.05)), run(2, 'sasrec_id_v', 0.05, m(0.2)), run(3, 'almostrec', 0.1, m(0.3))]);
    const tex = table2Latex(t, { title: 'Table 2 on ml-latest-small\nbest run per model' });
    const lines = tex.trim().split('\n');
    expect(lines[0]).toBe('% Table 2 on ml-latest-small best run per model');
    expect(tex).toContain('\\begin{tabular}{llccccc}');
    expect(tex).toContain('\\toprule\nType & Model & HR@10 & HR@20 & NDCG@10 & NDCG@20 & MRR \\\\');
    expect(tex).toContain('Visual sequential & SASRec\\_ID+V & \\underline{0.2000} &');
    expect(tex).toContain('LLM: text + visual + sequential & ALMOSTREC & \\textbf{0.3000} &');
    expect(tex).toContain('Non-sequential & Popularity & 0.0500 &');
    expect(tex).toContain('\\multicolumn{2}{l}{Improv.} & 50.00\\% &');
    expect(lines.at(-2)).toBe('\\bottomrule');
    expect(lines.at(-1)).toBe('\\end{tabular}');
    // Balanced braces: every \textbf{ / \underline{ closes.
    expect((tex.match(/{/g) ?? []).length).toBe((tex.match(/}/g) ?? []).length);
  });

  it('names runs in "all runs" LaTeX and escapes TeX specials', () => {
    const t = buildTable2([run(7, 'sasrec', 0.1, m(0.1)), run(8, 'sasrec', 0.2, m(0.2))], { bestPerModel: false });
    expect(table2Latex(t)).toContain('Sequential & SASRec (\\#7) &');
    expect(texEscape('a_b & 5% #1 {x} ~ ^ \\')).toBe('a\\_b \\& 5\\% \\#1 \\{x\\} \\textasciitilde{} \\textasciicircum{} \\textbackslash{}');
    expect(fileSlug('ml-latest-small (v2)')).toBe('ml-latest-small-v2');
  });

  it('renders an empty table without failing', () => {
    const t = buildTable2([]);
    expect(t.groups).toEqual([]);
    expect(table2Csv(t).split('\r\n')).toHaveLength(2);
    expect(table2Latex(t)).toContain('No runs with test metrics');
  });
});
