// `npm run bench -- backbone [--steps N] [--no-pretrain] [--catalog FILE]`: the compact backbone's speed and
// what a real 7B LLaVA would need. Prints one JSON line (last stdout line):
//   forward / forward+backward seconds per step (batch 16 × 64 tokens, stage-2 training: decoder and
//   projector trainable, full 32,001-token softmax), tokens/s, the backend, the wall seconds of pretraining
//   the compact backbone with its defaults on the embedded dataset (poster grids encoded first, timed apart;
//   the three stages' step seconds, last-step losses and the held-out caption loss at the start and after
//   each stage), and the float32 memory of one 7B-shaped LLaMA decoder layer (LLaVA-1.5-7B: d 4096, MLP 11008,
//   32 heads) with the measured forward time of that layer over 64 tokens, so users can judge what their
//   machine runs.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { pretrainDefaults, PRETRAIN_STAGES, type HeldOutReport, type PretrainStage } from '../shared/backbones';
import { Catalog } from '../core/catalog';
import { importDataset, resolveEmbeddedDatasetDir } from '../core/importers';
import { compactConfig, initialWeights, COMPACT_IMAGE_TOKEN } from '../core/backbone/compact';
import type { TextConfig } from '../core/backbone/config';
import { loadCaptions } from '../core/backbone/captions';
import { LlavaModel } from '../core/backbone/llava-model';
import { LlamaDecoder, llamaLinearPaths } from '../core/backbone/llama-decoder';
import { Linears } from '../core/backbone/lora';
import { pretrainCompact, type PretrainParams } from '../core/backbone/pretrain';
import { llamaTokenizer } from '../core/backbone/tokenizer';
import { onSyncReadableBackend } from '../core/tensor/backend';
import { tiedSoftmaxCrossEntropy } from '../core/tensor/ops';
import { Rng } from '../core/tensor/rng';
import { gridEncoderId, loadItemGrids } from '../core/backbone/grid-encoder';
import { median } from './bench-stats';

const BATCH = 16;
const TOKENS = 64;

const log = (msg: string) => process.stderr.write(msg + '\n');

/** Median seconds of `fn` over `steps` runs after one warm-up run. */
async function timeIt(steps: number, fn: () => tf.Tensor | tf.Tensor[]): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i <= steps; i++) {
    const t0 = performance.now();
    const out = fn();
    const list = Array.isArray(out) ? out : [out];
    await Promise.all(list.map((t) => t.data()));
    tf.dispose(list);
    if (i > 0) times.push((performance.now() - t0) / 1000);
  }
  return median(times);
}

async function stepTimes(steps: number): Promise<{ forward: number; forwardBackward: number; parameters: number }> {
  const params = pretrainDefaults() as unknown as PretrainParams;
  const cfg = compactConfig(params, 'bench');
  const weights = initialWeights(cfg, 1);
  const vars = new Map<string, tf.Variable>();
  for (const [name, t] of weights) {
    if (!name.startsWith('text.') && !name.startsWith('projector.')) continue;
    const v = tf.variable(t, true, `bench/${name}`);
    t.dispose();
    weights.set(name, v);
    vars.set(name, v);
  }
  const model = new LlavaModel(cfg, weights);
  const rng = new Rng(5);
  const ids = Int32Array.from({ length: BATCH * TOKENS }, () => 3 + rng.int(31000));
  const input = tf.tensor2d(ids, [BATCH, TOKENS], 'int32');
  const targets = Int32Array.from({ length: BATCH * TOKENS }, () => 3 + rng.int(31000));
  const table = weights.get('text.embed_tokens.weight') as tf.Tensor2D;
  const loss = () => {
    const { hidden } = model.forward({ inputIds: input, training: true, logits: 'none' });
    return tiedSoftmaxCrossEntropy(tf.reshape(hidden, [-1, cfg.text.hiddenSize]) as tf.Tensor2D, table, targets, -1);
  };
  const forward = await timeIt(steps, () => tf.tidy(loss));
  const forwardBackward = await timeIt(steps, () => {
    const { value, grads } = tf.variableGrads(loss, [...vars.values()]);
    return [value, ...Object.values(grads)];
  });
  const parameters = [...weights.values()].reduce((a, t) => a + t.size, 0);
  model.dispose();
  tf.dispose([input, ...weights.values()]);
  return { forward, forwardBackward, parameters };
}

