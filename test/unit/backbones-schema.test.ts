// The backbone API contract: the pretraining config schema built from PRETRAIN_PARAMS (defaults, bounds,
// unknown keys, the architecture's cross-field constraints) with the messages a user sees, the other
// inputs, and the shared default name. Also the Backbones view's loss-curve merge (pure renderer code).
import { describe, expect, it } from 'vitest';
import { toApiError } from '../../src/main/services/api-errors';
import { appendLive, liveFromMetrics, lossCurve, PRETRAIN_DEFAULTS, PRETRAIN_FIELDS, type LivePoint } from '../../src/renderer/src/lib/backbones';
import { apiInputs, parsePretrainConfig } from '../../src/shared/api';
import { defaultBackboneName, PRETRAIN_PARAMS, pretrainDefaults, pretrainParamsOf, pretrainTotalSteps, type PretrainPoint } from '../../src/shared/backbones';

/** The message the UI and the HTTP client get for a config, or null when it is accepted. */
function refusal(config: Record<string, unknown>): string | null {
  const r = apiInputs['backbones.pretrain'].safeParse({ datasetId: 1, name: 'b', config });
  return r.success ? null : toApiError(r.error).message;
}

describe('pretraining config', () => {
  it('fills every default from the catalogue and keeps given values', () => {
    expect(parsePretrainConfig(undefined)).toEqual(pretrainDefaults());
    const tiny = { hiddenSize: 32, numLayers: 1, numHeads: 2, numKvHeads: 1, intermediateSize: 64, maxTokens: 32, batchSize: 2, stage1Steps: 2, stage2Steps: 2 };
    expect(parsePretrainConfig(tiny)).toEqual({ ...pretrainDefaults(), ...tiny });
    const parsed = apiInputs['backbones.pretrain'].parse({ datasetId: 3, name: '  compact-x  ' });
    expect(parsed).toEqual({ datasetId: 3, name: 'compact-x', config: pretrainDefaults() });
  });

  it('refuses unknown keys, wrong types, non-integers and out-of-range values, naming the field and the bound', () => {
    expect(refusal({ hiddenSise: 32 })).toMatch(/config: Unrecognized key: "hiddenSise"/);
    expect(refusal({ hiddenSize: '32' })).toMatch(/config\.hiddenSize: Invalid input: expected number, received string/);
    expect(refusal({ numLayers: 1.5 })).toMatch(/config\.numLayers: Invalid input: expected int/);
    expect(refusal({ hiddenSize: 8 })).toMatch(/config\.hiddenSize: Too small: expected number to be >=32/);
    expect(refusal({ stage1LearningRate: 2 })).toMatch(/config\.stage1LearningRate: Too big: expected number to be <=1/);
    for (const p of PRETRAIN_PARAMS) {
      expect(refusal({ [p.key]: p.max + (p.integer ? 1 : p.max) }), p.key).toContain(`config.${p.key}`);
    }
  });

  it('refuses combinations the architecture cannot build, saying why', () => {
    expect(refusal({ hiddenSize: 100, numHeads: 3, numKvHeads: 1 })).toBe(
      'Invalid input — config.numHeads: hiddenSize 100 must be a multiple of numHeads 3'
    );
    expect(refusal({ hiddenSize: 96, numHeads: 32, numKvHeads: 2 })).toMatch(/config\.numHeads: head size hiddenSize \/ numHeads = 3 must be even/);
    expect(refusal({ numHeads: 4, numKvHeads: 3 })).toMatch(/config\.numKvHeads: numHeads 4 must be a multiple of numKvHeads 3/);
    expect(refusal({ gridSize: 5, maxTokens: 25 })).toMatch(/config\.maxTokens: maxTokens 25 leaves no room for a caption after the 25 image tokens/);
    expect(refusal({ stage0Steps: 0, stage1Steps: 0, stage2Steps: 0 })).toMatch(
      /config\.stage2Steps: stage0Steps \+ stage1Steps \+ stage2Steps must be at least 1/
    );
    expect(refusal({ stage0Steps: 0, stage1Steps: 0, stage2Steps: 5 })).toBeNull();
    expect(refusal({ stage0Steps: 5, stage1Steps: 0, stage2Steps: 0 })).toBeNull();
    // A field already out of range is reported alone, without cross-field noise about it.
    expect(refusal({ hiddenSize: 30, numHeads: 4 })).toBe('Invalid input — config.hiddenSize: Too small: expected number to be >=32');
  });

  it('a config recorded before stage 0 existed keeps running without stage 0 and without a held-out split', () => {
    const old = { stage1Steps: 50, stage2Steps: 200, seed: 42 };
    expect(pretrainParamsOf(old)).toEqual({ ...pretrainDefaults(), ...old, stage0Steps: 0, heldOutPercent: 0 });
    expect(pretrainTotalSteps(old)).toBe(250);
    expect(pretrainParamsOf(pretrainDefaults())).toEqual(pretrainDefaults());
    expect(pretrainTotalSteps(pretrainDefaults())).toBe(pretrainDefaults().stage0Steps + pretrainDefaults().stage1Steps + pretrainDefaults().stage2Steps);
  });

  it('the catalogue defaults satisfy the constraints', () => {
    expect(refusal({})).toBeNull();
    expect(PRETRAIN_DEFAULTS).toEqual(pretrainDefaults());
    expect(PRETRAIN_FIELDS.map((f) => f.key)).toEqual(PRETRAIN_PARAMS.map((p) => p.key));
  });
});

