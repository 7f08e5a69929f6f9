// What a new analyst stumbled on in the Train and Backbones forms (issue 15), as the forms' pure parts:
// the backbone-reading models' pickers start on the newest finished entry and say which; LoRA targets are
// checkboxes over the config's bitmask; a stored config reads as labelled rows, not JSON.
import { describe, expect, it } from 'vitest';
import type { BackboneSummary } from '../../src/shared/backbones';
import { LORA_TARGET_BITS } from '../../src/shared/models';
import type { RunStatus, RunSummary } from '../../src/shared/types';
import { PRETRAIN_FIELDS } from '../../src/renderer/src/lib/backbones';
import { bitNames, hasBit, withBit } from '../../src/renderer/src/lib/bitmask';
import { configRows } from '../../src/renderer/src/lib/configRows';
import { fieldProblem, MODELS, modelSpec } from '../../src/renderer/src/lib/models';
import { backbonePicker, LOADING_PICKER, newestHint, pickerDefaults, sequentialRunPicker, type Pickers } from '../../src/renderer/src/lib/references';

const BACKBONE_MODELS = ['almostrec', 'e4srec', 'llara', 'tallrec', 'vip5'] as const;

function backbone(id: number, status: BackboneSummary['status']): BackboneSummary {
  return {
    id,
    name: `bb-${id}`,
    source: 'pretrained',
    status,
    datasetId: 1,
    datasetName: 'tiny',
    path: '/b',
    config: {},
    architecture: 'LLaMA 1×32',
    parameters: null,
    createdAt: '',
    startedAt: null,
    endedAt: null,
    error: null,
    backend: null
  };
}

function run(id: number, model: string, status: RunStatus): RunSummary {
  const valid = { hr10: 0.5, ndcg10: 0.25, hr20: 0.6, ndcg20: 0.3, mrr: 0.2 };
  return { id, datasetId: 1, datasetName: 'tiny', model: model as RunSummary['model'], status, backend: null, config: {}, startedAt: null, endedAt: null, error: null, valid, test: null, bestEpoch: null };
}

describe('picker defaults of the models on a backbone', () => {
  const pickers: Pickers = {
    backbone: backbonePicker([backbone(1, 'succeeded'), backbone(3, 'succeeded'), backbone(4, 'running'), backbone(2, 'failed')]),
    'sequential-run': sequentialRunPicker([run(5, 'sasrec', 'succeeded'), run(7, 'gru4rec', 'succeeded'), run(8, 'sasrec', 'failed'), run(9, 'bpr', 'succeeded')])
  };

  it.each(BACKBONE_MODELS)('%s: both pickers start on the newest finished entry, and say which', (kind) => {
    const spec = modelSpec(kind)!;
    const refs = spec.fields.filter((f) => f.refersTo).map((f) => f.key);
    // Every one of them reads a backbone; the ID-reading ones a sequential run too.
    expect(refs).toContain('backboneId');
    const filled = pickerDefaults(spec.fields, spec.defaults, pickers);
    expect(filled.backboneId).toBe(3); // 4 is still running, 2 failed
    if (refs.includes('seqRunId')) expect(filled.seqRunId).toBe(7); // newest SASRec/GRU4Rec; 8 failed, 9 is BPR
    expect(Object.keys(filled).sort()).toEqual([...refs].sort());
    // With them the form is complete (no "choose one").
    const values = { ...spec.defaults, ...filled };
    expect(spec.fields.map((f) => fieldProblem(f, values[f.key])).filter(Boolean)).toEqual([]);
  });

  it('names the chosen entry in a hint line', () => {
    expect(newestHint(pickers.backbone)).toBe('newest finished: bb-3 · LLaMA 1×32');
    expect(newestHint(pickers['sequential-run'])).toBe('newest finished: #7 GRU4Rec · valid NDCG@10 0.2500');
  });

  it('keeps a choice already made, and fills nothing while loading or when nothing is finished', () => {
    const spec = modelSpec('almostrec')!;
    expect(pickerDefaults(spec.fields, { ...spec.defaults, backboneId: 1, seqRunId: 5 }, pickers)).toEqual({});
    // A stale id (another dataset's run) stays, for the form's "not available" to say so.
    expect(pickerDefaults(spec.fields, { ...spec.defaults, backboneId: 1, seqRunId: 99 }, pickers)).toEqual({});
    expect(pickerDefaults(spec.fields, spec.defaults, { backbone: LOADING_PICKER, 'sequential-run': LOADING_PICKER })).toEqual({});
    const none: Pickers = { backbone: backbonePicker([backbone(2, 'failed')]), 'sequential-run': sequentialRunPicker([run(9, 'bpr', 'succeeded')]) };
    expect(pickerDefaults(spec.fields, spec.defaults, none)).toEqual({});
    expect(newestHint(none.backbone)).toBeNull();
    expect(newestHint(LOADING_PICKER)).toBeNull();
  });

  it('touches no other model', () => {
    for (const m of MODELS.filter((x) => !(BACKBONE_MODELS as readonly string[]).includes(x.kind))) {
      expect(pickerDefaults(m.fields, m.defaults, pickers), m.kind).toEqual({});
    }
  });
});

