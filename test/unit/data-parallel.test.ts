// Length-grouped batches and data-parallel training (core/train/replicas.ts): the grouped loss equals the
// padded one, shards add up to the whole step, and one thread or two give the same run bit for bit.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { parseModelConfig, type SasrecConfig } from '../../src/shared/api';
import type { ModelSpec } from '../../src/core/train/model-spec';
import type { SequenceData } from '../../src/core/data/types';
import { gru4recSpec } from '../../src/core/models/gru4rec';
import { nextitnetSpec } from '../../src/core/models/nextitnet';
import { initSasrecParams, lengthGroups, SasrecModel, sasrecSpec } from '../../src/core/models/sasrec';
import { shardMembers } from '../../src/core/models/seq/batches';
import { initBackend, tf } from '../../src/core/tensor/backend';
import { Rng } from '../../src/core/tensor/rng';
import { readSafetensors } from '../../src/core/tensor/safetensors';
import { CHECKPOINT_FILE, trainModel } from '../../src/core/train';
import { SHARDS } from '../../src/core/train/replicas';
import { combineShards, computeShard } from '../../src/core/train/shard-step';

const root = resolve(__dirname, '..', '..');
const replicaScript = join(root, 'out', 'main', 'train-replica.js');

/** Users of very different lengths walking through items in order (the next item is learnable). */
function mixedLengths(numUsers = 40, numItems = 30, seed = 5): SequenceData {
  const rng = new Rng(seed);
  const users = Array.from({ length: numUsers }, (_, u) => {
    const len = u % 2 === 0 ? 4 + rng.int(4) : 30 + rng.int(20);
    const start = rng.int(numItems);
    const items = Int32Array.from({ length: len }, (_, i) => ((start + i) % numItems) + 1);
    return { userId: u + 1, items, timestamps: Float64Array.from(items, (_, i) => i) };
  });
  return { datasetId: 9, numItems, itemIds: Int32Array.from({ length: numItems + 1 }, (_, i) => i), users };
}

const tempDir = () => mkdtempSync(join(tmpdir(), 'parallel-'));

beforeAll(async () => {
  await initBackend('wasm');
  // The replica runs the built worker; `npm test` builds before the unit tests, this covers a bare vitest run.
  if (!existsSync(replicaScript)) execFileSync('npx', ['electron-vite', 'build'], { cwd: root, stdio: 'ignore' });
}, 180_000);