describe('other backbone inputs', () => {
  it('validates names, paths, ids and the visual-token count', () => {
    expect(apiInputs['backbones.pretrain'].safeParse({ datasetId: 1, name: '   ' }).success).toBe(false);
    expect(apiInputs['backbones.pretrain'].safeParse({ datasetId: 1, name: 'x'.repeat(201) }).success).toBe(false);
    expect(apiInputs['backbones.register'].parse({ path: ' /m ', name: 'm' })).toEqual({ path: '/m', name: 'm' });
    expect(apiInputs['backbones.register'].safeParse({ path: '', name: 'm' }).success).toBe(false);
    expect(apiInputs['backbones.get'].safeParse({ backboneId: 0 }).success).toBe(false);
    expect(apiInputs['backbones.delete'].safeParse({ backboneId: 1, force: true }).success).toBe(false);
    expect(apiInputs['backbones.encodeFeatures'].parse({ backboneId: 1, datasetId: 2 })).toEqual({ backboneId: 1, datasetId: 2, k: 1 });
    for (const k of [1, 4, 9, 'all'] as const) expect(apiInputs['backbones.encodeFeatures'].parse({ backboneId: 1, datasetId: 2, k }).k).toBe(k);
    const bad = apiInputs['backbones.encodeFeatures'].safeParse({ backboneId: 1, datasetId: 2, k: 3 });
    expect(bad.success ? '' : toApiError(bad.error).message).toMatch(/^Invalid input — k: /);
  });

  it('suggests compact-<dataset>, numbered when taken', () => {
    expect(defaultBackboneName('mls', [])).toBe('compact-mls');
    expect(defaultBackboneName('mls', ['compact-mls', 'compact-mls-2', 'other'])).toBe('compact-mls-3');
  });
});

describe('loss curve of the Backbones view', () => {
  const stored = (step: number, stage: 1 | 2, loss: number): PretrainPoint => ({ step, stage, loss, learningRate: 1e-3, seconds: 1 });

  it('reads only progress metrics that describe a step', () => {
    expect(liveFromMetrics({ loss: 2, stage: 1, step: 4, learningRate: 1e-3 })).toEqual({ step: 4, stage: 1, loss: 2 });
    expect(liveFromMetrics({ loss: 9, stage: 0, step: 1, learningRate: 1e-3 })).toEqual({ step: 1, stage: 0, loss: 9 });
    expect(liveFromMetrics({ loss: 9, stage: 3, step: 1 })).toBeNull();
    expect(liveFromMetrics({ loss: 2, step: 4 })).toBeNull();
    expect(liveFromMetrics({ loss: Number.NaN, stage: 2, step: 4 })).toBeNull();
    expect(liveFromMetrics(undefined)).toBeNull();
  });

  it('drops the live steps a resumed job redoes, and shows stored history before the first live step', () => {
    let live: LivePoint[] = [1, 2, 3].map((step) => ({ step, stage: 1, loss: 10 - step }));
    live = appendLive(live, { step: 2, stage: 1, loss: 5 }); // resumed from the step-1 checkpoint
    expect(live.map((p) => [p.step, p.loss])).toEqual([[1, 9], [2, 5]]);
    const history = [stored(1, 1, 9), stored(2, 1, 8), stored(3, 1, 7), stored(4, 2, 6)];
    expect(lossCurve(history, [])).toHaveLength(4);
    const curve = lossCurve(history, [{ step: 3, stage: 1, loss: 6.5 }]);
    expect(curve.map((p) => [p.step, p.loss])).toEqual([[1, 9], [2, 8], [3, 6.5]]);
  });
});
