// Pretraining the compact backbone on a catalog's own items, following LLaVA's two stages:
//   stage 1 (feature alignment): only the projector trains, on  <s> <image>×g² caption </s>, the decoder frozen;
//   stage 2 (end-to-end): projector and the whole decoder train on the same captions, items without a poster
//   as text only.
// Next-token cross-entropy over the full 32,001-token vocabulary on the caption tokens. Adam with linear
// warm-up and cosine decay per stage. Every `checkpointEvery` steps (and on cancel) the weights, Adam state
// and data position go to a state file, so a resumed job continues exactly where it stopped; the finished
// backbone is saved as a llava-hf checkpoint folder that hf-checkpoint.ts reads back.
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { PretrainPoint } from '../../shared/backbones';
import { CancelledError, type CancelSignal } from '../progress';
import { tiedSoftmaxCrossEntropy } from '../tensor/ops';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../tensor/safetensors';
import { Adam } from '../tensor/adam';
import { compactConfig, initialWeights, type CompactShape } from './compact';
import type { LlavaConfig } from './config';
import { saveHfCheckpoint } from './hf-checkpoint';
import { LlavaModel } from './llava-model';
import { learningRateAt, makeBatch, SampleOrder, type CaptionSample, type SequenceSpec } from './pretrain-data';
import type { TextTokenizer } from './tokenizer';
import { expectedTensors } from './weight-names';

export interface PretrainParams extends CompactShape {
  batchSize: number;
  stage1Steps: number;
  stage2Steps: number;
  stage1LearningRate: number;
  stage2LearningRate: number;
  warmupSteps: number;
  checkpointEvery: number;
  seed: number;
}

export interface PretrainInput {
  params: PretrainParams;
  /** Caption of every item to pretrain on. */
  captions: { itemId: number; caption: string; hasImage: boolean }[];
  /** The frozen vision tower's output per item with a poster: [g² × 1280]. */
  grids: Map<number, Float32Array>;
  gridEncoderId: string;
  tokenizer: TextTokenizer;
  /** The finished llava-hf folder. */
  outDir: string;
  /** Resumable state (deleted once the backbone is saved). */
  statePath: string;
}

export interface PretrainHooks {
  signal?: CancelSignal;
  /** Called after every step. */
  onStep?: (point: PretrainPoint, totalSteps: number) => void;
  onLog?: (message: string) => void;
  /** Resume from statePath when it exists. */
  resume?: boolean;
  /** Called once when resuming, with the global step the state was saved at (later history is redone). */
  onResume?: (step: number) => void;
  /** Called after each state save (so callers can persist what they buffered up to it). */
  onCheckpoint?: () => void;
}

export interface PretrainResult {
  config: LlavaConfig;
  steps: number;
  finalLoss: number;
  seconds: number;
  parameters: number;
}

const STATE_FORMAT = 'almostrec-pretrain-state/1';

interface Position {
  stage: 1 | 2;
  /** Steps done in this stage. */
  step: number;
  pass: number;
  pos: number;
}

function trainableNames(cfg: LlavaConfig, stage: 1 | 2): string[] {
  return [...expectedTensors(cfg).keys()].filter((n) => n.startsWith('projector.') || (stage === 2 && n.startsWith('text.')));
}

function saveState(path: string, weights: Map<string, tf.Tensor>, adam: Adam, at: Position, params: PretrainParams, history: PretrainPoint[]): void {
  const tensors: Record<string, TensorToWrite> = {};
  const put = (prefix: string, m: Map<string, tf.Tensor>) => {
    for (const [name, t] of m) tensors[prefix + name] = { dtype: 'F32', shape: t.shape, data: t.dataSync() as Float32Array };
  };
  put('w.', weights);
  put('m.', adam.m);
  put('v.', adam.v);
  mkdirSync(dirname(path), { recursive: true });
  writeSafetensors(path, tensors, {
    format: STATE_FORMAT,
    params: JSON.stringify(params),
    position: JSON.stringify(at),
    adamStep: String(adam.step),
    history: JSON.stringify(history)
  });
}

interface LoadedState {
  weights: Map<string, Float32Array>;
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
  at: Position;
  adamStep: number;
  history: PretrainPoint[];
}

