// Data-parallel pretraining (core/backbone/pretrain-shards.ts, pretrain-replica.ts): a step's shards weighted
// by their target counts give the whole batch's mean loss and gradients; one thread and two (a replica
// worker) give the same backbone bit for bit over all three stages; a replica that cannot start is reported
// and the run goes on with the same result; a resume in the middle of a stage with two threads ends where
// the straight run does.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { initBackend, tf } from '../../src/core/tensor/backend';
import { tiedSoftmaxCrossEntropy } from '../../src/core/tensor/ops';
import { CancelledError } from '../../src/core/progress';
import { pretrainCompact, type PretrainParams, type PretrainResult } from '../../src/core/backbone/pretrain';
import { compactConfig, initialWeights, COMPACT_IMAGE_TOKEN } from '../../src/core/backbone/compact';
import { LlavaModel } from '../../src/core/backbone/llava-model';
import { lossRows, makeBatch, type CaptionSample } from '../../src/core/backbone/pretrain-data';
import { concatGrids, pretrainShard, pretrainShardMembers, shardInputs } from '../../src/core/backbone/pretrain-shards';
import { llamaTokenizer } from '../../src/core/backbone/tokenizer';
import { SHARDS } from '../../src/core/train/replicas';
import { combineShards } from '../../src/core/train/shard-step';
import { tinyPretrainParams } from '../setup/tiny-backbone';
import { PRETRAIN_CAPTIONS as captions, posterGrids as grids } from '../setup/pretrain-captions';

const root = resolve(__dirname, '..', '..');
const replicaScript = join(root, 'out', 'main', 'pretrain-replica.js');
const ENCODER = 'test-grid';
const tokenizer = llamaTokenizer({ imageTokenId: COMPACT_IMAGE_TOKEN });

// batch 3: shards of unequal size and token count, so the weighting by target counts matters.
const base = tinyPretrainParams({ maxTokens: 24, batchSize: 3, stage0Steps: 3, stage1Steps: 2, stage2Steps: 3, checkpointEvery: 2, heldOutPercent: 25 });

