// Pretraining the compact backbone (the language stage 0, then LLaVA's stages 1 and 2) on a tiny config: what
// each stage trains, that the loss falls, that a cancelled-then-resumed run ends bit-for-bit where an
// uninterrupted one does (also in the middle of stage 0, and from a state file written before stage 0
// existed), that held-out captions never train and are measured per stage, and that the saved folder is a
// llava-hf checkpoint our loader, tokenizer lookup and model read back.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { initBackend, tf } from '../../src/core/tensor/backend';
import { CancelledError } from '../../src/core/progress';
import { pretrainCompact, type PretrainParams } from '../../src/core/backbone/pretrain';
import { compactConfig, initialWeights, COMPACT_IMAGE_TOKEN } from '../../src/core/backbone/compact';
import { loadHfCheckpoint } from '../../src/core/backbone/hf-checkpoint';
import { backboneTokenizer } from '../../src/core/backbone/backbone-tokenizer';
import { llamaTokenizer } from '../../src/core/backbone/tokenizer';
import { LlavaModel } from '../../src/core/backbone/llava-model';
import { heldOutItems, makeBatch } from '../../src/core/backbone/pretrain-data';
import { learningRateAt } from '../../src/core/tensor/lr-schedule';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../../src/core/tensor/safetensors';
import { pretrainParamsOf, type PretrainStage } from '../../src/shared/backbones';
import { tinyPretrainParams } from '../setup/tiny-backbone';
import { POSTERS, PRETRAIN_CAPTIONS as captions, posterGrids as grids } from '../setup/pretrain-captions';

const ENCODER = 'test-grid';
const tokenizer = llamaTokenizer({ imageTokenId: COMPACT_IMAGE_TOKEN });

const base = tinyPretrainParams({ maxTokens: 24, batchSize: 4, stage0Steps: 2, stage1Steps: 2, stage2Steps: 3, checkpointEvery: 2, heldOutPercent: 25 });

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

describe('held-out split', () => {
  test('a fixed share of the items, whatever their order; at least a few dozen on a real dataset; none at 0%', () => {
    const ids = Array.from({ length: 3628 }, (_, i) => i + 1);
    const held = heldOutItems(ids, 5);
    expect(held.size).toBe(181);
    expect(heldOutItems([...ids].reverse(), 5)).toEqual(held);
    expect(heldOutItems(ids.slice(0, 100), 5).size).toBe(10); // min(32, n/10) when 5% is fewer
    expect(heldOutItems(ids.slice(0, 300), 5).size).toBe(30);
    expect(heldOutItems(ids, 0).size).toBe(0);
    expect(heldOutItems([1], 50).size).toBe(0); // never every item
    expect(heldOutItems(captions.map((c) => c.itemId), base.heldOutPercent).size).toBe(2);
  });
});

