import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import type { SasrecConfig } from '../../src/shared/api';
import type { SequenceData } from '../../src/core/data/types';
import { CancelledError } from '../../src/core/progress';
import { attentionBias, initSasrecParams, SasrecModel } from '../../src/core/models/sasrec';
import { initBackend, tf } from '../../src/core/tensor/backend';
import { readSafetensors, writeSafetensors } from '../../src/core/tensor/safetensors';
import { Rng } from '../../src/core/tensor/rng';
import { loadSasrecScorer, trainSasrec } from '../../src/core/models/sasrec-trainer';
import { BEST_FILE, CHECKPOINT_FILE } from '../../src/core/train';

/** Users walk through items in order (i → i+1, wrapping), so the next item is learnable. */
function syntheticData(numUsers = 24, numItems = 20, seed = 3): SequenceData {
  const rng = new Rng(seed);
  const users = Array.from({ length: numUsers }, (_, u) => {
    const len = 6 + rng.int(7);
    const start = rng.int(numItems);
    const items = Int32Array.from({ length: len }, (_, i) => ((start + i) % numItems) + 1);
    return { userId: u + 1, items, timestamps: Float64Array.from(items, (_, i) => i) };
  });
  return { datasetId: 7, numItems, itemIds: Int32Array.from({ length: numItems + 1 }, (_, i) => i), users };
}

const small: Partial<SasrecConfig> = { epochs: 2, batchSize: 8, maxLen: 12, hiddenSize: 16, numBlocks: 2, numHeads: 2, dropout: 0.2, evalEvery: 1 };
const tempDir = () => mkdtempSync(join(tmpdir(), 'sasrec-'));

beforeAll(async () => {
  await initBackend('wasm');
});

describe('SASRec model', () => {
  test('attention bias: causal, padding keys masked, the diagonal always visible', () => {
    const b = attentionBias(Int32Array.from([0, 0, 5, 6]), 1, 4);
    const NEG = -1e9;
    expect([...b]).toEqual([0, NEG, NEG, NEG, NEG, 0, NEG, NEG, NEG, NEG, 0, NEG, NEG, NEG, 0, 0]);
  });

  test('outputs at a position do not depend on later items (causality)', () => {
    const shape = { numItems: 10, maxLen: 6, hiddenSize: 8, numBlocks: 2, numHeads: 1, dropout: 0.2 };
    const model = new SasrecModel(shape, initSasrecParams(shape, new Rng(1)));
    const a = model.forward(Int32Array.from([0, 1, 2, 3, 4, 5]), 1, 6, null);
    const b = model.forward(Int32Array.from([0, 1, 2, 3, 9, 8]), 1, 6, null);
    const head = (t: tf.Tensor) => [...tf.slice(t, [0, 0, 0], [1, 4, 8]).dataSync()];
    expect(head(a)).toEqual(head(b));
    expect([...a.dataSync()]).not.toEqual([...b.dataSync()]);
    model.dispose();
  });

  test('dropping all-padding leading columns changes neither scores nor the loss', () => {
    const shape = { numItems: 10, maxLen: 8, hiddenSize: 8, numBlocks: 2, numHeads: 2, dropout: 0.2 };
    const model = new SasrecModel(shape, initSasrecParams(shape, new Rng(2)));
    const histories = [Int32Array.from([1, 2, 3]), Int32Array.from([4, 5])];
    // Full-length reference: pad to maxLen and read the last position.
    const full = Int32Array.from([0, 0, 0, 0, 0, 1, 2, 3, 0, 0, 0, 0, 0, 0, 4, 5]);
    const h = model.forward(full, 2, 8, null);
    const last = tf.reshape(tf.slice(h, [0, 7, 0], [2, 1, 8]), [2, 8]) as tf.Tensor2D;
    const expected = tf.matMul(last, model.params.get('item_emb')!, false, true).dataSync();
    const got = model.scoreNext(histories);
    got.forEach((v, i) => expect(v).toBeCloseTo(expected[i], 5));
    // Loss without dropout on the trimmed batch equals the loss over the full-length columns.
    const targets = Int32Array.from([0, 0, 0, 0, 0, 2, 3, 6, 0, 0, 0, 0, 0, 0, 5, 7]);
    const trimmed = model.loss(full, targets, 2, null).dataSync()[0];
    const hFull = tf.reshape(model.forward(full, 2, 8, null), [16, 8]) as tf.Tensor2D;
    const keep = [5, 6, 7, 14, 15];
    const logits = tf.matMul(tf.gather(hFull, keep) as tf.Tensor2D, model.params.get('item_emb')!, false, true);
    const reference = tf.losses.softmaxCrossEntropy(tf.oneHot(keep.map((i) => targets[i]), 11), logits).dataSync()[0];
    expect(trimmed).toBeCloseTo(reference, 5);
    model.dispose();
  });
});

