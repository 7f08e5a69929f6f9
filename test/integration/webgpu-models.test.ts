// Issue 16: every model trains and scores on webgpu. Per family, one training step (loss, every gradient,
// the weights after our Adam update) and the asynchronous scores of a few histories on the software adapter
// equal the cpu backend's to 1e-4: the ID baselines, the visual-ID ones and the models on a (tiny, random)
// compact backbone, the LLM baselines TALLRec, LLaRA and VIP5 included (their full ranking over the prefix
// tree of titles or IDs, and what LLaRA and VIP5 generate). Skipped, with the reason printed, where no
// software adapter exists (as webgpu-path.test.ts).
import { describe, expect, test } from 'vitest';
import { parseModelConfig } from '../../src/shared/api';
import type { ModelKind } from '../../src/shared/models';
import { MODEL_SPECS } from '../../src/core/models/registry';
import { Adam } from '../../src/core/tensor/adam';
import { initBackend, tf } from '../../src/core/tensor/backend';
import { Rng } from '../../src/core/tensor/rng';
import { webGpuLimits } from '../../src/core/tensor/webgpu-backend';
import { maxAbsDiff } from '../../src/core/tensor/self-test';
import { checkGpuMemory } from '../../src/core/train/gpu-memory';
import type { ItemFeatures, ModelContext, TrainableModel } from '../../src/core/train/model-spec';
import type { LlaraModel } from '../../src/core/models/llara';
import type { Vip5Model } from '../../src/core/models/vip5';
import { trainingMemory } from '../../src/core/models/gpu-memory-estimates';
import { backboneInputs, syntheticData } from '../unit/almostrec-fixture';
import { softwareWebGpu } from './software-webgpu';

const skipReason = await softwareWebGpu('webgpu-models');

const data = syntheticData();

/** Unit features of 12 dims; every third item has no image. */
function features(): ItemFeatures {
  const rng = new Rng(5);
  const dim = 12;
  const values = new Float32Array((data.numItems + 1) * dim);
  const has = new Uint8Array(data.numItems + 1);
  for (let i = 1; i <= data.numItems; i++) {
    if (i % 3 === 0) continue;
    has[i] = 1;
    for (let k = 0; k < dim; k++) values[i * dim + k] = rng.normal() / Math.sqrt(dim);
  }
  return { encoderId: 'synthetic', dim, values, has };
}

const training = { epochs: 1, batchSize: 8, learningRate: 1e-2, seed: 3 };
const lm = { ...training, backboneId: 1, warmupSteps: 0, historyLength: 4 };
const llm = { ...lm, seqRunId: 2 };
/** Tiny configs, one model per family at least (the software adapter runs at ~0.7 GFLOP/s). */
const CASES: [ModelKind, Record<string, number>, 'ids' | 'features' | 'backbone'][] = [
  ['gru4rec', { ...training, maxLen: 8, embeddingSize: 8, hiddenSize: 8 }, 'ids'],
  ['nextitnet', { ...training, maxLen: 8, embeddingSize: 8, numBlocks: 1 }, 'ids'],
  ['bpr', { ...training, embeddingSize: 8 }, 'ids'],
  ['ncf', { ...training, mfEmbeddingSize: 8, mlpEmbeddingSize: 8 }, 'ids'],
  ['sasrec_id_v', { ...training, maxLen: 8, hiddenSize: 8, numBlocks: 1, numHeads: 2 }, 'features'],
  ['youtube_id_v', { ...training, maxLen: 8, embeddingSize: 8, hiddenSize: 8 }, 'features'],
  ['almostrec', { ...llm, samplesPerUser: 1, loraDropout: 0.1 }, 'backbone'],
  ['e4srec', llm, 'backbone'],
  ['tallrec', { ...lm, maxTitleTokens: 3 }, 'backbone'],
  ['llara', { ...llm, candidates: 4, maxTitleTokens: 3, curriculumEpochs: 0 }, 'backbone'],
  ['vip5', lm, 'backbone']
];

/** The LLM baselines score every item over a prefix tree, one prompt (and a read per tree level) per history: two histories suffice. */
const LLM_BASELINES: readonly ModelKind[] = ['tallrec', 'llara', 'vip5'];

/**
 * What a model generates besides its scores, read asynchronously, as numbers: LLaRA's greedy answer among
 * candidates (its tokens and the candidate it names, as its HR@1 and case study read it), VIP5's constrained
 * greedy ID (the item and its log-probability).
 */
