// The pure parts of the Ablation view and the ALMOSTREC Train form: Figure 3's bar groups (full model
// highlighted, a note where a variant has no test figures yet), the CSV export, the bar chart's scale, and
// the pickers for a config's backbone and sequential run (with their hints when nothing fits yet).
import { describe, expect, it } from 'vitest';
import type { AblationStudy, AblationStudyVariant, AblationVariantId } from '../../src/shared/ablation';
import type { BackboneSummary } from '../../src/shared/backbones';
import type { Metrics, RunStatus, RunSummary } from '../../src/shared/types';
import { ablationCsv, ablationGroups, ablationSeries, changeVsFull } from '../../src/renderer/src/lib/ablation';
import { niceMax, wrapLabel } from '../../src/renderer/src/lib/barChart';
import { fieldProblem, modelSpec } from '../../src/renderer/src/lib/models';
import { backbonePicker, gru4recPicker, pickerProblem, sequentialRunPicker } from '../../src/renderer/src/lib/references';

const metrics = (v: number): Metrics => ({ hr10: v, ndcg10: v / 2, hr20: v * 1.5, ndcg20: v / 1.6, mrr: v / 3 });

function run(id: number, model: string, status: RunStatus, test: Metrics | null, valid: Metrics | null = test): RunSummary {
  return { id, datasetId: 1, datasetName: 'tiny', model: model as RunSummary['model'], status, backend: null, config: {}, startedAt: null, endedAt: null, error: null, valid, test, bestEpoch: null };
}

const variant = (v: AblationVariantId, label: string, r: RunSummary): AblationStudyVariant => ({ variant: v, label, run: r });

const study: AblationStudy = {
  id: 10,
  datasetId: 1,
  datasetName: 'tiny',
  jobId: 'j',
  status: 'running',
  variants: [
    variant('full', 'ALMOSTREC', run(10, 'almostrec', 'succeeded', metrics(0.4))),
    variant('no-images', 'w/o images', run(11, 'almostrec', 'succeeded', metrics(0.3))),
    variant('no-text', 'w/o text', run(12, 'almostrec', 'running', null)),
    variant('no-lora', 'w/o LoRA', run(13, 'almostrec', 'queued', null)),
    variant('concat', 'concat layout (eq. 1)', run(14, 'almostrec', 'succeeded', metrics(0.2)))
  ]
};

describe('ablation chart and export', () => {
  it('draws one group per variant with HR@k and NDCG@k, the full model highlighted', () => {
    expect(ablationSeries(10).map((s) => s.name)).toEqual(['HR@10', 'NDCG@10']);
    expect(ablationGroups(study, 10)).toEqual([
      { key: '10', label: 'ALMOSTREC', highlight: true, values: [0.4, 0.2], note: undefined },
      { key: '11', label: 'w/o images', highlight: false, values: [0.3, 0.15], note: undefined },
      { key: '12', label: 'w/o text', highlight: false, values: [null, null], note: 'training…' },
      { key: '13', label: 'w/o LoRA', highlight: false, values: [null, null], note: 'queued' },
      { key: '14', label: 'concat layout (eq. 1)', highlight: false, values: [0.2, 0.1], note: undefined }
    ]);
    expect(ablationGroups(study, 20)[1].values).toEqual([0.3 * 1.5, 0.3 / 1.6]);
  });

  it('compares each variant with the full model and exports every number as CSV', () => {
    expect(changeVsFull(study, study.variants[1], 'ndcg10')).toBeCloseTo(-25, 10);
    expect(changeVsFull(study, study.variants[2], 'ndcg10')).toBeNull();
    const lines = ablationCsv(study).split('\r\n');
    expect(lines[0]).toBe('Study,Variant,Label,Run,Status,HR@10,NDCG@10,HR@20,NDCG@20,MRR,Valid NDCG@10,NDCG@10 vs full (%)');
    expect(lines[1]).toBe('10,full,ALMOSTREC,10,succeeded,0.4000,0.2000,0.6000,0.2500,0.1333,0.2000,');
    expect(lines[2]).toBe('10,no-images,w/o images,11,succeeded,0.3000,0.1500,0.4500,0.1875,0.1000,0.1500,-25.00');
    expect(lines[3]).toBe('10,no-text,w/o text,12,running,,,,,,,');
    expect(lines[5]).toBe('10,concat,concat layout (eq. 1),14,succeeded,0.2000,0.1000,0.3000,0.1250,0.0667,0.1000,-50.00');
    expect(lines).toHaveLength(7); // header, 5 variants, and the empty string after the last CRLF
  });

  it('scales the bars to a round top and wraps long labels at spaces', () => {
    expect(niceMax([0.042, null, 0.031])).toBe(0.05);
    expect(niceMax([0.18])).toBe(0.2);
    expect(niceMax([0.2])).toBe(0.2);
    expect(niceMax([0.23])).toBe(0.25);
    expect(niceMax([null, 0])).toBe(1);
    expect(wrapLabel('w/o pretrained IDs', 10)).toEqual(['w/o', 'pretrained', 'IDs']);
    expect(wrapLabel('w/o pretrained IDs', 14)).toEqual(['w/o pretrained', 'IDs']);
    expect(wrapLabel('ALMOSTREC', 4)).toEqual(['ALMOSTREC']);
  });
});