/** LLaVA-1.5-7B's decoder (Vicuna-7B v1.5). */
const LLAMA_7B: TextConfig = {
  vocabSize: 32064,
  hiddenSize: 4096,
  intermediateSize: 11008,
  numLayers: 1,
  numHeads: 32,
  numKvHeads: 32,
  headDim: 128,
  rmsNormEps: 1e-5,
  ropeTheta: 10000,
  maxPositionEmbeddings: 4096,
  tieWordEmbeddings: false,
  bosTokenId: 1,
  eosTokenId: 2,
  padTokenId: 0
};

async function sevenBLayer(): Promise<{ layerMb: number; forwardSec: number | null; error?: string }> {
  const t = LLAMA_7B;
  const d = t.hiddenSize;
  const shapes: [string, number[]][] = [
    ['text.layers.0.input_layernorm.weight', [d]],
    ['text.layers.0.post_attention_layernorm.weight', [d]],
    ['text.layers.0.self_attn.q_proj.weight', [d, d]],
    ['text.layers.0.self_attn.k_proj.weight', [d, d]],
    ['text.layers.0.self_attn.v_proj.weight', [d, d]],
    ['text.layers.0.self_attn.o_proj.weight', [d, d]],
    ['text.layers.0.mlp.gate_proj.weight', [t.intermediateSize, d]],
    ['text.layers.0.mlp.up_proj.weight', [t.intermediateSize, d]],
    ['text.layers.0.mlp.down_proj.weight', [d, t.intermediateSize]],
    ['text.norm.weight', [d]]
  ];
  const layerMb = Math.round((shapes.slice(0, 9).reduce((a, [, s]) => a + s.reduce((x, y) => x * y, 1), 0) * 4) / 2 ** 20);
  const weights = new Map<string, tf.Tensor>();
  let linears: Linears | null = null;
  try {
    for (const [name, shape] of shapes) weights.set(name, name.endsWith('norm.weight') ? tf.ones(shape) : tf.randomNormal(shape, 0, 0.02, 'float32', 1));
    linears = new Linears();
    for (const p of llamaLinearPaths(t)) linears.add(p, weights.get(`${p}.weight`)!);
    const decoder = new LlamaDecoder(t, weights, linears);
    const x = tf.randomNormal([1, TOKENS, d], 0, 1, 'float32', 2);
    const forwardSec = await timeIt(3, () => tf.tidy(() => decoder.forward(x)));
    x.dispose();
    return { layerMb, forwardSec };
  } catch (e) {
    return { layerMb, forwardSec: null, error: e instanceof Error ? e.message : String(e) };
  } finally {
    linears?.dispose();
    tf.dispose([...weights.values()]);
  }
}

interface PretrainFigures {
  gridSeconds: number;
  pretrainSeconds: number;
  finalLoss: number;
  steps: number;
  /** Per stage: its steps' seconds summed and its last step's loss. */
  stages: Partial<Record<PretrainStage, { seconds: number; lastLoss: number }>>;
  heldOut: HeldOutReport | null;
  /** Threads the steps ran on (2: a replica worker computed a shard of every step). */
  threads: number;
}