let dir: string;
beforeAll(async () => {
  await initBackend('wasm');
  dir = mkdtempSync(join(tmpdir(), 'almostrec-pretrain-dp-'));
  // The replica runs the built worker; `npm test` builds before the unit tests, this covers a bare vitest run.
  if (!existsSync(replicaScript)) execFileSync('npx', ['electron-vite', 'build'], { cwd: root, stdio: 'ignore' });
}, 180_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Hooks = NonNullable<Parameters<typeof pretrainCompact>[1]>;

function run(name: string, params: PretrainParams, hooks: Hooks): Promise<PretrainResult> {
  return pretrainCompact({ params, captions, grids: grids(), gridEncoderId: ENCODER, tokenizer, outDir: join(dir, name), statePath: join(dir, `${name}.state.safetensors`) }, hooks);
}

/** The saved backbone's tensors as raw bytes by name (bit-for-bit comparison). */
function savedBytes(name: string): Map<string, Buffer> {
  const path = join(dir, name, 'model.safetensors');
  const file = readFileSync(path);
  const headerLength = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, { data_offsets: [number, number] }>;
  const out = new Map<string, Buffer>();
  for (const [key, info] of Object.entries(header)) {
    if (key !== '__metadata__') out.set(key, file.subarray(8 + headerLength + info.data_offsets[0], 8 + headerLength + info.data_offsets[1]));
  }
  return out;
}

function expectSameBits(a: string, b: string): void {
  const x = savedBytes(a);
  const y = savedBytes(b);
  expect([...y.keys()].sort()).toEqual([...x.keys()].sort());
  expect(x.size).toBeGreaterThan(5);
  for (const [name, bytes] of x) expect(y.get(name)!.equals(bytes), name).toBe(true);
}

const spec = { bosId: tokenizer.bosId, eosId: tokenizer.eosId, padId: tokenizer.padId, imageTokenId: COMPACT_IMAGE_TOKEN, imageTokens: 4, maxTokens: 24 };
const samples: CaptionSample[] = captions.map((c) => ({ itemId: c.itemId, tokens: tokenizer.encode(c.caption, { addBos: false }), hasImage: c.hasImage }));

describe('pretraining shards', () => {
  test('every caption of the batch in exactly one shard, shards balanced by token count', () => {
    const lengths = [30, 5, 22, 7, 9, 28, 6];
    const parts = Array.from({ length: SHARDS }, (_, s) => pretrainShardMembers(lengths, s, SHARDS));
    expect(parts.flat().sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    for (const p of parts) expect(p).toEqual([...p].sort((a, b) => a - b));
    const tokens = parts.map((p) => p.reduce((a, i) => a + lengths[i], 0));
    // dealt by rank: no shard gets all the long ones
    expect(Math.max(...tokens) - Math.min(...tokens)).toBeLessThanOrEqual(Math.max(...lengths));
    expect(Math.max(...parts.map((p) => p.length)) - Math.min(...parts.map((p) => p.length))).toBeLessThanOrEqual(1);
    // a batch smaller than the shard count leaves a shard empty
    expect(shardInputs([samples[0]], () => false, spec, grids(), 1280, SHARDS).filter((s) => s === null)).toHaveLength(SHARDS - 1);
  });

  test('shards weighted by their target counts give the whole batch’s mean loss and gradients', () => {
    const params = tinyPretrainParams({ maxTokens: 24, batchSize: 5, stage0Steps: 1, stage1Steps: 1, stage2Steps: 1, checkpointEvery: 1, heldOutPercent: 0 });
    const cfg = compactConfig(params, ENCODER);
    const weights = initialWeights(cfg, params.seed);
    const vars = new Map<string, tf.Variable>();
    for (const [name, t] of weights) {
      const v = tf.variable(t, true, `dp-test/${name}`);
      t.dispose();
      weights.set(name, v);
      vars.set(name, v);
    }
    const model = new LlavaModel(cfg, weights);
    const m = { model, vars, embedTable: weights.get('text.embed_tokens.weight') as tf.Tensor2D };
    const picked = samples.slice(0, 5);
    const withImage = (s: CaptionSample) => s.hasImage;
    const g = grids();
    const inputs = shardInputs(picked, withImage, spec, g, 1280, SHARDS);
    const counts = inputs.map((s) => s!.targets.length);
    expect(new Set(counts).size).toBe(SHARDS); // unequal shards: a plain mean of the shards would be wrong
    const combined = combineShards(inputs.map((s) => pretrainShard(m, s!)));
    // The same batch as one: the mean over all its target tokens.
    const batch = makeBatch(picked, withImage, spec);
    expect(counts.reduce((a, c) => a + c, 0)).toBe(batch.targetCount);
    const { rows, targets } = lossRows(batch);
    const whole = tf.variableGrads(() => {
      const feats = tf.tensor3d(concatGrids(batch.imageItems, g, 4 * 1280), [batch.imageItems.length, 4, 1280]);
      const imageEmbeds = model.projectVisionFeatures(feats, true);
      const ids = tf.tensor2d(batch.inputIds, [batch.batch, batch.length], 'int32');
      const mask = tf.tensor2d(batch.attentionMask, [batch.batch, batch.length], 'int32');
      const { hidden } = model.forward({ inputIds: ids, attentionMask: mask, imageEmbeds, training: true, logits: 'none' });
      const h = tf.gather(tf.reshape(hidden, [-1, cfg.text.hiddenSize]), tf.tensor1d(rows, 'int32')) as tf.Tensor2D;
      return tiedSoftmaxCrossEntropy(h, m.embedTable, targets, -1);
    }, [...vars.values()]);
    expect(combined.loss).toBeCloseTo(whole.value.dataSync()[0], 4);
    for (const [name, v] of vars) {
      const a = combined.grads.get(name)!.dataSync();
      const b = whole.grads[v.name].dataSync();
      let scale = 1e-6;
      let diff = 0;
      for (let i = 0; i < b.length; i++) {
        scale = Math.max(scale, Math.abs(b[i]));
        diff = Math.max(diff, Math.abs(a[i] - b[i]));
      }
      expect(diff / scale, name).toBeLessThan(1e-3);
    }
    tf.dispose([whole.value, ...Object.values(whole.grads), ...combined.grads.values()]);
    model.dispose();
    tf.dispose([...weights.values()]);
  });
});

describe('data-parallel pretraining', () => {
  test('one thread and two (a replica worker) give the same backbone bit for bit over all three stages', async () => {
    const before = tf.memory().numTensors;
    const losses = (into: { stage: number; loss: number }[]): Hooks['onStep'] => (p) => into.push({ stage: p.stage, loss: p.loss });
    const oneSteps: { stage: number; loss: number }[] = [];
    const twoSteps: { stage: number; loss: number }[] = [];
    const logs: string[] = [];
    const one = await run('one', base, { threads: 1, onStep: losses(oneSteps) });
    const two = await run('two', base, { threads: 2, replicaScript, onStep: losses(twoSteps), onLog: (m) => logs.push(m) });
    expect(one.threads).toBe(1);
    expect(two.threads).toBe(2);
    expect(logs.join('\n')).not.toMatch(/one thread/);
    expect(new Set(twoSteps.map((s) => s.stage))).toEqual(new Set([0, 1, 2]));
    expect(twoSteps).toEqual(oneSteps);
    expect(two.heldOut).toEqual(one.heldOut);
    expectSameBits('one', 'two');
    expect(tf.memory().numTensors).toBe(before);
  });

  test('a replica that cannot start is reported and pretraining goes on, with the same result', async () => {
    const logs: string[] = [];
    const fallback = await run('fallback', base, { threads: 2, replicaScript: join(dir, 'missing-replica.js'), onLog: (m) => logs.push(m) });
    expect(fallback.threads).toBe(1);
    expect(logs.join('\n')).toMatch(/pretraining on one thread: .*missing-replica\.js/);
    expectSameBits('one', 'fallback');
  });

  test('a resume in the middle of a stage with two threads gives the same bits as the straight run', async () => {
    for (const cutAt of [2, 4, 7]) {
      const name = `cut${cutAt}`;
      const signal = { aborted: false };
      await expect(
        run(name, base, {
          threads: 2,
          replicaScript,
          signal,
          onStep: (p) => {
            if (p.step === cutAt) signal.aborted = true;
          }
        })
      ).rejects.toBeInstanceOf(CancelledError);
      const steps: number[] = [];
      let resumedAt = -1;
      const resumed = await run(name, base, { threads: 2, replicaScript, resume: true, onResume: (s) => (resumedAt = s), onStep: (p) => steps.push(p.step) });
      expect(resumedAt).toBe(cutAt);
      expect(steps[0]).toBe(cutAt + 1);
      expect(resumed.threads).toBe(2);
      expectSameBits('two', name);
    }
  });
});