describe('ALMOSTREC form pickers', () => {
  const backbone = (id: number, name: string, status: BackboneSummary['status'], architecture: string | null): BackboneSummary => ({
    id,
    name,
    source: 'pretrained',
    status,
    datasetId: 1,
    datasetName: 'tiny',
    path: '/b',
    config: {},
    architecture,
    parameters: null,
    createdAt: '',
    startedAt: null,
    endedAt: null,
    error: null,
    backend: null
  });

  it('offers finished backbones, newest first, by name and architecture; says where to get one when there is none', () => {
    const p = backbonePicker([backbone(1, 'old', 'succeeded', 'A'), backbone(2, 'busy', 'running', 'B'), backbone(3, 'new', 'succeeded', null)]);
    expect(p.options).toEqual([
      { value: 3, label: 'new · compact' },
      { value: 1, label: 'old · A' }
    ]);
    expect(backbonePicker([backbone(2, 'busy', 'running', 'B')]).options).toEqual([]);
    expect(p.empty).toBe('No finished backbone yet: pretrain or register a backbone in Backbones.');
  });

  it('offers finished SASRec and GRU4Rec runs with their validation NDCG@10, and GRU4Rec alone for the ablation', () => {
    const runs = [run(1, 'sasrec', 'succeeded', metrics(0.2)), run(2, 'gru4rec', 'succeeded', metrics(0.1)), run(3, 'sasrec', 'failed', null), run(4, 'bpr', 'succeeded', metrics(0.3))];
    expect(sequentialRunPicker(runs).options).toEqual([
      { value: 2, label: '#2 GRU4Rec · valid NDCG@10 0.0500' },
      { value: 1, label: '#1 SASRec · valid NDCG@10 0.1000' }
    ]);
    expect(gru4recPicker(runs).options.map((o) => o.value)).toEqual([2]);
    expect(sequentialRunPicker([]).empty).toBe('No finished SASRec or GRU4Rec run on this dataset: train SASRec first.');
  });

  it('asks for a choice, and flags an id the picker does not offer', () => {
    const field = modelSpec('almostrec')!.fields.find((f) => f.key === 'seqRunId')!;
    expect(field.refersTo).toBe('sequential-run');
    expect(fieldProblem(field, 0)).toBe('choose one');
    expect(fieldProblem(field, 7)).toBeNull();
    const picker = sequentialRunPicker([run(1, 'sasrec', 'succeeded', metrics(0.2))]);
    expect(pickerProblem(picker, 1)).toBeNull();
    expect(pickerProblem(picker, 7)).toBe('not available');
    expect(pickerProblem(picker, 0)).toBeNull(); // "choose one" is fieldProblem's
    // The switches are checkboxes, layout and k are selects with their meaning spelt out.
    const fields = modelSpec('almostrec')!.fields;
    expect(fields.filter((f) => f.toggle).map((f) => f.key)).toEqual(['windowPhase', 'useLora', 'useImages', 'useText', 'pretrainedIds', 'initOutputFromIds']);
    expect(fields.find((f) => f.key === 'layout')!.choiceLabels).toEqual(['concat V, T, S (0)', 'interleaved, every position (1)']);
    expect(fields.find((f) => f.key === 'visualTokens')!.choices).toEqual([0, 1, 4, 9]);
  });
});