const GENERATED: Partial<Record<ModelKind, (model: TrainableModel, history: Int32Array, target: number) => Promise<number[]>>> = {
  llara: async (model, history, target) => {
    const m = model as LlaraModel;
    const a = await m.answerAsync(history, m.evalCandidates(history, target));
    return [a.tokens.length, ...a.tokens, a.matched ?? -1];
  },
  vip5: async (model, history) => {
    const pick = await (model as Vip5Model).decodeGreedyAsync(history);
    return [pick.item, pick.logProb];
  }
};

/** Loss, gradients, weights after one Adam step, then the scores of four histories, on the active backend. */
async function stepAndScores(kind: ModelKind, raw: Record<string, number>, needs: 'ids' | 'features' | 'backbone'): Promise<Float32Array> {
  const spec = MODEL_SPECS[kind as keyof typeof MODEL_SPECS]!;
  const config = parseModelConfig(kind, raw) as never;
  // Built on the active backend, so no tensor of the other run is moved across.
  const backbone = needs === 'backbone' ? backboneInputs() : undefined;
  const ctx: ModelContext = { data, itemFeatures: needs === 'features' ? features() : undefined, backbone };
  const model = spec.build(config, ctx, spec.init(config, ctx, new Rng(4)));
  const adam = new Adam(model.params, { learningRate: 0.01 });
  try {
    model.beginEpoch(new Rng(8), 1);
    const { value, grads } = tf.variableGrads(() => model.stepLoss(0, new Rng(1)), [...model.params.values()]);
    const byName: tf.NamedTensorMap = {};
    for (const [name, v] of model.params) if (grads[v.name]) byName[name] = grads[v.name];
    const parts: Float32Array[] = [(await value.data()) as Float32Array];
    for (const name of Object.keys(byName)) parts.push((await byName[name].data()) as Float32Array);
    adam.apply(model.params, byName);
    for (const v of model.params.values()) parts.push((await v.data()) as Float32Array);
    tf.dispose([value, ...Object.values(grads)]);
    expect(model.scoreBatchAsync, `${kind} reads its scores asynchronously`).toBeDefined();
    const users = data.users.slice(0, LLM_BASELINES.includes(kind) ? 2 : 4);
    const histories = users.map((u) => u.items.subarray(0, 5));
    // The padding column is −Infinity in some models: compared apart, as a flag.
    const scores = Float32Array.from(await model.scoreBatchAsync!(histories), (x) => (x === -Infinity ? -1e9 : x));
    parts.push(scores);
    const generated = GENERATED[kind];
    if (generated) parts.push(Float32Array.from(await generated(model, histories[0], users[0].items[5])));
    return Float32Array.from(parts.flatMap((p) => [...p]));
  } finally {
    adam.dispose();
    model.dispose();
    backbone?.dispose();
  }
}

describe.skipIf(skipReason !== null)('models on the software adapter', () => {
  test.each(CASES)('%s: one training step and its scores equal the cpu backend to 1e-4', async (kind, raw, needs) => {
    process.env.ALMOSTREC_BACKEND = 'cpu';
    await initBackend();
    const cpu = await stepAndScores(kind, raw, needs);
    process.env.ALMOSTREC_BACKEND = 'webgpu';
    expect((await initBackend()).name).toBe('webgpu');
    const gpu = await stepAndScores(kind, raw, needs);
    expect(gpu.length).toBe(cpu.length);
    expect(Number.isFinite(cpu[0]) && cpu[0] > 0).toBe(true);
    expect(maxAbsDiff(gpu, cpu)).toBeLessThan(1e-4);
  });

  test('on webgpu a run over ALMOSTREC_GPU_MEMORY_MB is refused, one within it and the adapter\'s buffer limits is not', async () => {
    process.env.ALMOSTREC_BACKEND = 'webgpu';
    await initBackend();
    const config = parseModelConfig('gru4rec', CASES[0][1]);
    const estimate = () => trainingMemory('gru4rec', config, { data });
    expect(webGpuLimits()!.maxStorageBufferBindingSize).toBeGreaterThan(estimate().largestTensor * 4);
    const saved = process.env.ALMOSTREC_GPU_MEMORY_MB;
    try {
      process.env.ALMOSTREC_GPU_MEMORY_MB = '0.01';
      expect(() => checkGpuMemory('gru4rec run 1', estimate)).toThrow(/^gru4rec run 1 needs an estimated [\d.]+ MiB of GPU memory .* more than ALMOSTREC_GPU_MEMORY_MB allows \(0\.0 MiB\)/);
      delete process.env.ALMOSTREC_GPU_MEMORY_MB;
      expect(() => checkGpuMemory('gru4rec run 1', estimate)).not.toThrow();
    } finally {
      if (saved === undefined) delete process.env.ALMOSTREC_GPU_MEMORY_MB;
      else process.env.ALMOSTREC_GPU_MEMORY_MB = saved;
    }
  });
});
