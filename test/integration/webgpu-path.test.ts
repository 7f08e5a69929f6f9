// Issue 16, item 3: the WebGPU path cannot rot. On the software adapter (Dawn's OpenGL backend over Mesa
// llvmpipe) the backend passes its self-test through initBackend, one SASRec training step (loss,
// gradients, then our Adam update) equals the cpu backend's, a tiny compact backbone pretrains through every
// stage like on wasm, tfjs-webgpu's AddN is split so that it sums every input, and the built CLI trains and
// evaluates SASRec on it like on cpu, recording the adapter in the run, and pretrains a backbone. Skipped,
// with the reason printed, where no software adapter exists (no Mesa EGL/GL libraries: .ci/run installs them).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { createCliCatalog, json, root } from './cli-catalog';
import { softwareWebGpu } from './software-webgpu';
import { parseModelConfig } from '../../src/shared/api';
import { COMPACT_IMAGE_TOKEN } from '../../src/core/backbone/compact';
import { pretrainCompact, type PretrainResult } from '../../src/core/backbone/pretrain';
import { llamaTokenizer } from '../../src/core/backbone/tokenizer';
import type { PretrainPoint } from '../../src/shared/backbones';
import type { SequenceData } from '../../src/core/data/types';
import { sasrecSpec } from '../../src/core/models/sasrec';
import { Adam } from '../../src/core/tensor/adam';
import { initBackend, tf } from '../../src/core/tensor/backend';
import { Rng } from '../../src/core/tensor/rng';
import { maxAbsDiff } from '../../src/core/tensor/self-test';
import type { ModelSpec } from '../../src/core/train/model-spec';
import { tinyPretrainParams } from '../setup/tiny-backbone';

const skipReason = await softwareWebGpu('webgpu-path');

/** Users walking through items in order, of mixed lengths (two length groups). */
function sequences(numUsers = 12, numItems = 20, seed = 5): SequenceData {
  const rng = new Rng(seed);
  const users = Array.from({ length: numUsers }, (_, u) => {
    const len = u % 2 === 0 ? 4 + rng.int(3) : 12 + rng.int(4);
    const start = rng.int(numItems);
    const items = Int32Array.from({ length: len }, (_, i) => ((start + i) % numItems) + 1);
    return { userId: u + 1, items, timestamps: Float64Array.from(items, (_, i) => i) };
  });
  return { datasetId: 1, numItems, itemIds: Int32Array.from({ length: numItems + 1 }, (_, i) => i), users };
}

/** Loss, every gradient and every weight after one Adam step of SASRec, on the active backend. */
async function sasrecStep(): Promise<Float32Array> {
  const ctx = { data: sequences() };
  const config = parseModelConfig('sasrec', { batchSize: 12, maxLen: 16, hiddenSize: 16, numBlocks: 1, numHeads: 2, dropout: 0 }) as never;
  const spec = sasrecSpec as unknown as ModelSpec;
  const model = spec.build(config, ctx, spec.init(config, ctx, new Rng(4)));
  model.beginEpoch(new Rng(8));
  const adam = new Adam(model.params, { learningRate: 0.01 });
  const vars = [...model.params.values()];
  const { value, grads } = tf.variableGrads(() => model.stepLoss(0, new Rng(1)), vars);
  const byName: tf.NamedTensorMap = {};
  for (const [name, v] of model.params) byName[name] = grads[v.name];
  const parts: Float32Array[] = [(await value.data()) as Float32Array];
  for (const name of model.params.keys()) parts.push((await byName[name].data()) as Float32Array);
  adam.apply(model.params, byName);
  for (const v of model.params.values()) parts.push((await v.data()) as Float32Array);
  tf.dispose([value, ...Object.values(grads)]);
  adam.dispose();
  model.dispose();
  return Float32Array.from(parts.flatMap((p) => [...p]));
}

