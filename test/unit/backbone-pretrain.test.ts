// Pretraining the compact backbone (both LLaVA stages) on a tiny config: what each stage trains, that the
// loss falls, that a cancelled-then-resumed run ends bit-for-bit where an uninterrupted one does, and that
// the saved folder is a llava-hf checkpoint our loader, tokenizer lookup and model read back.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { initBackend, tf } from '../../src/core/tensor/backend';
import { Rng } from '../../src/core/tensor/rng';
import { CancelledError } from '../../src/core/progress';
import { pretrainCompact, type PretrainParams } from '../../src/core/backbone/pretrain';
import { compactConfig, initialWeights, COMPACT_IMAGE_TOKEN } from '../../src/core/backbone/compact';
import { loadHfCheckpoint } from '../../src/core/backbone/hf-checkpoint';
import { backboneTokenizer } from '../../src/core/backbone/backbone-tokenizer';
import { llamaTokenizer } from '../../src/core/backbone/tokenizer';
import { LlavaModel } from '../../src/core/backbone/llava-model';
import { learningRateAt, makeBatch } from '../../src/core/backbone/pretrain-data';

const ENCODER = 'test-grid';
const tokenizer = llamaTokenizer({ imageTokenId: COMPACT_IMAGE_TOKEN });

const base: PretrainParams = {
  hiddenSize: 32,
  numLayers: 1,
  numHeads: 2,
  numKvHeads: 1,
  intermediateSize: 64,
  gridSize: 2,
  maxTokens: 24,
  batchSize: 4,
  stage1Steps: 2,
  stage2Steps: 3,
  stage1LearningRate: 1e-2,
  stage2LearningRate: 1e-2,
  warmupSteps: 1,
  checkpointEvery: 2,
  seed: 7
};

const captions = [
  { itemId: 1, caption: 'Toy Story (1995). Genres: Animation, Children. Toys come to life.', hasImage: true },
  { itemId: 2, caption: 'Heat (1995). Genres: Action, Crime. A thief and a detective.', hasImage: true },
  { itemId: 3, caption: 'Casino (1995). Genres: Crime, Drama. Las Vegas in the seventies.', hasImage: false },
  { itemId: 4, caption: 'Babe (1995). Genres: Children, Drama. A pig who wants to herd sheep.', hasImage: true }
];

function grids(): Map<number, Float32Array> {
  const rng = new Rng(3);
  const m = new Map<number, Float32Array>();
  for (const id of [1, 2, 4]) m.set(id, Float32Array.from({ length: 4 * 1280 }, () => Math.abs(rng.normal())));
  return m;
}

