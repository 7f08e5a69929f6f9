import { beforeAll, describe, expect, test } from 'vitest';
import type { SequenceData } from '../../src/core/data/types';
import { evaluate } from '../../src/core/eval';
import { poolingBatch, youtubeIdVSpec, type YoutubeIdVConfig, YoutubeIdVModel } from '../../src/core/models/youtube-id-v';
import { initBackend, tf } from '../../src/core/tensor/backend';
import { Rng } from '../../src/core/tensor/rng';
import { Adam } from '../../src/core/tensor/adam';
import type { ItemFeatures, ModelContext, TrainableModel } from '../../src/core/train/model-spec';

/** Each user cycles through one of four disjoint groups of 10 items, so the history says what comes next. */
function groupData(numUsers = 48, numItems = 40, seed = 3): SequenceData {
  const rng = new Rng(seed);
  const users = Array.from({ length: numUsers }, (_, u) => {
    const group = u % 4;
    const len = 6 + rng.int(5);
    const start = rng.int(10);
    const items = Int32Array.from({ length: len }, (_, i) => group * 10 + ((start + i) % 10) + 1);
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

const config: YoutubeIdVConfig = {
  epochs: 1, batchSize: 32, learningRate: 5e-3, seed: 1, evalEvery: 1, patience: 10,
  maxLen: 5, embeddingSize: 16, hiddenSize: 32, dropout: 0.1
};

function train(model: TrainableModel, epochs: number, rng: Rng, lr: number): number[] {
  const adam = new Adam(model.params, { learningRate: lr });
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

describe('YouTube_ID+V', () => {
  const data = groupData();
  const ctx: ModelContext = { data, itemFeatures: syntheticFeatures(data.numItems) };

  test('parameters, deterministic init, features required', () => {
    expect(youtubeIdVSpec.paramShapes(config, ctx)).toEqual([
      ['item_emb', [41, 16]],
      ['vis_proj.w', [12, 16]],
      ['mlp.w1', [16, 32]],
      ['mlp.b1', [32]],
      ['mlp.w2', [32, 16]],
      ['mlp.b2', [16]]
    ]);
    const a = youtubeIdVSpec.init(config, ctx, new Rng(1));
    expect([...a.get('item_emb')!.subarray(0, 16)].every((x) => x === 0)).toBe(true);
    expect(youtubeIdVSpec.init(config, ctx, new Rng(1))).toEqual(a);
    expect(youtubeIdVSpec.needsItemFeatures).toBe(true);
    expect(() => youtubeIdVSpec.build(config, { data }, a)).toThrow(/YouTube_ID\+V needs item image features/);
  });

  test('pooling: the last maxLen items, padding excluded', () => {
    const { ids, weights, L } = poolingBatch([Int32Array.from([1, 2, 3, 4, 5, 6, 7]), Int32Array.from([9, 8])], 5);
    expect(L).toBe(5);
    expect([...ids]).toEqual([3, 4, 5, 6, 7, 0, 0, 0, 9, 8]);
    expect([...weights]).toEqual([0.2, 0.2, 0.2, 0.2, 0.2, 0, 0, 0, 0.5, 0.5].map(Math.fround));
  });

  test('one example per position t ≥ 1 of each training part, history = the preceding ≤ maxLen items', () => {
    const model = youtubeIdVSpec.build(config, ctx, youtubeIdVSpec.init(config, ctx, new Rng(2))) as YoutubeIdVModel;
    const expected = data.users.reduce((n, u) => n + u.items.length - 3, 0);
    const steps = model.beginEpoch(new Rng(3));
    expect(steps).toBe(Math.ceil(expected / config.batchSize));
    let seen = 0;
    for (let s = 0; s < steps; s++) {
      const { histories, targets } = model.stepExamples(s);
      histories.forEach((h, b) => {
        expect(h.length).toBeGreaterThanOrEqual(1);
        expect(h.length).toBeLessThanOrEqual(config.maxLen);
        // Same group, consecutive: the target follows the history's last item.
        expect(((targets[b] - 1) % 10) - ((h[h.length - 1] - 1) % 10)).toSatisfy((d: number) => d === 1 || d === -9);
      });
      seen += targets.length;
    }
    expect(seen).toBe(expected);
    model.dispose();
  });

  test('scores: B × (numItems + 1), padding −∞; items without an image ignore their feature rows', () => {
    const values = youtubeIdVSpec.init(config, ctx, new Rng(4));
    const hist = [Int32Array.from([2, 3, 4]), Int32Array.from([11])];
    const score = (features: ItemFeatures): Float32Array => {
      const m = youtubeIdVSpec.build(config, { data, itemFeatures: features }, values);
      const s = m.scoreBatch(hist);
      m.dispose();
      return s;
    };
    const base = score(ctx.itemFeatures!);
    expect(base.length).toBe(2 * 41);
    expect([base[0], base[41]]).toEqual([-Infinity, -Infinity]);
    const noisy = { ...ctx.itemFeatures!, values: ctx.itemFeatures!.values.slice() };
    noisy.values.fill(9, 3 * 12, 4 * 12); // item 3 has no image
    expect(score(noisy)).toEqual(base);
    const changed = { ...ctx.itemFeatures!, values: ctx.itemFeatures!.values.slice() };
    changed.values.fill(0.3, 2 * 12, 3 * 12); // item 2 has one
    expect(score(changed)).not.toEqual(base);
  });

  test('learns the groups: loss falls, W_v is trained, validation beats chance', async () => {
    const model = youtubeIdVSpec.build(config, ctx, youtubeIdVSpec.init(config, ctx, new Rng(6)));
    const w0 = model.params.get('vis_proj.w')!.dataSync().slice();
    const losses = train(model, 15, new Rng(7), 1e-2);
    expect(losses.at(-1)!).toBeLessThan(losses[0] * 0.7);
    expect(model.params.get('vis_proj.w')!.dataSync()).not.toEqual(w0);
    const { metrics } = await evaluate(model, data, 'valid');
    // Chance: HR@10 ≈ 10 / ~33 unseen items, MRR ≈ 0.1; a learned model ranks the group's next item first.
    expect(metrics.hr10).toBeGreaterThan(0.8);
    expect(metrics.mrr).toBeGreaterThan(0.6);
    model.dispose();
  });
});