/** A tiny compact backbone: one layer, 32 wide, every stage, a mid-stage checkpoint and held-out captions. */
const PRETRAIN = tinyPretrainParams({ maxTokens: 20, batchSize: 3, stage0Steps: 1, stage1Steps: 1, stage2Steps: 2, checkpointEvery: 1, heldOutPercent: 25 });
const CAPTIONS = [
  { itemId: 1, caption: 'Toy Story (1995). Toys come to life.', hasImage: true },
  { itemId: 2, caption: 'Heat (1995). A thief and a detective.', hasImage: true },
  { itemId: 3, caption: 'Casino (1995). Las Vegas in the seventies.', hasImage: false },
  { itemId: 4, caption: 'Babe (1995). A pig who wants to herd sheep.', hasImage: true },
  { itemId: 5, caption: 'Fargo (1996). A kidnapping in the snow.', hasImage: true },
  { itemId: 6, caption: 'Clueless (1995). A teenager plays matchmaker.', hasImage: false }
];

/** Pretrains the tiny backbone on the active backend from synthetic poster grids (2 × 2 × 1280). */
async function pretrainTiny(dir: string, name: string): Promise<PretrainResult & { history: PretrainPoint[] }> {
  const rng = new Rng(3);
  const grids = new Map([1, 2, 4, 5].map((id) => [id, Float32Array.from({ length: 4 * 1280 }, () => Math.abs(rng.normal()))]));
  const history: PretrainPoint[] = [];
  const result = await pretrainCompact(
    { params: PRETRAIN, captions: CAPTIONS, grids, gridEncoderId: 'test-grid', tokenizer: llamaTokenizer({ imageTokenId: COMPACT_IMAGE_TOKEN }), outDir: join(dir, name), statePath: join(dir, `${name}.state`) },
    { onStep: (p) => history.push(p) }
  );
  return { ...result, history };
}