describe('LoRA targets as checkboxes', () => {
  it.each(BACKBONE_MODELS)('%s: the field is one checkbox per module, in the bitmask order', (kind) => {
    const f = modelSpec(kind)!.fields.find((x) => x.key === 'loraTargets')!;
    expect(f.bits).toEqual(['q', 'k', 'v', 'o', 'gate', 'up', 'down']);
    expect(f.bits!.map((b) => `${b}_proj`)).toEqual([...LORA_TARGET_BITS]);
    // DESIGN §5's default: q and v.
    expect(bitNames(modelSpec(kind)!.defaults.loraTargets, f.bits!)).toEqual(['q', 'v']);
  });

  it('ticking and unticking flips one bit of the stored number', () => {
    expect([0, 1, 2, 3, 4, 5, 6].map((i) => hasBit(5, i))).toEqual([true, false, true, false, false, false, false]);
    expect(withBit(5, 1, true)).toBe(7); // + k
    expect(withBit(7, 0, false)).toBe(6); // − q
    expect(withBit(5, 0, true)).toBe(5); // already on
    expect(withBit(127, 6, false)).toBe(63);
    expect(withBit(Number.NaN, 3, true)).toBe(8); // an emptied field starts from nothing
    expect(hasBit(Number.NaN, 0)).toBe(false);
    expect(bitNames(127, ['q', 'k', 'v', 'o', 'gate', 'up', 'down'])).toEqual(['q', 'k', 'v', 'o', 'gate', 'up', 'down']);
  });

  it('unticking every box is refused with a message, not sent', () => {
    const f = modelSpec('almostrec')!.fields.find((x) => x.key === 'loraTargets')!;
    expect(fieldProblem(f, withBit(1, 0, false))).toBe('tick at least one');
    expect(fieldProblem(f, 5)).toBeNull();
  });
});

describe('a stored configuration as labelled rows', () => {
  it('labels a run config from the catalogue, in its order, with value names', () => {
    const rows = configRows({ seqRunId: 7, loraTargets: 13, backboneId: 3, useLora: 1, epochs: 2, legacyKnob: 0.5, nested: { a: 1 } }, modelSpec('almostrec')!.fields);
    const byKey = Object.fromEntries(rows.map((r) => [r.key, `${r.label}: ${r.value}`]));
    expect(byKey.epochs).toBe('Epochs: 2');
    expect(byKey.backboneId).toBe('Backbone id: #3');
    expect(byKey.loraTargets).toBe('LoRA targets: q, v, o (13)');
    expect(byKey.useLora).toBe('Use LoRA: yes');
    // Keys the catalogue does not know come last, under their own names.
    expect(rows.slice(-2)).toEqual([
      { key: 'legacyKnob', label: 'legacyKnob', value: '0.5' },
      { key: 'nested', label: 'nested', value: '{"a":1}' }
    ]);
    const order = modelSpec('almostrec')!.fields.map((f) => f.key);
    const known = rows.slice(0, -2).map((r) => r.key);
    expect(known).toEqual(order.filter((k) => known.includes(k)));
  });

  it('labels a backbone config with the pretraining form\'s labels', () => {
    const config = Object.fromEntries(PRETRAIN_FIELDS.map((f) => [f.key, 1]));
    const rows = configRows(config, PRETRAIN_FIELDS);
    expect(rows.map((r) => r.label)).toEqual(PRETRAIN_FIELDS.map((f) => f.label));
    expect(rows.every((r) => r.label !== r.key || PRETRAIN_FIELDS.some((f) => f.label === f.key))).toBe(true);
  });

  it('names a choice by its label', () => {
    const f = modelSpec('almostrec')!.fields.find((x) => x.choiceLabels)!;
    expect(configRows({ [f.key]: f.choices![0] }, [f])[0].value).toBe(f.choiceLabels![0]);
  });
});
