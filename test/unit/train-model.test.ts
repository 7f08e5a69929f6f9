// The generic training loop, exercised with a tiny model (next item from the last item: an item-embedding
// table, a bias and seeded input dropout), so every behaviour is checked independently of any real model.
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test, vi } from 'vitest';
import type { TrainingConfig } from '../../src/shared/api';
import { trainPart, type SequenceData } from '../../src/core/data/types';
import { CancelledError } from '../../src/core/progress';
import { initBackend, tf } from '../../src/core/tensor/backend';
import { Rng } from '../../src/core/tensor/rng';
import { readSafetensors } from '../../src/core/tensor/safetensors';
import { Adam } from '../../src/core/tensor/adam';
import { learningRateAt } from '../../src/core/tensor/lr-schedule';
import { exportItemEmbeddings } from '../../src/core/train/item-embeddings';
import type { ModelSpec, TrainableModel } from '../../src/core/train/model-spec';
import { BEST_FILE, CHECKPOINT_FILE, loadScorer, trainModel } from '../../src/core/train/train-model';

interface TinyConfig extends TrainingConfig {
  embeddingSize: number;
}

/** Users walk through items in order (i → i+1, wrapping), so the next item is learnable. */
function syntheticData(numUsers = 24, numItems = 20, seed = 3): SequenceData {
  const rng = new Rng(seed);
  const users = Array.from({ length: numUsers }, (_, u) => {
    const len = 6 + rng.int(7);
    const start = rng.int(numItems);
    const items = Int32Array.from({ length: len }, (_, i) => ((start + i) % numItems) + 1);
    return { userId: u + 1, items, timestamps: Float64Array.from(items, (_, i) => i) };
  });
  return { datasetId: 7, numItems, itemIds: Int32Array.from({ length: numItems + 1 }, (_, i) => 100 + i), users };
}

let counter = 0;

/** A model whose scores are constant when `flat` (its validation NDCG never changes). */
function tinySpec(flat = false): ModelSpec<TinyConfig> {
  return {
    kind: 'bpr', // any catalogue kind whose config has embeddingSize; the loop parses configs by kind
    paramShapes: (c, ctx) => [
      ['item_emb', [ctx.data.numItems + 1, c.embeddingSize]],
      ['bias', [ctx.data.numItems + 1]]
    ],
    init: (c, ctx, rng) =>
      new Map([
        ['item_emb', Float32Array.from({ length: (ctx.data.numItems + 1) * c.embeddingSize }, () => rng.normal() * 0.1)],
        ['bias', new Float32Array(ctx.data.numItems + 1)]
      ]),
    build: (c, ctx, values): TrainableModel => {
      const n = ctx.data.numItems + 1;
      const d = c.embeddingSize;
      const id = ++counter;
      const params = new Map<string, tf.Variable>([
        ['item_emb', tf.tidy(() => tf.variable(tf.tensor2d(values.get('item_emb')!, [n, d]), true, `tiny${id}/item_emb`))],
        ['bias', tf.tidy(() => tf.variable(tf.tensor1d(values.get('bias')!), true, `tiny${id}/bias`))]
      ]);
      const pairs: [number, number][] = [];
      for (const u of ctx.data.users) {
        const s = trainPart(u);
        for (let i = 0; i + 1 < s.length; i++) pairs.push([s[i], s[i + 1]]);
      }
      let order = new Int32Array(0);
      const logits = (prev: Int32Array, mask: Float32Array | null) => {
        let h: tf.Tensor = tf.gather(params.get('item_emb')!, tf.tensor1d(prev, 'int32'));
        if (mask) h = tf.mul(h, tf.tensor2d(mask, [prev.length, d]));
        return tf.add(tf.matMul(h, params.get('item_emb')!, false, true), params.get('bias')!);
      };
      return {
        params,
        beginEpoch(rng) {
          order = Int32Array.from(pairs.keys());
          rng.shuffle(order);
          return Math.ceil(pairs.length / c.batchSize);
        },
        stepLoss(step, rng) {
          const batch = order.subarray(step * c.batchSize, (step + 1) * c.batchSize);
          const prev = Int32Array.from(batch, (k) => pairs[k][0]);
          const next = Int32Array.from(batch, (k) => pairs[k][1]);
          const out = logits(prev, rng.dropoutMask(prev.length * d, 0.1));
          return tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d(next, 'int32'), n), out) as tf.Scalar;
        },
        scoreBatch(histories) {
          if (flat) return new Float32Array(histories.length * n);
          const last = Int32Array.from(histories, (h) => (h.length ? h[h.length - 1] : 0));
          const t = tf.tidy(() => logits(last, null));
          const out = t.dataSync() as Float32Array;
          t.dispose();
          return out;
        },
        dispose() {
          for (const v of params.values()) v.dispose();
        }
      };
    },
    optimizer: (c) => ({ learningRate: c.learningRate }),
    itemEmbeddings: (values, c) => ({ table: values.get('item_emb')!, dim: c.embeddingSize })
  };
}