describe.skipIf(skipReason !== null)('WebGPU on the software adapter', () => {
  let cpuStep: Float32Array;
  beforeAll(async () => {
    process.env.ALMOSTREC_BACKEND = 'cpu';
    await initBackend();
    cpuStep = await sasrecStep();
  });

  test('ALMOSTREC_BACKEND=webgpu selects it after its self-test and names the adapter', async () => {
    process.env.ALMOSTREC_BACKEND = 'webgpu';
    const info = await initBackend();
    expect(info.name).toBe('webgpu');
    expect(info.fallbacks).toBeUndefined();
    expect(info.device).toMatch(/^GPU \(WebGPU: .*llvmpipe.*; memory not exposed by WebGPU; max buffer [\d.]+ GiB\)$/);
    expect(tf.getBackend()).toBe('webgpu');
  });

  test('one SASRec training step (loss, gradients, Adam update) equals the cpu backend to 1e-4', async () => {
    process.env.ALMOSTREC_BACKEND = 'webgpu';
    await initBackend();
    const gpuStep = await sasrecStep();
    expect(gpuStep.length).toBe(cpuStep.length);
    expect(Number.isFinite(cpuStep[0]) && cpuStep[0] > 0).toBe(true);
    expect(maxAbsDiff(gpuStep, cpuStep)).toBeLessThan(1e-4);
  });

  test('AddN of more tensors than a shader binds at once sums them all (tfjs-webgpu alone sums only some)', async () => {
    process.env.ALMOSTREC_BACKEND = 'webgpu';
    await initBackend();
    const xs = Array.from({ length: 12 }, (_, i) => tf.fill([3], i + 1));
    const sum = tf.addN(xs);
    expect(Array.from(await sum.data())).toEqual([78, 78, 78]);
    tf.dispose([sum, ...xs]);
  });

  // Against wasm, not cpu: the cpu backend's UnsortedSegmentSum (the embedding table's gradient) loops once per
  // vocabulary row, 25 s a step at 32,001 tokens; wasm is held to the cpu backend to 1e-4 by its self-test.
  test('pretraining a tiny compact backbone (stages 0–2, checkpoints, held-out loss, save) matches wasm to 1e-4', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'almostrec-webgpu-pretrain-'));
    try {
      process.env.ALMOSTREC_BACKEND = 'wasm';
      await initBackend();
      const ref = await pretrainTiny(dir, 'wasm');
      process.env.ALMOSTREC_BACKEND = 'webgpu';
      await initBackend();
      const gpu = await pretrainTiny(dir, 'gpu');
      expect(gpu.history.map((p) => p.stage)).toEqual([0, 1, 2, 2]);
      expect(gpu.history.map((p) => p.stage)).toEqual(ref.history.map((p) => p.stage));
      gpu.history.forEach((p, i) => expect(Math.abs(p.loss - ref.history[i].loss)).toBeLessThan(1e-4));
      expect(Number.isFinite(ref.finalLoss) && ref.finalLoss > 0).toBe(true);
      const held = (r: PretrainResult) => r.heldOut!.points.flatMap((p) => [p.text, p.withPoster ?? NaN, p.withoutPoster ?? NaN]);
      expect(held(gpu)).toHaveLength(held(ref).length);
      held(gpu).forEach((x, i) => expect(Math.abs(x - held(ref)[i])).toBeLessThan(1e-4));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(skipReason !== null)('the built CLI on the software adapter', () => {
  test('almostrec backends offers webgpu; train sasrec on it records the adapter and matches cpu', () => {
    const catalog = createCliCatalog('almostrec-webgpu-', 120_000);
    try {
      process.env.ALMOSTREC_BACKEND = 'webgpu';
      const backends = catalog.cli('backends', '--json');
      expect(backends.code, backends.stderr).toBe(0);
      const rows = backends.lines.map((l) => json(l));
      expect(rows.find((r) => r.backend === 'webgpu')).toMatchObject({ reason: null, info: { name: 'webgpu' } });
      expect(rows.find((r) => r.backend === 'cpu')).toMatchObject({ reason: null });
      expect(rows.at(-1)).toMatchObject({ chosen: { name: 'webgpu' } });

      const imp = catalog.cli('import', 'movielens-latest', join(root, 'test', 'fixtures', 'importers', 'ml-latest'), '--name', 'tiny', '--json');
      expect(imp.code, imp.stderr).toBe(0);
      const train = (backend: string) => {
        process.env.ALMOSTREC_BACKEND = backend;
        const r = catalog.cli('train', 'sasrec', '--dataset', 'tiny', '--epochs', '2', '--max-len', '10', '--seed', '7', '--json');
        expect(r.code, r.stderr).toBe(0);
        return json(r.lines[0]) as { status: string; backend: { name: string; device: string }; history: { loss: number }[]; valid: { ndcg10: number } };
      };
      const gpu = train('webgpu');
      const cpu = train('cpu');
      expect(gpu.status).toBe('succeeded');
      expect(gpu.backend.name).toBe('webgpu');
      expect(gpu.backend.device).toMatch(/^GPU \(WebGPU: .*Mesa/);
      expect(cpu.backend.name).toBe('cpu');
      expect(gpu.history).toHaveLength(2);
      gpu.history.forEach((e, i) => expect(Math.abs(e.loss - cpu.history[i].loss)).toBeLessThan(1e-4));
      expect(gpu.valid.ndcg10).toBeCloseTo(cpu.valid.ndcg10, 4);
    } finally {
      catalog.remove();
    }
  });
  test('almostrec pretrain on webgpu: posters encoded on a CPU backend, the decoder pretrained on the adapter', () => {
    const catalog = createCliCatalog('almostrec-webgpu-pretrain-', 120_000);
    try {
      const imp = catalog.cli('import', 'movielens-latest', join(root, 'test', 'fixtures', 'importers', 'ml-latest'), '--name', 'tiny', '--json');
      expect(imp.code, imp.stderr).toBe(0);
      process.env.ALMOSTREC_BACKEND = 'webgpu';
      const tiny = ['hiddenSize=32', 'numLayers=1', 'numHeads=2', 'numKvHeads=1', 'intermediateSize=64', 'maxTokens=24', 'batchSize=2', 'stage0Steps=1', 'stage1Steps=1', 'stage2Steps=1', 'heldOutPercent=0'];
      const pre = catalog.cli('pretrain', '--dataset', 'tiny', ...tiny.flatMap((p) => ['--param', p]), '--json');
      expect(pre.code, pre.stderr).toBe(0);
      expect(json(pre.lines[0])).toMatchObject({ status: 'succeeded' });
      expect(pre.stderr).toMatch(/backend webgpu/);
    } finally {
      catalog.remove();
    }
  }, 240_000);
});
