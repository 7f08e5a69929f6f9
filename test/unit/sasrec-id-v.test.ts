import { beforeAll, describe, expect, test } from 'vitest';
import type { SequenceData } from '../../src/core/data/types';
import { evaluate } from '../../src/core/eval';
import { sasrecIdVSpec, type SasrecIdVConfig } from '../../src/core/models/sasrec-id-v';
import { sasrecParamShapes } from '../../src/core/models/sasrec';
import { initBackend, tf } from '../../src/core/tensor/backend';
import { Rng } from '../../src/core/tensor/rng';
import { Adam } from '../../src/core/tensor/adam';
import type { ItemFeatures, ModelContext, TrainableModel } from '../../src/core/train/model-spec';

/** Users walk through items in order (i → i+1, wrapping), so the next item is learnable. */
function walkData(numUsers = 48, numItems = 40, seed = 3): SequenceData {
  const rng = new Rng(seed);
  const users = Array.from({ length: numUsers }, (_, u) => {
    const len = 6 + rng.int(7);
    const start = rng.int(numItems);
    const items = Int32Array.from({ length: len }, (_, i) => ((start + i) % numItems) + 1);
    return { userId: u + 1, items, timestamps: Float64Array.from(items, (_, i) => i) };
  });
  return { datasetId: 1, numItems, itemIds: Int32Array.from({ length: numItems + 1 }, (_, i) => i), users };
}

/** Random unit features of `dim`; every third item has no image. */
function syntheticFeatures(numItems: number, dim = 12, seed = 5): ItemFeatures {
  const rng = new Rng(seed);
  const values = new Float32Array((numItems + 1) * dim);
  const has = new Uint8Array(numItems + 1);
  for (let i = 1; i <= numItems; i++) {
    if (i % 3 === 0) continue;
    has[i] = 1;
    const row = values.subarray(i * dim, (i + 1) * dim);
    for (let k = 0; k < dim; k++) row[k] = rng.normal();
    const n = Math.hypot(...row);
    row.forEach((x, k) => (row[k] = x / n));
  }
  return { encoderId: 'synthetic', dim, values, has };
}

const config: SasrecIdVConfig = {
  epochs: 1, batchSize: 8, learningRate: 5e-3, seed: 1, evalEvery: 1, patience: 10,
  maxLen: 12, hiddenSize: 16, numBlocks: 1, numHeads: 2, dropout: 0.1, beta2: 0.98
};

/** Mean step loss of each epoch, trained with the project's Adam as the generic loop does. */
function train(model: TrainableModel, epochs: number, rng: Rng, lr: number): number[] {
  const adam = new Adam(model.params, { learningRate: lr, beta2: 0.98 });
  const names = [...model.params.keys()];
  const vars = [...model.params.values()];
  const out: number[] = [];
  for (let e = 0; e < epochs; e++) {
    const steps = model.beginEpoch(rng);
    let sum = 0;
    for (let s = 0; s < steps; s++) {
      const { value, grads } = tf.variableGrads(() => model.stepLoss(s, rng), vars);
      sum += value.dataSync()[0];
      const named: tf.NamedTensorMap = {};
      vars.forEach((v, i) => (named[names[i]] = grads[v.name]));
      adam.apply(model.params, named);
      tf.dispose([value, ...Object.values(grads)]);
    }
    out.push(sum / steps);
  }
  adam.dispose();
  return out;
}

beforeAll(async () => {
  await initBackend('wasm');
});

describe('SASRec_ID+V', () => {
  const data = walkData();
  const ctx: ModelContext = { data, itemFeatures: syntheticFeatures(data.numItems) };

  test('parameters are SASRec\'s plus the visual projection; features are required', () => {
    const shapes = sasrecIdVSpec.paramShapes(config, ctx);
    const base = sasrecParamShapes({ numItems: 40, maxLen: 12, hiddenSize: 16, numBlocks: 1, numHeads: 2, dropout: 0.1 });
    expect(shapes).toEqual([...base, ['vis_proj.w', [12, 16]]]);
    const values = sasrecIdVSpec.init(config, ctx, new Rng(1));
    expect([...values.keys()]).toEqual(shapes.map(([n]) => n));
    expect(values.get('vis_proj.w')).toEqual(sasrecIdVSpec.init(config, ctx, new Rng(1)).get('vis_proj.w'));
    expect(sasrecIdVSpec.needsItemFeatures).toBe(true);
    expect(() => sasrecIdVSpec.build(config, { data }, values)).toThrow(/SASRec_ID\+V needs item image features/);
  });

  test('scores every item for each history; padding is never a candidate', () => {
    const model = sasrecIdVSpec.build(config, ctx, sasrecIdVSpec.init(config, ctx, new Rng(2)));
    const scores = model.scoreBatch([Int32Array.from([1, 2, 3]), Int32Array.from([7])]);
    expect(scores.length).toBe(2 * 41);
    expect(scores[0]).toBe(-Infinity);
    expect(scores[41]).toBe(-Infinity);
    expect([...scores].filter((_, i) => i % 41 !== 0).every(Number.isFinite)).toBe(true);
    model.dispose();
  });

  test('items without an image use the ID embedding only: their feature rows are ignored', () => {
    const values = sasrecIdVSpec.init(config, ctx, new Rng(3));
    const hist = [Int32Array.from([2, 3, 4, 5]), Int32Array.from([9, 10])];
    const score = (features: ItemFeatures): Float32Array => {
      const m = sasrecIdVSpec.build(config, { data, itemFeatures: features }, values);
      const s = m.scoreBatch(hist);
      m.dispose();
      return s;
    };
    const base = score(ctx.itemFeatures!);
    const noisy = { ...ctx.itemFeatures!, values: ctx.itemFeatures!.values.slice() };
    noisy.values.fill(9, 3 * 12, 4 * 12); // item 3 has no image
    expect(score(noisy)).toEqual(base);
    const changed = { ...ctx.itemFeatures!, values: ctx.itemFeatures!.values.slice() };
    changed.values.fill(0.3, 4 * 12, 5 * 12); // item 4 has one
    expect(score(changed)).not.toEqual(base);
  });

  test('learns the walk: loss falls, W_v is trained, validation beats chance', async () => {
    const model = sasrecIdVSpec.build(config, ctx, sasrecIdVSpec.init(config, ctx, new Rng(4)));
    const w0 = model.params.get('vis_proj.w')!.dataSync().slice();
    const losses = train(model, 12, new Rng(5), 5e-3);
    expect(losses.at(-1)!).toBeLessThan(losses[0] * 0.7);
    expect(model.params.get('vis_proj.w')!.dataSync()).not.toEqual(w0);
    const { metrics } = await evaluate(model, data, 'valid');
    // Chance: MRR ≈ 0.1 over ~30 unseen items.
    expect(metrics.mrr).toBeGreaterThan(0.5);
    model.dispose();
  });
});
