import { beforeAll, describe, expect, test } from 'vitest';
import { trainPart, type SequenceData } from '../../src/core/data/types';
import { evaluate } from '../../src/core/eval/evaluator';
import { gru4recParamShapes, gru4recSpec, Gru4recModel, type Gru4recConfig } from '../../src/core/models/gru4rec';
import { toTimeMajor, trainingWindows } from '../../src/core/models/seq/batches';
import { initBackend, tf } from '../../src/core/tensor/backend';
import { Rng } from '../../src/core/tensor/rng';
import { Adam } from '../../src/core/tensor/adam';
import { defaultConfig } from '../../src/shared/models';

/** Users walk through items in order (i → i+1, wrapping), so the next item is learnable. */
function syntheticData(numUsers = 32, numItems = 20, seed = 3): SequenceData {
  const rng = new Rng(seed);
  const users = Array.from({ length: numUsers }, (_, u) => {
    const len = 6 + rng.int(9);
    const start = rng.int(numItems);
    const items = Int32Array.from({ length: len }, (_, i) => ((start + i) % numItems) + 1);
    return { userId: u + 1, items, timestamps: Float64Array.from(items, (_, i) => i) };
  });
  return { datasetId: 1, numItems, itemIds: Int32Array.from({ length: numItems + 1 }, (_, i) => i), users };
}

const config: Gru4recConfig = {
  ...(defaultConfig('gru4rec') as unknown as Gru4recConfig),
  batchSize: 8,
  maxLen: 10,
  embeddingSize: 8,
  hiddenSize: 12,
  numLayers: 2,
  dropout: 0.3
};
const data = syntheticData();
const ctx = { data };

function build(cfg = config, seed = 1): Gru4recModel {
  return gru4recSpec.build(cfg, ctx, gru4recSpec.init(cfg, ctx, new Rng(seed))) as Gru4recModel;
}

beforeAll(async () => {
  await initBackend('wasm');
});