describe('length groups', () => {
  test('every member once, shortest group first, each group sorted', () => {
    const lengths = [50, 3, 200, 7, 3, 120, 199, 8];
    const groups = lengthGroups(lengths);
    expect(groups.flatMap((g) => [...g]).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    const flat = groups.flatMap((g) => [...g].map((i) => lengths[i]));
    expect(flat).toEqual([...flat].sort((a, b) => a - b));
  });

  test('equal lengths stay one group; far-apart lengths split where the padding costs more than a group', () => {
    expect(lengthGroups(new Array(64).fill(50)).length).toBe(1);
    const two = lengthGroups([...new Array(64).fill(5), ...new Array(64).fill(200)]);
    expect(two.map((g) => g.length)).toEqual([64, 64]);
    // A group costs ~10 ms: a slightly shorter member is not worth a group of its own.
    expect(lengthGroups([150, 160, 160, 160]).length).toBe(1);
  });

  test('shards: disjoint, together the whole batch, sizes within one', () => {
    const members = Int32Array.from([9, 4, 7, 1, 12, 3, 8]);
    const parts = Array.from({ length: SHARDS }, (_, s) => shardMembers(members, (m) => m * 3, s, SHARDS));
    expect(parts.flatMap((p) => [...p]).sort((a, b) => a - b)).toEqual([...members].sort((a, b) => a - b));
    const sizes = parts.map((p) => p.length);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
  });

  test('the grouped SASRec loss and gradients equal those of one padded batch', () => {
    const data = mixedLengths();
    const shape = { numItems: data.numItems, maxLen: 48, hiddenSize: 16, numBlocks: 2, numHeads: 2, dropout: 0.2 };
    const model = new SasrecModel(shape, initSasrecParams(shape, new Rng(3)));
    const B = data.users.length;
    const M = shape.maxLen;
    const inputs = new Int32Array(B * M);
    const targets = new Int32Array(B * M);
    data.users.forEach((u, b) => {
      const seq = u.items.subarray(0, u.items.length - 2);
      const n = Math.min(M, seq.length - 1);
      inputs.set(seq.subarray(seq.length - 1 - n, seq.length - 1), b * M + M - n);
      targets.set(seq.subarray(seq.length - n), b * M + M - n);
    });
    const lengths = Array.from({ length: B }, (_, b) => inputs.subarray(b * M, (b + 1) * M).filter((v) => v !== 0).length);
    expect(lengthGroups(lengths).length).toBeGreaterThan(1);
    const vars = [...model.params.values()];
    const grouped = tf.variableGrads(() => model.loss(inputs, targets, B, null), vars);
    // One padded batch: the full-length forward, CE over every real target (stock ops).
    const padded = tf.variableGrads(() => {
      const h = tf.reshape(model.forward(inputs, B, M, null), [B * M, 16]) as tf.Tensor2D;
      const keep = [...targets].map((t, i) => (t !== 0 ? i : -1)).filter((i) => i >= 0);
      const logits = tf.matMul(tf.gather(h, keep) as tf.Tensor2D, model.params.get('item_emb')!, false, true);
      return tf.losses.softmaxCrossEntropy(tf.oneHot(keep.map((i) => targets[i]), data.numItems + 1), logits) as tf.Scalar;
    }, vars);
    expect(grouped.value.dataSync()[0]).toBeCloseTo(padded.value.dataSync()[0], 5);
    for (const v of vars) {
      const a = grouped.grads[v.name].dataSync();
      const b = padded.grads[v.name].dataSync();
      const scale = Math.max(1e-3, ...Array.from(b, Math.abs));
      expect(Math.max(...Array.from(a, (x, i) => Math.abs(x - b[i]))) / scale, v.name).toBeLessThan(1e-4);
    }
    model.dispose();
  });
});

describe('shards of a step', () => {
  test.each([
    ['sasrec', sasrecSpec, { batchSize: 16, maxLen: 48, hiddenSize: 16, numBlocks: 1, numHeads: 1, dropout: 0 }],
    ['gru4rec', gru4recSpec, { batchSize: 16, maxLen: 48, embeddingSize: 16, hiddenSize: 16, dropout: 0 }],
    ['nextitnet', nextitnetSpec, { batchSize: 16, maxLen: 48, embeddingSize: 16 }]
  ] as const)('%s: count-weighted shard gradients equal the whole step’s (no dropout)', (kind, spec, overrides) => {
    const ctx = { data: mixedLengths() };
    const config = parseModelConfig(kind, overrides) as never;
    const generic = spec as unknown as ModelSpec;
    const full = generic.build(config, ctx, generic.init(config, ctx, new Rng(4)));
    const rng = new Rng(8);
    full.beginEpoch(rng);
    const whole = tf.variableGrads(() => full.stepLoss(0, new Rng(1)), [...full.params.values()]);
    const parts = Array.from({ length: SHARDS }, (_, s) => computeShard(full, full.params, 0, s, 100 + s));
    expect(parts.every((p) => p.count > 0)).toBe(true);
    const combined = combineShards(parts);
    expect(combined.loss).toBeCloseTo(whole.value.dataSync()[0], 4);
    for (const [name, v] of full.params) {
      const a = combined.grads.get(name)!.dataSync();
      const b = whole.grads[v.name].dataSync();
      const scale = Math.max(1e-3, ...Array.from(b, Math.abs));
      expect(Math.max(...Array.from(a, (x, i) => Math.abs(x - b[i]))) / scale, name).toBeLessThan(1e-4);
    }
    full.dispose();
  });
});

describe('data-parallel training', () => {
  const config: Partial<SasrecConfig> = { epochs: 2, batchSize: 16, maxLen: 48, hiddenSize: 16, numBlocks: 2, numHeads: 2, dropout: 0.2, evalEvery: 1, seed: 21 };
  const train = (threads: number, extra: { replicaScript?: string; onLog?: (m: string) => void } = {}) => {
    const dir = tempDir();
    return trainModel(sasrecSpec, { data: mixedLengths() }, config, { checkpointDir: dir, threads, ...extra }).then((r) => ({ r, weights: readSafetensors(join(dir, CHECKPOINT_FILE)).tensors }));
  };

  test('two threads (a replica worker) and one give the same run, bit for bit', async () => {
    const before = tf.memory().numTensors;
    const one = await train(1);
    const two = await train(2, { replicaScript });
    expect(one.r.threads).toBe(1);
    expect(two.r.threads).toBe(2);
    expect(two.r.history.map((h) => h.loss)).toEqual(one.r.history.map((h) => h.loss));
    expect(two.r.valid).toEqual(one.r.valid);
    for (const [name, t] of one.weights) expect(two.weights.get(name)!.data, name).toEqual(t.data);
    expect(tf.memory().numTensors).toBe(before);
  });

  test('a replica that cannot start is reported and training goes on, with the same result', async () => {
    const logs: string[] = [];
    const one = await train(1);
    const fallback = await train(2, { replicaScript: join(tempDir(), 'missing-replica.js'), onLog: (m) => logs.push(m) });
    expect(fallback.r.threads).toBe(1);
    expect(logs.join('\n')).toMatch(/training on one thread: .*missing-replica\.js/);
    expect(fallback.r.history.map((h) => h.loss)).toEqual(one.r.history.map((h) => h.loss));
  });
});
