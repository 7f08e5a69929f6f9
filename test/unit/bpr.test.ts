import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { splitInput, trainPart, type SequenceData } from '../../src/core/data/types';
import { evaluate } from '../../src/core/eval/evaluator';
import { bprSpec, type BprConfig, type BprModel } from '../../src/core/models/bpr';
import { HistoryIndex, sampleNegative, trainingPairs } from '../../src/core/models/cf/interactions';
import { fitPopularity } from '../../src/core/models/popularity';
import { Adam } from '../../src/core/tensor/adam';
import type { TrainableModel } from '../../src/core/train/model-spec';
import { loadScorer, trainModel } from '../../src/core/train/train-model';
import { initBackend, tf } from '../../src/core/tensor/backend';
import { Rng } from '../../src/core/tensor/rng';

/**
 * Two taste groups: even users consume items 1..half, odd users items half+1..numItems, each in a random
 * order, so a user's held-out items come from their group — learnable by a user-ID model, not by popularity.
 */
function clusteredData(numUsers = 40, numItems = 30, len = 10, seed = 5): SequenceData {
  const rng = new Rng(seed);
  const half = numItems / 2;
  const users = Array.from({ length: numUsers }, (_, u) => {
    const pool = Int32Array.from({ length: half }, (_, i) => i + 1 + (u % 2) * half);
    rng.shuffle(pool);
    const items = pool.slice(0, len);
    return { userId: 100 + u, items, timestamps: Float64Array.from(items, (_, i) => i) };
  });
  return { datasetId: 1, numItems, itemIds: Int32Array.from({ length: numItems + 1 }, (_, i) => i), users };
}

/** Trains `epochs` epochs as the generic loop does (variableGrads + Adam); returns each epoch's mean loss. */
function trainSteps(model: TrainableModel, lr: number, epochs: number, rng: Rng): number[] {
  const names = [...model.params.keys()];
  const vars = [...model.params.values()];
  const adam = new Adam(model.params, { learningRate: lr });
  const losses: number[] = [];
  for (let e = 0; e < epochs; e++) {
    const steps = model.beginEpoch(rng);
    let sum = 0;
    for (let s = 0; s < steps; s++) {
      const { value, grads } = tf.variableGrads(() => model.stepLoss(s, rng), vars);
      sum += value.dataSync()[0];
      const named: tf.NamedTensorMap = {};
      vars.forEach((v, i) => (named[names[i]] = grads[v.name]));
      adam.apply(model.params, named);
      value.dispose();
      tf.dispose(grads);
    }
    losses.push(sum / steps);
  }
  adam.dispose();
  return losses;
}

const config: BprConfig = { epochs: 5, batchSize: 16, learningRate: 0.01, seed: 1, evalEvery: 1, patience: 3, embeddingSize: 8 };

beforeAll(async () => {
  await initBackend('wasm');
});

