import { beforeAll, describe, expect, test } from 'vitest';
import type { SequenceData } from '../../src/core/data/types';
import { evaluate } from '../../src/core/eval/evaluator';
import { nextitnetSpec, NextitnetModel, residualDilations, type NextitnetConfig } from '../../src/core/models/nextitnet';
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

const config: NextitnetConfig = {
  ...(defaultConfig('nextitnet') as unknown as NextitnetConfig),
  batchSize: 8,
  maxLen: 10,
  embeddingSize: 8,
  kernelSize: 3,
  numBlocks: 2
};
const data = syntheticData();
const ctx = { data };

function build(cfg = config, seed = 1): NextitnetModel {
  return nextitnetSpec.build(cfg, ctx, nextitnetSpec.init(cfg, ctx, new Rng(seed))) as NextitnetModel;
}

beforeAll(async () => {
  await initBackend('wasm');
});

describe('NextItNet', () => {
  test('RecBole layout: block_num × [1, 4] residual blocks, two convs each, final dense; padding row zero', () => {
    expect(residualDilations(5)).toEqual([1, 4, 1, 4, 1, 4, 1, 4, 1, 4]);
    const shapes = nextitnetSpec.paramShapes(config, ctx);
    expect(shapes.length).toBe(1 + 4 * 8 + 2);
    expect(shapes[0]).toEqual(['item_emb', [21, 8]]);
    expect(shapes.slice(1, 9)).toEqual([
      ['block0.conv1.w', [24, 8]],
      ['block0.conv1.b', [8]],
      ['block0.ln1.gamma', [8]],
      ['block0.ln1.beta', [8]],
      ['block0.conv2.w', [24, 8]],
      ['block0.conv2.b', [8]],
      ['block0.ln2.gamma', [8]],
      ['block0.ln2.beta', [8]]
    ]);
    expect(shapes.slice(-2)).toEqual([
      ['final.w', [8, 8]],
      ['final.b', [8]]
    ]);
    const values = nextitnetSpec.init(config, ctx, new Rng(2));
    expect([...values.get('item_emb')!.subarray(0, 8)]).toEqual(new Array(8).fill(0));
    expect([...values.get('final.b')!]).toEqual(new Array(8).fill(Math.fround(0.1)));
    const m = nextitnetSpec.itemEmbeddings!(values, config);
    expect(m.table.length).toBe(21 * 8);
    values.set('block1.conv2.w', new Float32Array(5));
    expect(() => nextitnetSpec.build(config, ctx, values)).toThrow(/NextItNet: parameter "block1.conv2.w" has 5 values/);
  });

  test('causal: changing a later item leaves every earlier position unchanged', () => {
    const model = build();
    const out = (ids: number[]) => model.forward(Int32Array.from(ids), 1, ids.length).arraySync()[0];
    const a = out([1, 2, 3, 4, 5, 6, 7, 8]);
    const b = out([1, 2, 3, 4, 5, 6, 9, 9]);
    expect(a.slice(0, 6)).toEqual(b.slice(0, 6));
    expect(a[6]).not.toEqual(b[6]);
    model.dispose();
  });

  test('scores: shape, independent of batch partners and padding, history truncated to maxLen', () => {
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

  test('training and scoring agree: the loss at the last position of a history is the CE of its scores', () => {
    const model = build();
    const history = [4, 5, 6, 7];
    const scores = model.scoreBatch([Int32Array.from(history)]);
    const lse = Math.log([...scores].reduce((a, s) => a + Math.exp(s), 0));
    const norms = [...model.params.keys()]
      .filter((n) => n === 'item_emb' || n === 'final.w' || /\.conv\d\.w$|\.gamma$/.test(n))
      .reduce((a, n) => a + Math.sqrt([...model.params.get(n)!.dataSync()].reduce((x, v) => x + v * v, 0)), 0);
    const loss = model.loss(Int32Array.from([...history, 0]), Int32Array.from([0, 0, 0, 9, 0]), 1, 5).dataSync()[0];
    expect(loss).toBeCloseTo(lse - scores[9] + 1e-5 * norms, 4);
    model.dispose();
  });

  test('the training loss does not depend on how far a batch is padded', () => {
    const model = build();
    const wide = model.loss(Int32Array.from([1, 2, 0, 0, 0, 0, 3, 4, 5, 6, 0, 0]), Int32Array.from([2, 3, 0, 0, 0, 0, 4, 5, 6, 7, 0, 0]), 2, 6);
    const tight = model.loss(Int32Array.from([1, 2, 0, 0, 3, 4, 5, 6]), Int32Array.from([2, 3, 0, 0, 4, 5, 6, 7]), 2, 4);
    expect(tight.dataSync()[0]).toBeCloseTo(wide.dataSync()[0], 5);
    model.dispose();
  });

  test('an epoch trains on every target of a history longer than maxLen, once, after its own preceding items', () => {
    // Regression: an epoch used to hold one window per user (its last maxLen targets), so a long history's
    // earlier targets were never trained on (74 % of ml-latest-small's training pairs at maxLen 50).
    const items = Int32Array.from({ length: 25 }, (_, i) => i + 1); // distinct, so a target names its index
    const long: SequenceData = { ...data, numItems: 25, itemIds: Int32Array.from({ length: 26 }, (_, i) => i), users: [{ userId: 1, items, timestamps: Float64Array.from(items, (_, i) => i) }] };
    const cfg = { ...config, maxLen: 4, batchSize: 1 };
    const model = nextitnetSpec.build(cfg, { data: long }, nextitnetSpec.init(cfg, { data: long }, new Rng(1))) as NextitnetModel;
    const seen: number[] = [];
    const loss = model.loss.bind(model);
    model.loss = (inputs, targets, batch, len) => {
      for (let j = 0; j < targets.length; j++) {
        if (targets[j] === 0) continue;
        const t = items.indexOf(targets[j]);
        expect(inputs[j]).toBe(items[t - 1]); // the target's own predecessor, same position
        seen.push(t);
      }
      return loss(inputs, targets, batch, len);
    };
    const rng = new Rng(2);
    const steps = model.beginEpoch(rng);
    expect(steps).toBe(6); // training part: 23 items, 22 targets in windows of ≤ 4
    for (let s = 0; s < steps; s++) tf.tidy(() => model.stepLoss(s));
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 22 }, (_, i) => i + 1));
    model.dispose();
  });

  test('seeded training: the loss falls, the run is reproducible, NDCG beats chance, no tensors leak', async () => {
    const cfg = { ...config, learningRate: 0.01 };
    const run = (seed: number) => {
      const rng = new Rng(seed);
      const model = nextitnetSpec.build(cfg, ctx, nextitnetSpec.init(cfg, ctx, rng));
      const adam = new Adam(model.params, nextitnetSpec.optimizer(cfg));
      const vars = [...model.params.values()];
      const names = [...model.params.keys()];
      const losses: number[] = [];
      const tensors: number[] = [];
      for (let epoch = 0; epoch < 15; epoch++) {
        const steps = model.beginEpoch(rng);
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
});