describe('trainSasrec', () => {
  const data = syntheticData();

  test('same seed ⇒ identical loss sequence and weights; tensors do not leak', async () => {
    const run = async (seed: number) => {
      const losses: number[] = [];
      const tensorsAtEpochEnd: number[] = [];
      const dir = tempDir();
      const r = await trainSasrec(data, { ...small, seed, epochs: 3 }, {
        checkpointDir: dir,
        onProgress: (p) => p.phase === 'train' && losses.push(p.metrics!.loss),
        onEpoch: () => tensorsAtEpochEnd.push(tf.memory().numTensors)
      });
      return { losses, tensorsAtEpochEnd, r, weights: readSafetensors(join(dir, CHECKPOINT_FILE)).tensors };
    };
    const before = tf.memory().numTensors;
    const a = await run(11);
    expect(tf.memory().numTensors).toBe(before);
    const b = await run(11);
    const c = await run(12);
    expect(a.losses.length).toBe(9); // 24 users / 8 per batch × 3 epochs
    expect(a.losses).toEqual(b.losses);
    expect(a.losses).not.toEqual(c.losses);
    expect(a.weights.get('param.item_emb')!.data).toEqual(b.weights.get('param.item_emb')!.data);
    expect(new Set(a.tensorsAtEpochEnd).size).toBe(1);
    expect(a.r.history.map((h) => h.epoch)).toEqual([1, 2, 3]);
    expect(a.r.history.every((h) => h.validNdcg10 !== null && h.seconds > 0)).toBe(true);
  });

  test('crash + resume reproduces an uninterrupted run exactly', async () => {
    const straightDir = tempDir();
    const straight = await trainSasrec(data, small, { checkpointDir: straightDir });

    const dir = tempDir();
    const signal = { aborted: false };
    await expect(
      trainSasrec(data, small, {
        checkpointDir: dir,
        signal,
        // Abort midway through epoch 2 (3 steps per epoch): epoch 1's checkpoint must survive.
        onProgress: (p) => {
          if (p.phase === 'train' && p.done === 4) signal.aborted = true;
        }
      })
    ).rejects.toBeInstanceOf(CancelledError);
    const afterCrash = readSafetensors(join(dir, CHECKPOINT_FILE));
    expect(afterCrash.metadata.epoch).toBe('1');

    const resumed = await trainSasrec(data, small, { checkpointDir: dir, resume: true });
    const a = readSafetensors(join(straightDir, CHECKPOINT_FILE));
    const b = readSafetensors(join(dir, CHECKPOINT_FILE));
    for (const [name, t] of a.tensors) expect(b.tensors.get(name)!.data, name).toEqual(t.data);
    expect(b.metadata.rng).toBe(a.metadata.rng);
    expect(resumed.history.map((h) => h.loss)).toEqual(straight.history.map((h) => h.loss));
    expect(resumed.bestEpoch).toBe(straight.bestEpoch);
    expect(resumed.valid).toEqual(straight.valid);
  });

  test('early stopping after `patience` evaluations without improvement', async () => {
    // lr 1e-6 (the smallest allowed) does not move NDCG@10 after the first evaluation.
    const r = await trainSasrec(data, { ...small, epochs: 10, learningRate: 1e-6, patience: 2 }, { checkpointDir: tempDir() });
    expect(r.stoppedEarly).toBe(true);
    expect(r.bestEpoch).toBe(1);
    expect(r.history.length).toBe(3);
  });

  test('best checkpoint loads as a scorer; wrong dataset and corrupt files are named in errors', async () => {
    const dir = tempDir();
    const r = await trainSasrec(data, { ...small, epochs: 1 }, { checkpointDir: dir });
    expect(r.checkpointPath).toBe(join(dir, BEST_FILE));
    const scorer = await loadSasrecScorer(r.checkpointPath, data);
    const scores = await scorer.scoreBatch([Int32Array.from([1, 2, 3]), Int32Array.from([5])]);
    expect(scores.length).toBe(2 * 21);
    scorer.dispose();

    // Checkpoints written before the generic loop (SASRec-only format name, same tensors) still load.
    const legacy = join(dir, 'legacy.safetensors');
    const file = readSafetensors(r.checkpointPath);
    const tensors = Object.fromEntries([...file.tensors].map(([n, t]) => [n, { dtype: 'F32' as const, shape: t.shape, data: t.data }]));
    writeSafetensors(legacy, tensors, { ...file.metadata, format: 'almostrec-sasrec-weights/1' });
    const old = await loadSasrecScorer(legacy, data);
    expect(await old.scoreBatch([Int32Array.from([1, 2, 3])])).toEqual((scores as Float32Array).subarray(0, 21));
    old.dispose();

    const other = syntheticData(24, 25);
    await expect(loadSasrecScorer(r.checkpointPath, other)).rejects.toThrow(`${r.checkpointPath}: checkpoint has 20 items, dataset 7 has 25`);
    const corrupt = join(dir, 'corrupt.safetensors');
    writeFileSync(corrupt, Buffer.from('not a checkpoint at all'));
    await expect(loadSasrecScorer(corrupt, data)).rejects.toThrow(corrupt);
    const missing = join(dir, 'missing.safetensors');
    await expect(loadSasrecScorer(missing, data)).rejects.toThrow(missing);
    // A checkpoint from another dataset cannot be resumed.
    const dir2 = tempDir();
    copyFileSync(join(dir, CHECKPOINT_FILE), join(dir2, CHECKPOINT_FILE));
    await expect(trainSasrec(other, { ...small, epochs: 2 }, { checkpointDir: dir2, resume: true })).rejects.toThrow(/checkpoint has 20 items, dataset has 25/);
  });
});