function loadState(path: string, params: PretrainParams, cfg: LlavaConfig): LoadedState {
  const file = readSafetensors(path);
  const meta = file.metadata;
  if (meta.format !== STATE_FORMAT) throw new Error(`${path}: not a pretraining state file (format ${JSON.stringify(meta.format)})`);
  if (meta.params !== JSON.stringify(params)) throw new Error(`${path}: saved with other pretraining parameters; start a new backbone instead of resuming`);
  const weights = new Map<string, Float32Array>();
  const m = new Map<string, Float32Array>();
  const v = new Map<string, Float32Array>();
  for (const [key, entry] of file.tensors) {
    const dot = key.indexOf('.');
    const target = { w: weights, m, v }[key.slice(0, dot)];
    if (!target) throw new Error(`${path}: unexpected tensor ${key}`);
    target.set(key.slice(dot + 1), entry.data as Float32Array);
  }
  for (const [name, shape] of expectedTensors(cfg)) {
    const w = weights.get(name);
    if (!w || w.length !== shape.reduce((a, b) => a * b, 1)) throw new Error(`${path}: weight ${name} is missing or has the wrong size`);
  }
  const at = JSON.parse(meta.position ?? 'null') as Position | null;
  if (!at || (at.stage !== 1 && at.stage !== 2)) throw new Error(`${path}: bad position`);
  return { weights, m, v, at, adamStep: Number(meta.adamStep), history: JSON.parse(meta.history ?? '[]') as PretrainPoint[] };
}