describe('GRU4Rec', () => {
  test('parameters: catalogue shapes, padding row zero, the item table as M', () => {
    const shapes = gru4recSpec.paramShapes(config, ctx);
    expect(shapes).toEqual([
      ['item_emb', [21, 8]],
      ['gru0.w_ih', [8, 36]],
      ['gru0.w_hh', [12, 36]],
      ['gru1.w_ih', [12, 36]],
      ['gru1.w_hh', [12, 36]],
      ['dense.w', [12, 8]],
      ['dense.b', [8]]
    ]);
    const values = gru4recSpec.init(config, ctx, new Rng(5));
    expect([...values.get('item_emb')!.subarray(0, 8)]).toEqual(new Array(8).fill(0));
    values.get('item_emb')![3] = 0.5; // a trained table's padding row need not stay 0; M's must
    const m = gru4recSpec.itemEmbeddings!(values, config);
    expect(m.dim).toBe(8);
    expect(m.table.length).toBe(21 * 8);
    expect([...m.table.subarray(0, 8)]).toEqual(new Array(8).fill(0));
    expect([...m.table.subarray(8)]).toEqual([...values.get('item_emb')!.subarray(8)]);
    expect(gru4recSpec.optimizer(config)).toEqual({ learningRate: config.learningRate });
  });

  test('a wrongly shaped value is an error naming the parameter', () => {
    const values = gru4recSpec.init(config, ctx, new Rng(5));
    values.set('gru0.w_hh', new Float32Array(3));
    expect(() => gru4recSpec.build(config, ctx, values)).toThrow(/GRU4Rec: parameter "gru0.w_hh" has 3 values/);
    values.delete('gru0.w_hh');
    expect(() => gru4recSpec.build(config, ctx, values)).toThrow(/missing parameter "gru0.w_hh"/);
  });

  test('scores: shape, independent of batch partners and left padding, history truncated to maxLen', () => {
    const model = build();
    const short = Int32Array.from([3, 4, 5]);
    const long = Int32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    const alone = model.scoreBatch([short]);
    const batched = model.scoreBatch([short, long, new Int32Array(0)]);
    expect(batched.length).toBe(3 * 21);
    [...alone].forEach((v, i) => expect(batched[i]).toBeCloseTo(v, 5));
    const lastTen = model.scoreBatch([long.subarray(3)]);
    [...lastTen].forEach((v, i) => expect(batched[21 + i]).toBeCloseTo(v, 5));
    expect(batched.every(Number.isFinite)).toBe(true);
    model.dispose();
  });

  test('causal: changing a later item leaves earlier states unchanged; padding steps keep the state', () => {
    const model = build();
    const states = (ids: number[]) => model.forward(toTimeMajor(Int32Array.from(ids), 1, ids.length), 1, ids.length, null).arraySync();
    const a = states([0, 0, 1, 2, 3, 4]);
    const b = states([0, 0, 1, 2, 9, 8]);
    expect(a.slice(0, 4)).toEqual(b.slice(0, 4));
    expect(a[4]).not.toEqual(b[4]);
    expect(a[0].every((v) => v === 0) && a[1].every((v) => v === 0)).toBe(true);
    expect(a[2].some((v) => v !== 0)).toBe(true);
    // A nonzero padding row (the tied softmax trains it) must still not reach the state.
    const values = gru4recSpec.init(config, ctx, new Rng(1));
    values.get('item_emb')!.fill(0.7, 0, 8);
    const padded = gru4recSpec.build(config, ctx, values) as Gru4recModel;
    const c = padded.forward(toTimeMajor(Int32Array.from([0, 0, 1, 2, 3, 4]), 1, 6), 1, 6, null).arraySync();
    c.forEach((row, t) => row.forEach((v, j) => expect(v).toBeCloseTo(a[t][j], 6)));
    model.dispose();
    padded.dispose();
  });

  test('training and scoring agree: the loss at the last position of a history is the CE of its scores', () => {
    const model = build();
    const history = [4, 5, 6, 7];
    const scores = model.scoreBatch([Int32Array.from(history)]);
    const lse = Math.log([...scores].reduce((a, s) => a + Math.exp(s), 0));
    const loss = model.loss(Int32Array.from([0, ...history]), Int32Array.from([0, 0, 0, 0, 9]), 1, 5, null).dataSync()[0];
    expect(loss).toBeCloseTo(lse - scores[9], 4);
    model.dispose();
  });

  test('the training loss does not depend on how far a batch is padded', () => {
    const model = build();
    // Two users, left-padded to width 6 vs trimmed to width 4: same CE positions, same loss (eval mode).
    const wide = model.loss(Int32Array.from([0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 5, 6]), Int32Array.from([0, 0, 0, 0, 2, 3, 0, 0, 4, 5, 6, 7]), 2, 6, null);
    const tight = model.loss(Int32Array.from([0, 0, 1, 2, 3, 4, 5, 6]), Int32Array.from([0, 0, 2, 3, 4, 5, 6, 7]), 2, 4, null);
    expect(tight.dataSync()[0]).toBeCloseTo(wide.dataSync()[0], 5);
    model.dispose();
  });

  test('an epoch trains on every target of a history longer than maxLen, once, after its own preceding items', () => {
    // Regression: an epoch used to hold one window per user (its last maxLen targets), so a long history's
    // earlier targets were never trained on (74 % of ml-latest-small's training pairs at maxLen 50).
    const items = Int32Array.from({ length: 25 }, (_, i) => i + 1); // distinct, so a target names its index
    const long: SequenceData = { ...data, numItems: 25, itemIds: Int32Array.from({ length: 26 }, (_, i) => i), users: [{ userId: 1, items, timestamps: Float64Array.from(items, (_, i) => i) }] };
    const cfg = { ...config, maxLen: 4, batchSize: 1 };
    const model = gru4recSpec.build(cfg, { data: long }, gru4recSpec.init(cfg, { data: long }, new Rng(1))) as Gru4recModel;
    const seen: number[] = [];
    const loss = model.loss.bind(model);
    model.loss = (inputs, targets, batch, len, ...rest) => {
      for (let j = 0; j < targets.length; j++) {
        if (targets[j] === 0) continue;
        const t = items.indexOf(targets[j]);
        expect(inputs[j]).toBe(items[t - 1]); // the target's own predecessor, same position
        seen.push(t);
      }
      return loss(inputs, targets, batch, len, ...rest);
    };
    const rng = new Rng(2);
    const steps = model.beginEpoch(rng);
    expect(steps).toBe(6); // training part: 23 items, 22 targets in windows of ≤ 4
    for (let s = 0; s < steps; s++) tf.tidy(() => model.stepLoss(s, rng));
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 22 }, (_, i) => i + 1));
    model.dispose();
  });

  test('seeded training: the loss falls, the run is reproducible, NDCG beats chance, no tensors leak', async () => {
    const cfg = { ...config, learningRate: 0.02 };
    const run = (seed: number) => {
      const rng = new Rng(seed);
      const model = gru4recSpec.build(cfg, ctx, gru4recSpec.init(cfg, ctx, rng));
      const adam = new Adam(model.params, gru4recSpec.optimizer(cfg));
      const vars = [...model.params.values()];
      const names = [...model.params.keys()];
      const losses: number[] = [];
      const tensors: number[] = [];
      for (let epoch = 0; epoch < 15; epoch++) {
        const steps = model.beginEpoch(rng);
        expect(steps).toBe(Math.ceil(trainingWindows(data.users.map(trainPart).filter((x) => x.length >= 2), cfg.maxLen).length / 8));
        for (let s = 0; s < steps; s++) {
          const { value, grads } = tf.variableGrads(() => model.stepLoss(s, rng), vars);
          losses.push(value.dataSync()[0]);
          const named: tf.NamedTensorMap = {};
          vars.forEach((v, i) => (named[names[i]] = grads[v.name]));
          adam.apply(model.params, named);
          value.dispose();
          tf.dispose(grads);
        }
        tensors.push(tf.memory().numTensors);
      }
      adam.dispose();
      return { model, losses, tensors };
    };
    const before = tf.memory().numTensors;
    const a = run(7);
    const b = run(7);
    expect(a.losses).toEqual(b.losses);
    expect(new Set(a.tensors).size).toBe(1);
    const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;
    expect(mean(a.losses.slice(-4))).toBeLessThan(mean(a.losses.slice(0, 4)) * 0.5);
    const { metrics } = await evaluate(a.model, data, 'valid');
    expect(metrics.ndcg10).toBeGreaterThan(0.8); // the successor rule is learnt (random scores: ≈ 0.3)
    a.model.dispose();
    b.model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  test('param shapes follow numLayers', () => {
    expect(gru4recParamShapes({ ...config, numLayers: 1 }, 5).map(([n]) => n)).toEqual(['item_emb', 'gru0.w_ih', 'gru0.w_hh', 'dense.w', 'dense.b']);
  });
});