describe('CF helpers', () => {
  test('negative sampling: uniform over unseen items, never a seen one, one draw each', () => {
    const rng = new Rng(9);
    const seen = Int32Array.from([2, 3, 5]);
    const counts = new Map<number, number>();
    for (let i = 0; i < 3000; i++) {
      const n = sampleNegative(rng, seen, 6);
      counts.set(n, (counts.get(n) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual([1, 4, 6]);
    for (const c of counts.values()) expect(Math.abs(c - 1000)).toBeLessThan(120);
    expect(() => sampleNegative(rng, Int32Array.from([1, 2]), 2)).toThrow(/all 2 items/);
  });

  test('training pairs come from training parts only', () => {
    const data = clusteredData(4, 10, 5);
    const pairs = trainingPairs(data);
    expect(pairs.users.length).toBe(4 * 3);
    data.users.forEach((u, row) => {
      expect([...pairs.seen[row]]).toEqual([...new Set(trainPart(u))].sort((a, b) => a - b));
      expect(pairs.seen[row]).not.toContain(u.items[u.items.length - 1]);
    });
  });

  test('history index: valid and test inputs map to their user, by content; identity breaks ties', () => {
    const data = clusteredData(6, 30, 5);
    // Users 0 and 2 share their first four items, so their training parts (valid inputs) are equal.
    data.users[2].items.set(data.users[0].items.subarray(0, 3));
    const index = new HistoryIndex(data);
    data.users.forEach((u, row) => {
      for (const split of ['valid', 'test'] as const) {
        const h = splitInput(u, split).history;
        expect(index.lookup(h)).toBe(row);
        if (row !== 2 || split === 'test') expect(index.lookup(Int32Array.from(h))).toBe(row);
      }
    });
    expect(index.lookup(Int32Array.from(splitInput(data.users[2], 'valid').history))).toBe(0);
    expect(index.lookup(data.users[1].items)).toBe(-1);
    expect(index.lookup(Int32Array.from([1, 2, 3]))).toBe(-1);
  });
});

describe('BPR-MF', () => {
  test('shapes and initialisation (xavier normal, zero padding row)', () => {
    const data = clusteredData(40, 30);
    const ctx = { data };
    expect(bprSpec.paramShapes(config, ctx)).toEqual([
      ['user_emb', [40, 8]],
      ['item_emb', [31, 8]]
    ]);
    const values = bprSpec.init(config, ctx, new Rng(1));
    const items = values.get('item_emb')!;
    expect([...items.subarray(0, 8)]).toEqual(new Array(8).fill(0));
    const rest = items.subarray(8);
    const std = Math.sqrt(rest.reduce((a, x) => a + x * x, 0) / rest.length);
    expect(std).toBeGreaterThan(0.7 * Math.sqrt(2 / 39));
    expect(std).toBeLessThan(1.3 * Math.sqrt(2 / 39));
    expect(() => bprSpec.build(config, ctx, new Map([['user_emb', new Float32Array(3)]]))).toThrow(/bpr: parameter "user_emb" has 3 values/);
  });

  test('an epoch: every training pair once, negatives never among the user training items', () => {
    const data = clusteredData(40, 30);
    const model = bprSpec.build(config, { data }, bprSpec.init(config, { data }, new Rng(1))) as BprModel;
    const steps = model.beginEpoch(new Rng(2));
    expect(steps).toBe(Math.ceil((40 * 8) / 16));
    const pairs = trainingPairs(data);
    const seenPairs: string[] = [];
    for (let s = 0; s < steps; s++) {
      const t = model.stepTriples(s);
      for (let j = 0; j < t.users.length; j++) {
        seenPairs.push(`${t.users[j]}:${t.pos[j]}`);
        expect(pairs.seen[t.users[j]]).toContain(t.pos[j]);
        expect(pairs.seen[t.users[j]]).not.toContain(t.neg[j]);
        expect(t.neg[j]).toBeGreaterThanOrEqual(1);
      }
    }
    expect(seenPairs.sort()).toEqual([...pairs.users].map((u, j) => `${u}:${pairs.items[j]}`).sort());
    expect(() => model.stepTriples(steps)).toThrow(/outside this epoch/);
    model.dispose();
  });

  test('deterministic for a seed', () => {
    const data = clusteredData(40, 30);
    const run = (seed: number) => {
      const rng = new Rng(seed);
      const model = bprSpec.build(config, { data }, bprSpec.init(config, { data }, rng));
      const losses = trainSteps(model, config.learningRate, 2, rng);
      const scores = model.scoreBatch([trainPart(data.users[0])]);
      model.dispose();
      return { losses, scores: [...scores] };
    };
    const a = run(7);
    expect(run(7)).toEqual(a);
    expect(run(8).losses).not.toEqual(a.losses);
  });

  test('learns: loss falls and the held-out group items rank above popularity', async () => {
    const data = clusteredData(40, 30);
    const rng = new Rng(3);
    const model = bprSpec.build(config, { data }, bprSpec.init(config, { data }, rng));
    const losses = trainSteps(model, 0.05, 15, rng);
    expect(losses[losses.length - 1]).toBeLessThan(losses[0] * 0.5);
    const bpr = await evaluate(model, data, 'valid');
    const pop = await evaluate(fitPopularity(data), data, 'valid');
    expect(bpr.metrics.ndcg10).toBeGreaterThan(pop.metrics.ndcg10 + 0.25);
    model.dispose();
  });

  test('scoring: user rows for evaluator histories, fold-in for unknown ones, padding column −∞', () => {
    const data = clusteredData(5, 12, 6);
    const values = bprSpec.init(config, { data }, new Rng(4));
    const model = bprSpec.build(config, { data }, values) as BprModel;
    const U = values.get('user_emb')!;
    const I = values.get('item_emb')!;
    const d = config.embeddingSize;
    const dot = (a: Float32Array, ai: number, bi: number) => {
      let s = 0;
      for (let k = 0; k < d; k++) s += a[ai * d + k] * I[bi * d + k];
      return s;
    };
    const unknown = Int32Array.from([3, 5]);
    const fold = new Float32Array(d).map((_, k) => (I[3 * d + k] + I[5 * d + k]) / 2);
    const histories = [splitInput(data.users[3], 'valid').history, unknown, Int32Array.from(splitInput(data.users[1], 'test').history)];
    const scores = model.scoreBatch(histories);
    expect(scores.length).toBe(3 * 13);
    expect(model.foldIns).toBe(1);
    for (let i = 1; i <= 12; i++) {
      expect(scores[i]).toBeCloseTo(dot(U, 3, i), 5);
      expect(scores[13 + i]).toBeCloseTo(dot(fold, 0, i), 5);
      expect(scores[26 + i]).toBeCloseTo(dot(U, 1, i), 5);
    }
    expect([scores[0], scores[13], scores[26]]).toEqual([-Infinity, -Infinity, -Infinity]);
    // An empty unknown history folds in to the zero vector.
    expect([...model.scoreBatch([new Int32Array(0)]).subarray(1)]).toEqual(new Array(12).fill(0));
    expect(() => model.scoreBatch([Int32Array.from([13])])).toThrow(/outside 1\.\.12/);
    model.dispose();
  });

  test('trains through the generic loop; the best checkpoint scores as the trained model did', async () => {
    const data = clusteredData(40, 30);
    const ctx = { data };
    const dir = mkdtempSync(join(tmpdir(), 'bpr-'));
    const res = await trainModel(bprSpec, ctx, { ...config, epochs: 6, learningRate: 0.05, patience: 10 }, { checkpointDir: dir });
    expect(res.history).toHaveLength(6);
    const pop = await evaluate(fitPopularity(data), data, 'valid');
    expect(res.valid.ndcg10).toBeGreaterThan(pop.metrics.ndcg10);
    const scorer = await loadScorer(bprSpec, ctx, res.checkpointPath);
    expect((await evaluate(scorer, data, 'valid')).metrics).toEqual(res.valid);
    scorer.dispose();
  });
});