const small: Partial<TinyConfig> = { epochs: 3, batchSize: 32, learningRate: 0.05, embeddingSize: 8, evalEvery: 1, patience: 10, seed: 5 };
const tempDir = () => mkdtempSync(join(tmpdir(), 'train-model-'));
const data = syntheticData();
const ctx = { data };

beforeAll(async () => {
  await initBackend('wasm');
});

describe('trainModel', () => {
  test('same seed ⇒ identical losses and weights, another seed differs; it learns; tensors do not leak', async () => {
    const run = async (seed: number) => {
      const losses: number[] = [];
      const dir = tempDir();
      const r = await trainModel(tinySpec(), ctx, { ...small, seed }, { checkpointDir: dir, onProgress: (p) => p.phase === 'train' && losses.push(p.metrics!.loss) });
      return { losses, r, weights: readSafetensors(join(dir, CHECKPOINT_FILE)) };
    };
    const before = tf.memory().numTensors;
    const a = await run(11);
    expect(tf.memory().numTensors).toBe(before);
    const b = await run(11);
    const c = await run(12);
    expect(a.losses.length).toBeGreaterThan(3);
    expect(a.losses).toEqual(b.losses);
    expect(a.losses).not.toEqual(c.losses);
    expect(a.weights.tensors.get('param.item_emb')!.data).toEqual(b.weights.tensors.get('param.item_emb')!.data);
    expect(a.weights.metadata.model).toBe('bpr');
    expect(JSON.parse(a.weights.metadata.config).embeddingSize).toBe(8);
    expect(a.r.history.map((h) => h.epoch)).toEqual([1, 2, 3]);
    expect(a.r.history[2].loss).toBeLessThan(a.r.history[0].loss);
    expect(a.r.valid.ndcg10).toBeGreaterThan(0.3); // i → i+1 is learnt (chance is ~0.1)
  });

  test('cancel mid-epoch keeps the last epoch checkpoint; resume reproduces the uninterrupted run bit for bit', async () => {
    const straightDir = tempDir();
    const straight = await trainModel(tinySpec(), ctx, small, { checkpointDir: straightDir });
    const dir = tempDir();
    const signal = { aborted: false };
    let stepsPerEpoch = 0;
    await expect(
      trainModel(tinySpec(), ctx, small, {
        checkpointDir: dir,
        signal,
        onProgress: (p) => {
          if (p.phase !== 'train') return;
          if (p.metrics!.epoch === 1) stepsPerEpoch = p.metrics!.step;
          if (p.metrics!.epoch === 2 && p.metrics!.step === 2) signal.aborted = true;
        }
      })
    ).rejects.toBeInstanceOf(CancelledError);
    expect(stepsPerEpoch).toBeGreaterThan(2);
    expect(readSafetensors(join(dir, CHECKPOINT_FILE)).metadata.epoch).toBe('1');

    const resumed = await trainModel(tinySpec(), ctx, small, { checkpointDir: dir, resume: true });
    const a = readSafetensors(join(straightDir, CHECKPOINT_FILE));
    const b = readSafetensors(join(dir, CHECKPOINT_FILE));
    expect([...b.tensors.keys()].sort()).toEqual([...a.tensors.keys()].sort());
    for (const [name, t] of a.tensors) expect(b.tensors.get(name)!.data, name).toEqual(t.data);
    expect(b.metadata.rng).toBe(a.metadata.rng);
    expect(b.metadata.adamStep).toBe(a.metadata.adamStep);
    expect(resumed.history.map((h) => h.loss)).toEqual(straight.history.map((h) => h.loss));
    expect(resumed.valid).toEqual(straight.valid);
    expect(readSafetensors(join(dir, BEST_FILE)).tensors.get('item_emb')!.data).toEqual(readSafetensors(join(straightDir, BEST_FILE)).tensors.get('item_emb')!.data);

    // A finished run resumed with more epochs continues; with a changed architecture it is refused.
    const longer = await trainModel(tinySpec(), ctx, { ...small, epochs: 4 }, { checkpointDir: dir, resume: true });
    expect(longer.history.map((h) => h.epoch)).toEqual([1, 2, 3, 4]);
    await expect(trainModel(tinySpec(), ctx, { ...small, epochs: 5, embeddingSize: 4 }, { checkpointDir: dir, resume: true })).rejects.toThrow(
      `${join(dir, CHECKPOINT_FILE)}: checkpoint was trained with a different configuration (embeddingSize)`
    );
  });

  test('an already-cancelled signal stops before any step', async () => {
    let steps = 0;
    await expect(trainModel(tinySpec(), ctx, small, { checkpointDir: tempDir(), signal: { aborted: true }, onProgress: () => steps++ })).rejects.toBeInstanceOf(CancelledError);
    expect(steps).toBe(0);
  });

  test('early stopping after `patience` evaluations without improvement; evalEvery spaces validations', async () => {
    const r = await trainModel(tinySpec(true), ctx, { ...small, epochs: 20, patience: 2 }, { checkpointDir: tempDir() });
    expect(r.stoppedEarly).toBe(true);
    expect(r.bestEpoch).toBe(1);
    expect(r.history.length).toBe(3);

    const spaced = await trainModel(tinySpec(), ctx, { ...small, epochs: 5, evalEvery: 2 }, { checkpointDir: tempDir() });
    expect(spaced.history.map((h) => h.validNdcg10 !== null)).toEqual([false, true, false, true, true]);
    expect(spaced.stoppedEarly).toBe(false);
  });

  test('best weights load as a scorer; wrong kind, shapes, dataset and corrupt files are refused naming the file', async () => {
    const dir = tempDir();
    const r = await trainModel(tinySpec(), ctx, { ...small, epochs: 2 }, { checkpointDir: dir });
    const scorer = await loadScorer(tinySpec(), ctx, r.checkpointPath);
    expect((await scorer.scoreBatch([Int32Array.from([1, 2])])).length).toBe(21);
    scorer.dispose();

    const path = r.checkpointPath;
    await expect(loadScorer({ ...tinySpec(), kind: 'ncf' }, ctx, path)).rejects.toThrow(`${path}: checkpoint is a bpr model, expected ncf`);
    const wider: ModelSpec<TinyConfig> = { ...tinySpec(), paramShapes: (c, x) => [['item_emb', [x.data.numItems + 1, c.embeddingSize + 1]], ['bias', [x.data.numItems + 1]]] };
    await expect(loadScorer(wider, ctx, path)).rejects.toThrow(`${path}: tensor "item_emb" has shape [21,8] F32, expected [21,9] F32`);
    const renamed: ModelSpec<TinyConfig> = { ...tinySpec(), paramShapes: (c, x) => [['item_emb', [x.data.numItems + 1, c.embeddingSize]], ['out_bias', [x.data.numItems + 1]]] };
    await expect(loadScorer(renamed, ctx, path)).rejects.toThrow(`${path}: missing tensor "out_bias"`);
    await expect(loadScorer(tinySpec(), { data: syntheticData(24, 25) }, path)).rejects.toThrow(`${path}: checkpoint has 20 items, dataset 7 has 25`);
    const corrupt = join(dir, 'corrupt.safetensors');
    writeFileSync(corrupt, Buffer.from('not a checkpoint at all'));
    await expect(loadScorer(tinySpec(), ctx, corrupt)).rejects.toThrow(corrupt);
    const missing = join(dir, 'missing.safetensors');
    await expect(loadScorer(tinySpec(), ctx, missing)).rejects.toThrow(missing);
    // A best-weights file is not a training checkpoint; a checkpoint for other data cannot be resumed.
    const dir2 = tempDir();
    copyFileSync(path, join(dir2, CHECKPOINT_FILE));
    await expect(trainModel(tinySpec(), ctx, small, { checkpointDir: dir2, resume: true })).rejects.toThrow(`${join(dir2, CHECKPOINT_FILE)}: not a training checkpoint`);
    const dir3 = tempDir();
    copyFileSync(join(dir, CHECKPOINT_FILE), join(dir3, CHECKPOINT_FILE));
    await expect(trainModel(tinySpec(), { data: syntheticData(24, 25) }, small, { checkpointDir: dir3, resume: true })).rejects.toThrow(/checkpoint has 20 items, dataset has 25/);
    // A visual model without features is refused before training.
    await expect(trainModel({ ...tinySpec(), needsItemFeatures: true }, ctx, small, { checkpointDir: tempDir() })).rejects.toThrow('model bpr needs item image features');
  });

  test('gradAccum averages consecutive steps into one update; warmupSteps ramps the learning rate over the first updates', async () => {
    const pairs = data.users.reduce((n, u) => n + trainPart(u).length - 1, 0);
    expect(pairs % 2).toBe(0);
    const withOptimizer = (extra: { gradAccum?: number; warmupSteps?: number }): ModelSpec<TinyConfig> => {
      const spec = tinySpec();
      return { ...spec, optimizer: (c) => ({ ...spec.optimizer(c), ...extra }) };
    };
    const weights = (dir: string) => readSafetensors(join(dir, CHECKPOINT_FILE)).tensors.get('param.item_emb')!.data as Float32Array;
    // Two half batches accumulated = one whole batch (same examples, same dropout draws, mean of equal-sized means).
    const whole = tempDir();
    await trainModel(tinySpec(), ctx, { ...small, batchSize: pairs }, { checkpointDir: whole });
    const halves = tempDir();
    const steps: number[] = [];
    await trainModel(withOptimizer({ gradAccum: 2 }), ctx, { ...small, batchSize: pairs / 2 }, { checkpointDir: halves, onProgress: (p) => p.phase === 'train' && steps.push(p.done) });
    expect(steps.length).toBe(2 * small.epochs!);
    expect(readSafetensors(join(halves, CHECKPOINT_FILE)).metadata.adamStep).toBe(String(small.epochs));
    const a = weights(whole);
    const b = weights(halves);
    for (let i = 0; i < a.length; i++) expect(b[i]).toBeCloseTo(a[i], 5);

    // Adam's first update moves each weight by the learning rate (m̂/√v̂ = ±1): a quarter of it with warmupSteps 4.
    const init = tinySpec().init(small as TinyConfig, ctx, new Rng(small.seed!));
    const firstStep = async (warmupSteps: number) => {
      const dir = tempDir();
      await trainModel(withOptimizer({ warmupSteps }), ctx, { ...small, epochs: 1, batchSize: pairs }, { checkpointDir: dir });
      const w = weights(dir);
      const before = init.get('item_emb')!;
      return w.reduce((m, v, i) => Math.max(m, Math.abs(v - before[i])), 0);
    };
    expect(await firstStep(0)).toBeCloseTo(small.learningRate!, 6);
    expect(await firstStep(4)).toBeCloseTo(small.learningRate! / 4, 6);
  });

  test('schedule cosine: every update takes the warm-up/cosine rate of its index over the run; resume stays bit-exact', async () => {
    const pairs = data.users.reduce((n, u) => n + trainPart(u).length - 1, 0);
    const cosine = (): ModelSpec<TinyConfig> => {
      const spec = tinySpec();
      return { ...spec, optimizer: (c) => ({ ...spec.optimizer(c), warmupSteps: 2, schedule: 'cosine' }) };
    };
    const config = { ...small, epochs: 3, batchSize: pairs / 2 }; // 2 updates per epoch, 6 in the run
    // Adam.setLearningRate is called once before each update with that update's rate.
    const recorded = vi.spyOn(Adam.prototype, 'setLearningRate');
    const straightDir = tempDir();
    let rates: number[];
    try {
      await trainModel(cosine(), ctx, config, { checkpointDir: straightDir });
      rates = recorded.mock.calls.map(([lr]) => lr);
    } finally {
      recorded.mockRestore();
    }
    expect(rates).toEqual([0, 1, 2, 3, 4, 5].map((k) => learningRateAt(k, 6, small.learningRate!, 2)));
    expect(rates[5]).toBeGreaterThan(0.1 * small.learningRate!);
    expect(rates[5]).toBeLessThan(0.25 * small.learningRate!);
    // The constant schedule trains other weights.
    const constantDir = tempDir();
    await trainModel(tinySpec(), ctx, config, { checkpointDir: constantDir });
    const w = (dir: string) => readSafetensors(join(dir, CHECKPOINT_FILE)).tensors.get('param.item_emb')!.data;
    expect(w(constantDir)).not.toEqual(w(straightDir));

    // Cancelled in epoch 2 and resumed, it ends where the uninterrupted run does.
    const dir = tempDir();
    const signal = { aborted: false };
    await expect(
      trainModel(cosine(), ctx, config, {
        checkpointDir: dir,
        signal,
        onProgress: (p) => {
          if (p.phase === 'train' && p.metrics!.epoch === 2 && p.metrics!.step === 1) signal.aborted = true;
        }
      })
    ).rejects.toBeInstanceOf(CancelledError);
    await trainModel(cosine(), ctx, config, { checkpointDir: dir, resume: true });
    expect(w(dir)).toEqual(w(straightDir));
  });

  test('exportItemEmbeddings writes [(numItems + 1), d] with a zero padding row and the item-id mapping', async () => {
    const dir = tempDir();
    const r = await trainModel(tinySpec(), ctx, { ...small, epochs: 1 }, { checkpointDir: dir });
    const out = exportItemEmbeddings(tinySpec(), r.checkpointPath, ctx);
    const file = readSafetensors(out);
    const t = file.tensors.get('item_embeddings')!;
    expect(t.shape).toEqual([21, 8]);
    expect([...t.data.slice(0, 8)]).toEqual(new Array(8).fill(0));
    expect(t.data.slice(8)).toEqual((readSafetensors(r.checkpointPath).tensors.get('item_emb')!.data as Float32Array).slice(8));
    expect(JSON.parse(file.metadata.itemIds)).toEqual(Array.from(data.itemIds));
    expect(file.metadata.model).toBe('bpr');
    expect(file.metadata.datasetId).toBe('7');
    expect(() => exportItemEmbeddings(tinySpec(), r.checkpointPath, { data: syntheticData(24, 25) })).toThrow(r.checkpointPath);
  });
});

describe('Adam', () => {
  test('weightDecay adds λ·p to the gradient before the moments (torch.optim.Adam)', () => {
    const p = new Map([['w', tf.variable(tf.tensor1d([1, -2]), true, 'adam-wd-test')]]);
    const adam = new Adam(p, { learningRate: 0.1, weightDecay: 0.5 });
    const grad = [0.2, 0.3];
    adam.apply(p, { w: tf.tensor1d(grad) });
    // Step 1: m̂ = g', v̂ = g'², update = lr · g' / (|g'| + eps) with g' = g + λp.
    const expected = [1, -2].map((w, i) => {
      const g = grad[i] + 0.5 * w;
      return w - (0.1 * g) / (Math.abs(g) + 1e-8);
    });
    const got = p.get('w')!.dataSync();
    expected.forEach((e, i) => expect(got[i]).toBeCloseTo(e, 6));
    adam.dispose();
    p.get('w')!.dispose();
  });
});