describe('pretrainCompact', () => {
  const text = (name: string) => name.startsWith('text.');

  test('stage 0 trains the decoder only: the projector is bit-identical after it', async () => {
    const cfg = compactConfig(base, ENCODER);
    const init = initialWeights(cfg, base.seed);
    await run('s0', { ...base, stage1Steps: 0, stage2Steps: 0 });
    const after0 = values(join(dir, 's0'));
    for (const [name, t] of init) {
      const d = maxDiff(t.dataSync() as Float32Array, after0.get(name)!);
      if (text(name)) expect(d, name).toBeGreaterThan(0);
      else expect(d, name).toBe(0);
    }
    tf.dispose([...init.values()]);
  });

  test('stage 1 trains the projector only; stage 2 the decoder too', async () => {
    const cfg = compactConfig(base, ENCODER);
    const init = initialWeights(cfg, base.seed);
    await run('s1', { ...base, stage0Steps: 0, stage2Steps: 0 });
    const after1 = values(join(dir, 's1'));
    for (const [name, t] of init) {
      const d = maxDiff(t.dataSync() as Float32Array, after1.get(name)!);
      if (name.startsWith('projector.')) expect(d, name).toBeGreaterThan(0);
      else expect(d, name).toBe(0);
    }
    await run('s12', { ...base, stage0Steps: 0 });
    const after2 = values(join(dir, 's12'));
    expect(maxDiff(after1.get('text.layers.0.mlp.up_proj.weight')!, after2.get('text.layers.0.mlp.up_proj.weight')!)).toBeGreaterThan(0);
    expect(maxDiff(after1.get('text.embed_tokens.weight')!, after2.get('text.embed_tokens.weight')!)).toBeGreaterThan(0);
    tf.dispose([...init.values()]);
  });

  test('the caption loss falls', async () => {
    const losses: number[] = [];
    await run('loss', { ...base, stage0Steps: 0, stage1Steps: 0, stage2Steps: 30, stage2LearningRate: 3e-2 }, { onStep: (p) => losses.push(p.loss) });
    expect(losses[0]).toBeGreaterThan(9.5); // ≈ ln 32001 from the N(0, 0.02) start
    expect(Math.min(...losses.slice(-5))).toBeLessThan(losses[0] - 3);
  });

  test('the text stage lowers the training loss and the held-out captions’ loss', async () => {
    const losses: number[] = [];
    const stages = new Set<PretrainStage>();
    const result = await run('text', { ...base, stage0Steps: 30, stage1Steps: 0, stage2Steps: 0, stage0LearningRate: 3e-2 }, {
      onStep: (p) => {
        losses.push(p.loss);
        stages.add(p.stage);
      }
    });
    expect([...stages]).toEqual([0]);
    expect(losses[0]).toBeGreaterThan(9.5);
    expect(Math.min(...losses.slice(-5))).toBeLessThan(losses[0] - 3);
    const h = result.heldOut!;
    expect(h).toMatchObject({ items: 2 });
    expect(h.points.map((p) => [p.after, p.step])).toEqual([['start', 0], [0, 30]]);
    expect(h.points[0].text).toBeGreaterThan(9.5);
    expect(h.points[1].text).toBeLessThan(h.points[0].text - 1);
    expect(h.textTokens).toBeGreaterThan(20);
  });

  test('held-out items never train; their loss is measured at the start and after each stage, and saved', async () => {
    const held = heldOutItems(
      captions.map((c) => c.itemId),
      base.heldOutPercent
    );
    const seen = new Map<PretrainStage, Set<number>>();
    const logs: string[] = [];
    const reports: number[] = [];
    const result = await run('held', base, {
      onBatch: (stage, ids) => {
        const s = seen.get(stage) ?? new Set<number>();
        ids.forEach((id) => s.add(id));
        seen.set(stage, s);
      },
      onLog: (m) => logs.push(m),
      onHeldOut: (r) => reports.push(r.points.length)
    });
    expect([...seen.keys()]).toEqual([0, 1, 2]);
    for (const [stage, ids] of seen) for (const id of ids) expect(held.has(id), `stage ${stage} trained held-out item ${id}`).toBe(false);
    const trained = new Set([...seen.values()].flatMap((s) => [...s]));
    expect(trained.size).toBe(captions.length - held.size);
    const h = result.heldOut!;
    expect(h.items).toBe(2);
    expect(h.posters).toBe(captions.filter((c) => held.has(c.itemId) && POSTERS.includes(c.itemId)).length);
    expect(h.points.map((p) => [p.after, p.step])).toEqual([['start', 0], [0, 2], [1, 4], [2, 7]]);
    for (const p of h.points) {
      expect(Number.isFinite(p.text)).toBe(true);
      expect(p.withPoster === null).toBe(h.posters === 0);
    }
    expect(reports).toEqual([1, 2, 3, 4]);
    expect(logs.filter((m) => m.startsWith('held-out caption loss'))).toHaveLength(4);
    const saved = JSON.parse(readFileSync(join(dir, 'held', 'almostrec_pretraining.json'), 'utf8')) as { heldOut: unknown; heldOutItemIds: number[] };
    expect(saved.heldOut).toEqual(h);
    expect(saved.heldOutItemIds.sort()).toEqual([...held].sort());
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
    expect(steps).toEqual([4, 5, 6, 7]);
    expect(resumed.finalLoss).toBeCloseTo(full.finalLoss, 5);
    expect(resumed.heldOut).toEqual(full.heldOut);
    const a = values(join(dir, 'full'));
    const b = values(join(dir, 'cut'));
    for (const [name, v] of a) expect(maxDiff(v, b.get(name)!), name).toBeLessThan(1e-6);
  });

  test('a resume in the middle of the text stage gives the same bits as an uninterrupted run', async () => {
    const params = { ...base, stage0Steps: 5 };
    const full = await run('full0', params);
    const signal = { aborted: false };
    await expect(
      run('cut0', params, {
        signal,
        onStep: (p) => {
          if (p.step === 3) signal.aborted = true;
        }
      })
    ).rejects.toBeInstanceOf(CancelledError);
    let resumedAt = -1;
    const steps: { step: number; stage: number }[] = [];
    const resumed = await run('cut0', params, { resume: true, onResume: (s) => (resumedAt = s), onStep: (p) => steps.push({ step: p.step, stage: p.stage }) });
    expect(resumedAt).toBe(3);
    expect(steps.map((p) => p.step)).toEqual([4, 5, 6, 7, 8, 9, 10]);
    expect(steps.map((p) => p.stage)).toEqual([0, 0, 1, 1, 2, 2, 2]);
    expect(resumed.heldOut).toEqual(full.heldOut);
    const a = values(join(dir, 'full0'));
    const b = values(join(dir, 'cut0'));
    for (const [name, v] of a) expect(maxDiff(v, b.get(name)!), name).toBe(0);
  });

  test('a state file written before stage 0 existed resumes as it was configured, and refuses a stage 0', async () => {
    // What a backbone created before stage 0 runs: no stage 0, no held-out split.
    const old = { ...base, stage0Steps: 0, heldOutPercent: 0 };
    const full = await run('oldfull', old);
    expect(full.heldOut).toBeNull();
    const signal = { aborted: false };
    await expect(
      run('old', old, {
        signal,
        onStep: (p) => {
          if (p.step === 3) signal.aborted = true;
        }
      })
    ).rejects.toBeInstanceOf(CancelledError);
    // Rewrite the state as the earlier format wrote it: format /1, parameters without the new keys.
    const statePath = join(dir, 'old.state.safetensors');
    const file = readSafetensors(statePath);
    const tensors: Record<string, TensorToWrite> = {};
    for (const [k, e] of file.tensors) tensors[k] = { dtype: 'F32', shape: e.shape, data: e.data };
    const { stage0Steps: _s, stage0LearningRate: _l, heldOutPercent: _h, ...oldParams } = old;
    const { heldOut: _heldOut, ...meta } = file.metadata;
    writeSafetensors(statePath, tensors, { ...meta, format: 'almostrec-pretrain-state/1', params: JSON.stringify(oldParams) });
    await expect(run('old', base, { resume: true })).rejects.toThrow(/saved before the language stage \(stage 0\)/);
    const recorded = pretrainParamsOf(oldParams as unknown as Record<string, number>) as unknown as PretrainParams;
    expect(recorded.stage0Steps).toBe(0);
    const steps: number[] = [];
    await run('old', recorded, { resume: true, onStep: (p) => steps.push(p.step) });
    expect(steps).toEqual([4, 5]);
    const a = values(join(dir, 'oldfull'));
    const b = values(join(dir, 'old'));
    for (const [name, v] of a) expect(maxDiff(v, b.get(name)!), name).toBe(0);
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