/** Pretrains (or resumes) the compact backbone; returns when it is saved to outDir. */
export async function pretrainCompact(input: PretrainInput, hooks: PretrainHooks = {}): Promise<PretrainResult> {
  const { params, tokenizer } = input;
  const cfg = compactConfig(params, input.gridEncoderId);
  if (tokenizer.vocabSize !== cfg.text.vocabSize) throw new Error(`tokenizer ${tokenizer.id} has ${tokenizer.vocabSize} tokens, the compact backbone ${cfg.text.vocabSize}`);
  const imageTokens = params.gridSize * params.gridSize;
  const spec: SequenceSpec = {
    bosId: tokenizer.bosId,
    eosId: tokenizer.eosId,
    padId: tokenizer.padId,
    imageTokenId: cfg.imageTokenIndex,
    imageTokens,
    maxTokens: params.maxTokens
  };
  const samples: CaptionSample[] = input.captions
    .map((c) => ({ itemId: c.itemId, tokens: tokenizer.encode(c.caption, { addBos: false }), hasImage: c.hasImage && input.grids.has(c.itemId) }))
    .filter((s) => s.tokens.length > 0);
  const stageSamples = { 1: samples.filter((s) => s.hasImage), 2: samples };
  if (params.stage1Steps > 0 && stageSamples[1].length === 0) throw new Error('stage 1 needs items with a poster; this dataset has none (set stage 1 steps to 0)');
  if (stageSamples[2].length === 0) throw new Error('no item has a caption to pretrain on');
  hooks.onLog?.(`pretraining on ${samples.length} captions (${stageSamples[1].length} with a poster), ${imageTokens} image tokens per poster`);

  const resumed = hooks.resume && existsSync(input.statePath) ? loadState(input.statePath, params, cfg) : null;
  const weights = new Map<string, tf.Tensor>();
  if (resumed) {
    for (const [name, shape] of expectedTensors(cfg)) weights.set(name, tf.tensor(resumed.weights.get(name)!, shape));
    const globalStep = (resumed.at.stage === 2 ? params.stage1Steps : 0) + resumed.at.step;
    resumed.history = resumed.history.filter((p) => p.step <= globalStep);
    hooks.onResume?.(globalStep);
    hooks.onLog?.(`resuming stage ${resumed.at.stage} at step ${resumed.at.step}`);
  } else {
    for (const [name, t] of initialWeights(cfg, params.seed)) weights.set(name, t);
  }
  const history: PretrainPoint[] = resumed ? resumed.history : [];
  const totalSteps = params.stage1Steps + params.stage2Steps;
  const started = performance.now();
  let lastLoss = NaN;

  for (const stage of [1, 2] as const) {
    const stageSteps = stage === 1 ? params.stage1Steps : params.stage2Steps;
    if (resumed && resumed.at.stage > stage) continue;
    const startAt = resumed && resumed.at.stage === stage ? resumed.at : { stage, step: 0, pass: 0, pos: 0 };
    if (startAt.step >= stageSteps) continue;
    // This stage's trainables become variables; the rest stay plain (frozen) tensors.
    const names = trainableNames(cfg, stage);
    const vars = new Map<string, tf.Variable>();
    for (const name of names) {
      const t = weights.get(name)!;
      const v = tf.variable(t, true, `pretrain/${name}`);
      t.dispose();
      weights.set(name, v);
      vars.set(name, v);
    }
    const peak = stage === 1 ? params.stage1LearningRate : params.stage2LearningRate;
    const adam = new Adam(vars, { learningRate: peak, beta2: 0.999 });
    if (resumed && resumed.at.stage === stage) adam.load(resumed.adamStep, resumed.m, resumed.v);
    const order = new SampleOrder(stageSamples[stage].length, params.seed + stage, startAt.pass, startAt.pos);
    const model = new LlavaModel(cfg, weights);
    const embedTable = weights.get('text.embed_tokens.weight')!;
    const doneBefore = stage === 2 ? params.stage1Steps : 0;
    const checkpoint = (step: number) => {
      saveState(input.statePath, weights, adam, { stage, step, pass: order.pass, pos: order.pos }, params, history);
      hooks.onCheckpoint?.();
    };
    try {
      for (let step = startAt.step; step < stageSteps; step++) {
        if (hooks.signal?.aborted) {
          checkpoint(step);
          throw new CancelledError();
        }
        const t0 = performance.now();
        const picked = order.next(params.batchSize).map((i) => stageSamples[stage][i]);
        const batch = makeBatch(picked, (s) => s.hasImage, spec);
        const lr = learningRateAt(step, stageSteps, peak, params.warmupSteps);
        adam.setLearningRate(lr);
        const rows: number[] = [];
        const targets: number[] = [];
        for (let i = 0; i < batch.labels.length; i++) {
          if (batch.labels[i] >= 0) {
            rows.push(i);
            targets.push(batch.labels[i]);
          }
        }
        const ids = tf.tensor2d(batch.inputIds, [batch.batch, batch.length], 'int32');
        const mask = tf.tensor2d(batch.attentionMask, [batch.batch, batch.length], 'int32');
        const rowIndex = tf.tensor1d(rows, 'int32');
        const feats = batch.imageItems.length
          ? tf.tensor3d(concatGrids(batch.imageItems, input.grids, imageTokens * 1280), [batch.imageItems.length, imageTokens, 1280])
          : null;
        const { value, grads } = tf.variableGrads(() => {
          const imageEmbeds = feats ? model.projectVisionFeatures(feats, true) : undefined;
          const { hidden } = model.forward({ inputIds: ids, attentionMask: mask, imageEmbeds, training: true, logits: 'none' });
          const h = tf.gather(tf.reshape(hidden, [-1, cfg.text.hiddenSize]), rowIndex) as tf.Tensor2D;
          return tiedSoftmaxCrossEntropy(h, embedTable as tf.Tensor2D, Int32Array.from(targets), -1);
        }, [...vars.values()]);
        const named: tf.NamedTensorMap = {};
        for (const [name, v] of vars) if (grads[v.name]) named[name] = grads[v.name];
        adam.apply(vars, named);
        lastLoss = (await value.data())[0];
        tf.dispose([value, ids, mask, rowIndex, ...(feats ? [feats] : []), ...Object.values(grads)]);
        if (!Number.isFinite(lastLoss)) throw new Error(`pretraining diverged at stage ${stage} step ${step + 1} (loss ${lastLoss}); lower the learning rate`);
        const point: PretrainPoint = { step: doneBefore + step + 1, stage, loss: lastLoss, learningRate: lr, seconds: (performance.now() - t0) / 1000 };
        history.push(point);
        hooks.onStep?.(point, totalSteps);
        if ((step + 1) % params.checkpointEvery === 0 && step + 1 < stageSteps) checkpoint(step + 1);
        await new Promise((r) => setImmediate(r));
      }
      if (stage === 1 && params.stage2Steps > 0) checkpoint(stageSteps);
    } finally {
      model.dispose();
      adam.dispose();
      // Back to plain tensors for the next stage (or the save).
      for (const [name, v] of vars) {
        weights.set(name, tf.clone(v));
        v.dispose();
      }
    }
  }
  try {
    saveHfCheckpoint(input.outDir, cfg, weights, {
      layout: 'legacy',
      extraFiles: {
        'tokenizer_config.json': JSON.stringify({ tokenizer_class: 'LlamaTokenizer', almostrec_tokenizer: tokenizer.id, bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', pad_token: '<unk>' }, null, 2),
        'almostrec_pretraining.json': JSON.stringify({ params, gridEncoderId: input.gridEncoderId, captions: samples.length, withPoster: stageSamples[1].length, history }, null, 1)
      }
    });
  } finally {
    for (const t of weights.values()) t.dispose();
  }
  rmSync(input.statePath, { force: true });
  const parameters = [...expectedTensors(cfg).values()].reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
  return { config: cfg, steps: totalSteps, finalLoss: lastLoss, seconds: (performance.now() - started) / 1000, parameters };
}

function concatGrids(items: number[], grids: Map<number, Float32Array>, size: number): Float32Array {
  const out = new Float32Array(items.length * size);
  items.forEach((id, i) => {
    const g = grids.get(id);
    if (!g || g.length !== size) throw new Error(`no image grid of size ${size} for item ${id}`);
    out.set(g, i * size);
  });
  return out;
}