async function pretrainWall(catalogPath: string | undefined): Promise<PretrainFigures> {
  const workDir = mkdtempSync(join(tmpdir(), 'almostrec-bench-backbone-'));
  const catalog = Catalog.open(catalogPath ? resolve(catalogPath) : join(workDir, 'catalog.db'));
  try {
    const name = 'ml-latest-small';
    let dataset = catalog.findDatasetByName(name);
    if (!dataset) {
      const imported = await importDataset(catalog, { format: 'movielens-latest', path: resolveEmbeddedDatasetDir(), name, options: {} });
      dataset = catalog.findDatasetByName(name)!;
      log(`imported the embedded dataset (${imported.warnings.length} warnings)`);
    }
    const params = pretrainDefaults() as unknown as PretrainParams;
    const t0 = performance.now();
    const captions = loadCaptions(catalog, dataset.id);
    // The grid encoder reads synchronously: on webgpu it runs on a CPU backend (tensor/backend.ts).
    const grids = await onSyncReadableBackend(() =>
      loadItemGrids(
        catalog,
        captions.filter((c) => c.hasImage).map((c) => c.itemId),
        params.gridSize,
        (p) => {
          if (p.done === p.total || p.done % 500 === 0) log(`${p.phase}: ${p.done}/${p.total}`);
        }
      )
    );
    const gridSeconds = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    const stages: PretrainFigures['stages'] = {};
    const result = await pretrainCompact(
      { params, captions, grids, gridEncoderId: gridEncoderId(params.gridSize), tokenizer: llamaTokenizer({ imageTokenId: COMPACT_IMAGE_TOKEN }), outDir: join(workDir, 'backbone'), statePath: join(workDir, 'state.safetensors') },
      {
        onLog: log,
        onStep: (p, total) => {
          const s = (stages[p.stage] ??= { seconds: 0, lastLoss: NaN });
          s.seconds += p.seconds;
          s.lastLoss = p.loss;
          if (p.step % 25 === 0 || p.step === total) log(`pretrain step ${p.step}/${total} stage ${p.stage} loss ${p.loss.toFixed(3)} (${p.seconds.toFixed(2)} s)`);
        }
      }
    );
    return { gridSeconds, pretrainSeconds: (performance.now() - t1) / 1000, finalLoss: result.finalLoss, steps: result.steps, stages, heldOut: result.heldOut, threads: result.threads };
  } finally {
    catalog.close();
    rmSync(workDir, { recursive: true, force: true });
  }
}

export async function benchBackbone(backend: string, opts: { steps: number; pretrain: boolean; catalog?: string }): Promise<string> {
  const steps = await stepTimes(opts.steps);
  log(`compact backbone (${steps.parameters.toLocaleString('en-US')} parameters): forward ${steps.forward.toFixed(3)} s, forward+backward ${steps.forwardBackward.toFixed(3)} s per step`);
  const layer = await sevenBLayer();
  log(`7B-shaped decoder layer: ${layer.layerMb} MB fp32, forward over ${TOKENS} tokens ${layer.forwardSec === null ? `failed: ${layer.error}` : `${layer.forwardSec.toFixed(3)} s`}`);
  const pre = opts.pretrain ? await pretrainWall(opts.catalog) : null;
  const r3 = (x: number) => Math.round(x * 1000) / 1000;
  const r3n = (x: number | null) => (x === null ? null : r3(x));
  const stageKey = (s: 'start' | PretrainStage) => (s === 'start' ? 'start' : `stage${s}`);
  return JSON.stringify({
    model: 'compact-backbone',
    backend,
    batch: BATCH,
    tokens: TOKENS,
    parameters: steps.parameters,
    forward_sec_per_step: r3(steps.forward),
    forward_backward_sec_per_step: r3(steps.forwardBackward),
    tokens_per_sec: Math.round((BATCH * TOKENS) / steps.forwardBackward),
    pretrain_wall_sec: pre ? Math.round(pre.pretrainSeconds) : null,
    pretrain_grid_encode_sec: pre ? Math.round(pre.gridSeconds) : null,
    pretrain_steps: pre?.steps ?? null,
    pretrain_threads: pre?.threads ?? null,
    pretrain_final_loss: pre ? r3(pre.finalLoss) : null,
    pretrain_stages: pre
      ? Object.fromEntries(PRETRAIN_STAGES.filter((s) => pre.stages[s]).map((s) => [stageKey(s), { step_sec: Math.round(pre.stages[s]!.seconds), last_loss: r3(pre.stages[s]!.lastLoss) }]))
      : null,
    // Mean next-token loss (nats/token) on the held-out captions: text only (all), and the poster items with
    // and without their image tokens (same caption tokens).
    pretrain_held_out: pre?.heldOut
      ? {
          items: pre.heldOut.items,
          posters: pre.heldOut.posters,
          ...Object.fromEntries(pre.heldOut.points.map((p) => [stageKey(p.after), { text: r3(p.text), with_poster: r3n(p.withPoster), without_poster: r3n(p.withoutPoster) }]))
        }
      : null,
    layer_7b_fp32_mb: layer.layerMb,
    layer_7b_forward_sec_64_tokens: layer.forwardSec === null ? null : r3(layer.forwardSec),
    model_7b_fp32_gb: Math.round(((layer.layerMb * 32 + (2 * 32064 * 4096 * 4) / 2 ** 20) / 1024) * 10) / 10
  });
}
