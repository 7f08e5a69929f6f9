import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { splitInput, trainPart, type SequenceData } from '../../src/core/data/types';
import { evaluate } from '../../src/core/eval/evaluator';
import { trainingPairs } from '../../src/core/models/cf/interactions';
import { ncfSpec, type NcfConfig, type NcfModel } from '../../src/core/models/ncf';
import { fitPopularity } from '../../src/core/models/popularity';
import { Adam } from '../../src/core/tensor/adam';
import type { TrainableModel } from '../../src/core/train/model-spec';
import { loadScorer, trainModel } from '../../src/core/train/train-model';
import { initBackend, tf } from '../../src/core/tensor/backend';
import { Rng } from '../../src/core/tensor/rng';

/** Two taste groups (even users: items 1..half, odd users: the rest): learnable by a user-ID model only. */
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

const config: NcfConfig = {
  epochs: 5,
  batchSize: 50,
  learningRate: 0.01,
  seed: 1,
  evalEvery: 1,
  patience: 3,
  mfEmbeddingSize: 8,
  mlpEmbeddingSize: 6,
  dropout: 0.1,
  negatives: 4
};

beforeAll(async () => {
  await initBackend('wasm');
});

describe('NCF (NeuMF)', () => {
  test('shapes and initialisation', () => {
    const data = clusteredData(40, 30);
    const ctx = { data };
    expect(ncfSpec.paramShapes(config, ctx)).toEqual([
      ['user_mf_emb', [40, 8]],
      ['item_mf_emb', [31, 8]],
      ['user_mlp_emb', [40, 6]],
      ['item_mlp_emb', [31, 6]],
      ['mlp.w1', [12, 128]],
      ['mlp.b1', [128]],
      ['mlp.w2', [128, 64]],
      ['mlp.b2', [64]],
      ['predict.w', [72, 1]],
      ['predict.b', [1]]
    ]);
    const values = ncfSpec.init(config, ctx, new Rng(1));
    expect([...values.get('item_mf_emb')!.subarray(0, 8)]).toEqual(new Array(8).fill(0));
    expect([...values.get('item_mlp_emb')!.subarray(0, 6)]).toEqual(new Array(6).fill(0));
    const maxAbs = (name: string) => Math.max(...values.get(name)!.map(Math.abs));
    expect(maxAbs('mlp.w1')).toBeLessThanOrEqual(1 / Math.sqrt(12));
    expect(maxAbs('mlp.w1')).toBeGreaterThan(0.9 / Math.sqrt(12));
    expect(maxAbs('mlp.b2')).toBeLessThanOrEqual(1 / Math.sqrt(128));
    expect(maxAbs('predict.w')).toBeLessThanOrEqual(1 / Math.sqrt(72));
    expect(maxAbs('user_mf_emb')).toBeLessThan(0.06);
    const bad = new Map(values);
    bad.delete('mlp.b2');
    expect(() => ncfSpec.build(config, ctx, bad)).toThrow(/ncf: missing parameter "mlp.b2"/);
    expect(() => ncfSpec.build({ ...config, negatives: 0 }, ctx, values)).toThrow(/negatives/);
  });

  test('an epoch: each pair then `negatives` unseen items, whole groups per step', () => {
    const data = clusteredData(40, 30);
    const model = ncfSpec.build(config, { data }, ncfSpec.init(config, { data }, new Rng(1))) as NcfModel;
    const steps = model.beginEpoch(new Rng(2));
    // batchSize 50 → 10 groups of 5 rows per step; 320 pairs → 32 steps.
    expect(steps).toBe(32);
    const pairs = trainingPairs(data);
    let positives = 0;
    for (let s = 0; s < steps; s++) {
      const r = model.stepRows(s);
      expect(r.users.length).toBe(50);
      for (let j = 0; j < r.users.length; j++) {
        const seen = pairs.seen[r.users[j]];
        if (j % 5 === 0) {
          expect(r.labels[j]).toBe(1);
          expect(seen).toContain(r.items[j]);
          positives++;
        } else {
          expect(r.labels[j]).toBe(0);
          expect(r.users[j]).toBe(r.users[j - (j % 5)]);
          expect(seen).not.toContain(r.items[j]);
        }
      }
    }
    expect(positives).toBe(pairs.users.length);
    model.dispose();
  });

  test('deterministic for a seed (dropout included)', () => {
    const data = clusteredData(40, 30);
    const run = (seed: number) => {
      const rng = new Rng(seed);
      const model = ncfSpec.build(config, { data }, ncfSpec.init(config, { data }, rng));
      const losses = trainSteps(model, config.learningRate, 2, rng);
      const scores = model.scoreBatch([trainPart(data.users[0])]);
      model.dispose();
      return { losses, scores: [...scores] };
    };
    const a = run(7);
    expect(run(7)).toEqual(a);
    expect(run(8).losses).not.toEqual(a.losses);
  });

  test('full scoring equals the per-pair forward pass; fold-in for unknown histories; padding −∞', () => {
    const data = clusteredData(5, 12, 6);
    const values = ncfSpec.init(config, { data }, new Rng(4));
    const model = ncfSpec.build(config, { data }, values) as NcfModel;
    const unknown = Int32Array.from([3, 5]);
    const histories = [splitInput(data.users[3], 'valid').history, Int32Array.from(splitInput(data.users[1], 'test').history), unknown];
    const scores = model.scoreBatch(histories);
    expect(scores.length).toBe(3 * 13);
    expect(model.foldIns).toBe(1);
    const items = Int32Array.from({ length: 12 }, (_, i) => i + 1);
    for (const [b, user] of [
      [0, 3],
      [1, 1]
    ]) {
      const expected = model.logits(new Int32Array(12).fill(user), items, null).dataSync();
      for (let i = 0; i < 12; i++) expect(scores[b * 13 + 1 + i]).toBeCloseTo(expected[i], 5);
    }
    // Fold-in: both towers' user vectors are the mean of the history items' rows; check through a model
    // whose user 0 holds exactly those means.
    const mean = (table: Float32Array, d: number) => new Float32Array(d).map((_, k) => (table[3 * d + k] + table[5 * d + k]) / 2);
    const folded = new Map(values);
    for (const [user, item, d] of [
      ['user_mf_emb', 'item_mf_emb', 8],
      ['user_mlp_emb', 'item_mlp_emb', 6]
    ] as const) {
      const u = Float32Array.from(values.get(user)!);
      u.set(mean(values.get(item)!, d), 0);
      folded.set(user, u);
    }
    const check = ncfSpec.build(config, { data }, folded) as NcfModel;
    const expected = check.logits(new Int32Array(12), items, null).dataSync();
    for (let i = 0; i < 12; i++) expect(scores[26 + 1 + i]).toBeCloseTo(expected[i], 5);
    expect([scores[0], scores[13], scores[26]]).toEqual([-Infinity, -Infinity, -Infinity]);
    model.dispose();
    check.dispose();
  });

  test('learns: loss falls and the held-out group items rank above popularity', async () => {
    const data = clusteredData(40, 30);
    const rng = new Rng(3);
    const model = ncfSpec.build(config, { data }, ncfSpec.init(config, { data }, rng));
    const losses = trainSteps(model, 0.01, 10, rng);
    expect(losses[losses.length - 1]).toBeLessThan(losses[0] * 0.7);
    const ncf = await evaluate(model, data, 'valid');
    const pop = await evaluate(fitPopularity(data), data, 'valid');
    expect(ncf.metrics.ndcg10).toBeGreaterThan(pop.metrics.ndcg10 + 0.25);
    model.dispose();
  });

  test('trains through the generic loop; the best checkpoint scores as the trained model did', async () => {
    const data = clusteredData(40, 30);
    const ctx = { data };
    const dir = mkdtempSync(join(tmpdir(), 'ncf-'));
    const res = await trainModel(ncfSpec, ctx, { ...config, epochs: 4, patience: 10 }, { checkpointDir: dir });
    expect(res.history).toHaveLength(4);
    const pop = await evaluate(fitPopularity(data), data, 'valid');
    expect(res.valid.ndcg10).toBeGreaterThan(pop.metrics.ndcg10);
    const scorer = await loadScorer(ncfSpec, ctx, res.checkpointPath);
    expect((await evaluate(scorer, data, 'valid')).metrics).toEqual(res.valid);
    scorer.dispose();
  });
});