let dir: string;
beforeAll(async () => {
  await initBackend('wasm');
  dir = mkdtempSync(join(tmpdir(), 'almostrec-pretrain-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(name: string, params: PretrainParams, hooks: Parameters<typeof pretrainCompact>[1] = {}) {
  return pretrainCompact({ params, captions, grids: grids(), gridEncoderId: ENCODER, tokenizer, outDir: join(dir, name), statePath: join(dir, `${name}.state.safetensors`) }, hooks);
}

function values(path: string): Map<string, Float32Array> {
  const loaded = loadHfCheckpoint(path);
  const out = new Map<string, Float32Array>();
  for (const [n, t] of loaded.weights) {
    out.set(n, t.dataSync() as Float32Array);
    t.dispose();
  }
  return out;
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('pretraining data', () => {
  test('sequences put <s>, g² image tokens, the caption and </s>; loss only on caption tokens and </s>', () => {
    const spec = { bosId: 1, eosId: 2, padId: 0, imageTokenId: COMPACT_IMAGE_TOKEN, imageTokens: 4, maxTokens: 12 };
    const b = makeBatch([{ itemId: 9, tokens: [100, 101, 102], hasImage: true }, { itemId: 8, tokens: [200], hasImage: false }], (s) => s.hasImage, spec);
    expect(b.length).toBe(9);
    expect(Array.from(b.inputIds.slice(0, 9))).toEqual([1, 32000, 32000, 32000, 32000, 100, 101, 102, 2]);
    expect(Array.from(b.labels.slice(0, 9))).toEqual([-1, -1, -1, -1, 100, 101, 102, 2, -1]);
    expect(Array.from(b.inputIds.slice(9, 12))).toEqual([1, 200, 2]);
    expect(Array.from(b.attentionMask.slice(9))).toEqual([1, 1, 1, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(b.labels.slice(9, 12))).toEqual([200, 2, -1]);
    expect(b.imageItems).toEqual([9]);
    expect(b.targetCount).toBe(6);
  });

  test('learning rate warms up linearly then decays by cosine to 10%', () => {
    expect(learningRateAt(0, 100, 1, 10)).toBeCloseTo(0.1);
    expect(learningRateAt(9, 100, 1, 10)).toBeCloseTo(1);
    expect(learningRateAt(10, 100, 1, 10)).toBeCloseTo(1);
    expect(learningRateAt(100, 100, 1, 10)).toBeCloseTo(0.1);
  });
});

describe('pretrainCompact', () => {
  test('stage 1 trains the projector only; stage 2 the decoder too', async () => {
    const cfg = compactConfig(base, ENCODER);
    const init = initialWeights(cfg, base.seed);
    await run('s1', { ...base, stage2Steps: 0 });
    const after1 = values(join(dir, 's1'));
    for (const [name, t] of init) {
      const d = maxDiff(t.dataSync() as Float32Array, after1.get(name)!);
      if (name.startsWith('projector.')) expect(d, name).toBeGreaterThan(0);
      else expect(d, name).toBe(0);
    }
    await run('s12', base);
    const after2 = values(join(dir, 's12'));
    expect(maxDiff(after1.get('text.layers.0.mlp.up_proj.weight')!, after2.get('text.layers.0.mlp.up_proj.weight')!)).toBeGreaterThan(0);
    expect(maxDiff(after1.get('text.embed_tokens.weight')!, after2.get('text.embed_tokens.weight')!)).toBeGreaterThan(0);
    tf.dispose([...init.values()]);
  });

  test('the caption loss falls', async () => {
    const losses: number[] = [];
    await run('loss', { ...base, stage1Steps: 0, stage2Steps: 30, stage2LearningRate: 3e-2 }, { onStep: (p) => losses.push(p.loss) });
    expect(losses[0]).toBeGreaterThan(9.5); // ≈ ln 32001 from the N(0, 0.02) start
    expect(Math.min(...losses.slice(-5))).toBeLessThan(losses[0] - 3);
  });

  test('cancel then resume ends exactly where an uninterrupted run does', async () => {
    const full = await run('full', base);
    const signal = { aborted: false };
    const seen: number[] = [];
    await expect(
      run('cut', base, {
        signal,
        onStep: (p) => {
          seen.push(p.step);
          if (p.step === 3) signal.aborted = true;
        }
      })
    ).rejects.toBeInstanceOf(CancelledError);
    expect(seen).toEqual([1, 2, 3]);
    let resumedAt = -1;
    const steps: number[] = [];
    const resumed = await run('cut', base, { resume: true, onResume: (s) => (resumedAt = s), onStep: (p) => steps.push(p.step) });
    expect(resumedAt).toBe(3);
    expect(steps).toEqual([4, 5]);
    expect(resumed.finalLoss).toBeCloseTo(full.finalLoss, 5);
    const a = values(join(dir, 'full'));
    const b = values(join(dir, 'cut'));
    for (const [name, v] of a) expect(maxDiff(v, b.get(name)!), name).toBeLessThan(1e-6);
  });

  test('the saved folder loads as a llava-hf checkpoint with its tokenizer and runs', async () => {
    const loaded = loadHfCheckpoint(join(dir, 'full'));
    expect(loaded.config.vision).toEqual({ kind: 'mobilenet_v2', hiddenSize: 1280, gridSize: 2, encoderId: ENCODER });
    expect(loaded.config.text.tieWordEmbeddings).toBe(true);
    const tok = backboneTokenizer(join(dir, 'full'));
    expect(tok.vocabSize).toBe(32001);
    const ids = tok.encode('<image> Heat');
    expect(ids.filter((i) => i === COMPACT_IMAGE_TOKEN)).toHaveLength(1);
    const model = new LlavaModel(loaded.config, loaded.weights);
    const input = [model.expandImageTokens([ids])[0]];
    const once = () => {
      const feats = tf.tensor3d(grids().get(2)!, [1, 4, 1280]);
      const imageEmbeds = model.projectVisionFeatures(feats);
      const { hidden, logits } = model.forward({ inputIds: input, imageEmbeds, logits: 'last' });
      expect(logits!.shape).toEqual([1, 32001]);
      tf.dispose([feats, imageEmbeds, hidden, logits!]);
    };
    once();
    const before = tf.memory().numTensors;
    once();
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
    tf.dispose([...loaded.weights.values()]);
  });
});
