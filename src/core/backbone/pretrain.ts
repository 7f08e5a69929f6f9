// Pretraining the compact backbone on a catalog's own items: a language stage, then LLaVA's two stages —
//   stage 0 (language): the decoder alone (embeddings, layers, norm; the head is tied to the embeddings)
//   learns next-token prediction on the captions as plain text, <s> caption </s>;
//   stage 1 (feature alignment): only the projector trains, on  <s> <image>×g² caption </s>, the decoder frozen;
//   stage 2 (end-to-end): projector and the whole decoder train on the same captions, items without a poster
//   as text only.
// Next-token cross-entropy over the full 32,001-token vocabulary on the caption tokens. Adam with linear
// warm-up and cosine decay per stage. A fixed, seeded share of the items is held out (their captions never
// train); the mean loss on their captions is measured at the start and after each stage. Every
// `checkpointEvery` steps (and on cancel, and at the end of each stage) the weights, Adam state, data
// position and held-out figures go to a state file, so a resumed job continues exactly where it stopped; the
// finished backbone is saved as a llava-hf checkpoint folder that hf-checkpoint.ts reads back.
// Every step is cut into SHARDS shards (pretrain-shards.ts); with two threads a replica worker computes one
// of them on the other core (pretrain-replica.ts). The result is the same bits on one thread or two.
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { PRETRAIN_STAGE_NAMES, PRETRAIN_STAGES, pretrainParamsOf, type HeldOutLoss, type HeldOutReport, type PretrainPoint, type PretrainStage } from '../../shared/backbones';
import { crashPoint } from '../crash-point';
import { CancelledError, type CancelSignal } from '../progress';
import { computeThreads } from '../tensor/backend';
import { readToHost } from '../tensor/host-read';
import { tiedSoftmaxCrossEntropy } from '../tensor/ops';
import { defaultReplicaScript, SHARDS, type ShardResult } from '../train/replicas';
import { combineShards } from '../train/shard-step';
import { setCrossEntropyThreads } from '../tensor/ort-cross-entropy';
import { readSafetensorsHeader, readSafetensorsTensors, writeSafetensors, type TensorToWrite } from '../tensor/safetensors';
import { Adam } from '../tensor/adam';
import { learningRateAt } from '../tensor/lr-schedule';
import { compactConfig, initialWeights, type CompactShape } from './compact';
import type { LlavaConfig } from './config';
import { saveHfCheckpoint } from './hf-checkpoint';
import { LlavaModel } from './llava-model';
import { heldOutItems, lossRows, makeBatch, SampleOrder, type CaptionSample, type SequenceSpec } from './pretrain-data';
import { PretrainReplica } from './pretrain-replica';
import { concatGrids, pretrainShardAsync, shardInputs, type ShardModel } from './pretrain-shards';
import type { TextTokenizer } from './tokenizer';
import { expectedTensors } from './weight-names';

export interface PretrainParams extends CompactShape {
  batchSize: number;
  stage0Steps: number;
  stage1Steps: number;
  stage2Steps: number;
  stage0LearningRate: number;
  stage1LearningRate: number;
  stage2LearningRate: number;
  warmupSteps: number;
  checkpointEvery: number;
  /** Share of the items (%) whose captions never train and measure the held-out loss; 0: none. */
  heldOutPercent: number;
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
  /** Called after each held-out measurement with every figure so far (also those restored by a resume). */
  onHeldOut?: (report: HeldOutReport) => void;
  /** Called before each training step with the items of its batch. */
  onBatch?: (stage: PretrainStage, itemIds: readonly number[]) => void;
  /**
   * Threads the steps run on (default: env ALMOSTREC_THREADS, else the cores, at most SHARDS); 2 starts a
   * replica worker on the CPU backends. The result is the same for any value; only the speed differs.
   */
  threads?: number;
  /** The built replica worker script (default: found next to the build, pretrain-replica.js). */
  replicaScript?: string;
}

export interface PretrainResult {
  config: LlavaConfig;
  steps: number;
  finalLoss: number;
  seconds: number;
  parameters: number;
  /** Held-out caption loss at the start and after each stage (null with heldOutPercent 0). */
  heldOut: HeldOutReport | null;
  /** Threads the steps ran on (2 with a data-parallel replica). */
  threads: number;
}

const STATE_FORMAT = 'almostrec-pretrain-state/2';
/** Written before stage 0 and the held-out split existed: stages 1–2 only. Still resumable. */
const STATE_FORMAT_V1 = 'almostrec-pretrain-state/1';

interface Position {
  stage: PretrainStage;
  /** Steps done in this stage. */
  step: number;
  pass: number;
  pos: number;
}

const stageSteps = (p: PretrainParams, stage: PretrainStage): number => [p.stage0Steps, p.stage1Steps, p.stage2Steps][stage];
const stagePeak = (p: PretrainParams, stage: PretrainStage): number => [p.stage0LearningRate, p.stage1LearningRate, p.stage2LearningRate][stage];
/** Steps of the stages before `stage`: the global step count runs through the stages in order. */
const stepsBefore = (p: PretrainParams, stage: PretrainStage): number => PRETRAIN_STAGES.filter((s) => s < stage).reduce<number>((a, s) => a + stageSteps(p, s), 0);

/** Stage 0: the decoder (its tied head included); stage 1: the projector; stage 2: both. */
function trainableNames(cfg: LlavaConfig, stage: PretrainStage): string[] {
  return [...expectedTensors(cfg).keys()].filter((n) => (stage !== 0 && n.startsWith('projector.')) || (stage !== 1 && n.startsWith('text.')));
}

/** Parameters compared with the catalogue's completion (a state written before a key existed still matches). */
function sameParams(a: Record<string, number>, b: Record<string, number>): boolean {
  const canon = (x: Record<string, number>) => JSON.stringify(Object.entries(pretrainParamsOf(x)).sort(([k1], [k2]) => (k1 < k2 ? -1 : k1 > k2 ? 1 : 0)));
  return canon(a) === canon(b);
}

/** Writes the resumable state; values are read asynchronously, the only way the webgpu backend reads in Node. */
async function saveState(
  path: string,
  weights: Map<string, tf.Tensor>,
  adam: Adam | null,
  at: Position,
  params: PretrainParams,
  history: PretrainPoint[],
  heldOut: HeldOutReport | null
): Promise<void> {
  const tensors: Record<string, TensorToWrite> = {};
  const put = async (prefix: string, m: Map<string, tf.Tensor>) => {
    for (const [name, t] of m) tensors[prefix + name] = { dtype: 'F32', shape: t.shape, data: (await t.data()) as Float32Array };
  };
  await put('w.', weights);
  if (adam) {
    await put('m.', adam.m);
    await put('v.', adam.v);
  }
  mkdirSync(dirname(path), { recursive: true });
  writeSafetensors(path, tensors, {
    format: STATE_FORMAT,
    params: JSON.stringify(params),
    position: JSON.stringify(at),
    adamStep: String(adam?.step ?? 0),
    history: JSON.stringify(history),
    heldOut: JSON.stringify(heldOut)
  }, { digest: true });
}

interface LoadedState {
  weights: Map<string, Float32Array>;
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
  at: Position;
  adamStep: number;
  history: PretrainPoint[];
  heldOut: HeldOutReport | null;
}

/** A metadata value parsed as JSON, with an error naming the file and key (`fallback` when it is absent). */
function metaJson<T>(path: string, meta: Record<string, string>, key: string, fallback: string): T {
  try {
    return JSON.parse(meta[key] ?? fallback) as T;
  } catch {
    throw new Error(`${path}: metadata "${key}" is not valid JSON`);
  }
}

function loadState(path: string, params: PretrainParams, cfg: LlavaConfig): LoadedState {
  const file = readSafetensorsHeader(path);
  const meta = file.metadata;
  const v1 = meta.format === STATE_FORMAT_V1;
  if (meta.format !== STATE_FORMAT && !v1) throw new Error(`${path}: not a pretraining state file (format ${JSON.stringify(meta.format)})`);
  const saved = metaJson<Record<string, number> | null>(path, meta, 'params', 'null');
  if (typeof saved !== 'object' || saved === null || !sameParams(saved, params as unknown as Record<string, number>)) {
    throw new Error(
      v1
        ? `${path}: saved before the language stage (stage 0) and the held-out split existed, with other parameters than these; resume it with stage0Steps 0 and heldOutPercent 0, or start a new backbone`
        : `${path}: saved with other pretraining parameters; start a new backbone instead of resuming`
    );
  }
  const at = metaJson<Position | null>(path, meta, 'position', 'null');
  const stages: readonly number[] = v1 ? [1, 2] : PRETRAIN_STAGES;
  if (typeof at !== 'object' || at === null || !stages.includes(at.stage)) throw new Error(`${path}: bad position`);
  const adamStep = Number(meta.adamStep);
  if (!Number.isInteger(adamStep) || adamStep < 0) throw new Error(`${path}: bad adamStep ${JSON.stringify(meta.adamStep)}`);
  // Names, dtypes and shapes are checked on the header, before any data is read: weights (w.) must all be
  // there; Adam's moments (m., v.) are saved for the trainable ones only, each beside its weight.
  const expected = expectedTensors(cfg);
  for (const [key, info] of file.tensors) {
    const dot = key.indexOf('.');
    const shape = expected.get(key.slice(dot + 1));
    if (!['w', 'm', 'v'].includes(key.slice(0, dot)) || !shape || info.dtype !== 'F32' || info.shape.join(',') !== shape.join(',')) {
      throw new Error(`${path}: unexpected tensor ${key} [${info.shape}] ${info.dtype}`);
    }
  }
  for (const name of expected.keys()) if (!file.tensors.has(`w.${name}`)) throw new Error(`${path}: weight ${name} is missing`);
  const weights = new Map<string, Float32Array>();
  const m = new Map<string, Float32Array>();
  const v = new Map<string, Float32Array>();
  const groups = new Map([
    ['w', weights],
    ['m', m],
    ['v', v]
  ]);
  for (const [key, entry] of readSafetensorsTensors(path, file)) {
    const dot = key.indexOf('.');
    groups.get(key.slice(0, dot))!.set(key.slice(dot + 1), entry.data as Float32Array);
  }
  return {
    weights,
    m,
    v,
    at,
    adamStep,
    history: metaJson<PretrainPoint[]>(path, meta, 'history', '[]'),
    heldOut: metaJson<HeldOutReport | null>(path, meta, 'heldOut', 'null')
  };
}

/** What the held-out figures run on (see HeldOutLoss). */
interface HeldOutSets {
  text: CaptionSample[];
  posters: CaptionSample[];
  /** The poster items with their captions cut as with the image, so both figures score the same tokens. */
  postersCut: CaptionSample[];
}

/** Token-weighted mean next-token loss of `samples` (forward only, in batches). */
async function meanCaptionLoss(
  model: LlavaModel,
  embedTable: tf.Tensor2D,
  samples: readonly CaptionSample[],
  withImage: boolean,
  spec: SequenceSpec,
  grids: Map<number, Float32Array>,
  batchSize: number
): Promise<{ loss: number; tokens: number }> {
  const width = model.config.text.hiddenSize;
  let sum = 0;
  let tokens = 0;
  for (let start = 0; start < samples.length; start += batchSize) {
    const batch = makeBatch(samples.slice(start, start + batchSize), () => withImage, spec);
    const { rows, targets } = lossRows(batch);
    const value = tf.tidy(() => {
      const ids = tf.tensor2d(batch.inputIds, [batch.batch, batch.length], 'int32');
      const mask = tf.tensor2d(batch.attentionMask, [batch.batch, batch.length], 'int32');
      const imageEmbeds = batch.imageItems.length
        ? model.projectVisionFeatures(tf.tensor3d(concatGrids(batch.imageItems, grids, spec.imageTokens * 1280), [batch.imageItems.length, spec.imageTokens, 1280]))
        : undefined;
      const { hidden } = model.forward({ inputIds: ids, attentionMask: mask, imageEmbeds, logits: 'none' });
      const h = tf.gather(tf.reshape(hidden, [-1, width]), tf.tensor1d(rows, 'int32')) as tf.Tensor2D;
      return tiedSoftmaxCrossEntropy(h, embedTable, targets, -1);
    });
    sum += (await value.data())[0] * targets.length;
    tokens += targets.length;
    value.dispose();
    await new Promise((r) => setImmediate(r));
  }
  return { loss: tokens ? sum / tokens : NaN, tokens };
}

/** Pretrains (or resumes) the compact backbone; returns when it is saved to outDir. */
export async function pretrainCompact(input: PretrainInput, hooks: PretrainHooks = {}): Promise<PretrainResult> {
  const { params, tokenizer } = input;
  const cfg = compactConfig(params, input.gridEncoderId);
  // The tied 32k-token LM head runs in onnxruntime, one session per engine with one thread each: the second
  // core goes to the replica's engine, and a session with more threads sums the head's gradients in another
  // order (other bits), so a run without a replica would not give the bits of one with it.
  const threads = computeThreads(hooks.threads);
  setCrossEntropyThreads(1);
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
  const held = heldOutItems(
    input.captions.map((c) => c.itemId),
    params.heldOutPercent
  );
  const samples: CaptionSample[] = input.captions
    .map((c) => ({ itemId: c.itemId, tokens: tokenizer.encode(c.caption, { addBos: false }), hasImage: c.hasImage && input.grids.has(c.itemId) }))
    .filter((s) => s.tokens.length > 0);
  const train = samples.filter((s) => !held.has(s.itemId));
  const stageSamples: Record<PretrainStage, CaptionSample[]> = { 0: train, 1: train.filter((s) => s.hasImage), 2: train };
  if (params.stage1Steps > 0 && stageSamples[1].length === 0) throw new Error('stage 1 needs items with a poster outside the held-out ones; this dataset has none (set stage 1 steps to 0)');
  if (train.length === 0) throw new Error('no item has a caption to pretrain on');
  const heldSamples = samples.filter((s) => held.has(s.itemId));
  const heldPosters = heldSamples.filter((s) => s.hasImage);
  const sets: HeldOutSets | null = heldSamples.length
    ? { text: heldSamples, posters: heldPosters, postersCut: heldPosters.map((s) => ({ ...s, tokens: s.tokens.slice(0, params.maxTokens - 2 - imageTokens), hasImage: false })) }
    : null;
  hooks.onLog?.(
    `pretraining on ${train.length} captions (${stageSamples[1].length} with a poster), ${imageTokens} image tokens per poster; ` +
      `${heldSamples.length} captions held out (${heldPosters.length} with a poster)`
  );

  const resumed = hooks.resume && existsSync(input.statePath) ? loadState(input.statePath, params, cfg) : null;
  const weights = new Map<string, tf.Tensor>();
  if (resumed) {
    for (const [name, shape] of expectedTensors(cfg)) weights.set(name, tf.tensor(resumed.weights.get(name)!, shape));
    const globalStep = stepsBefore(params, resumed.at.stage) + resumed.at.step;
    resumed.history = resumed.history.filter((p) => p.step <= globalStep);
    hooks.onResume?.(globalStep);
    hooks.onLog?.(`resuming stage ${resumed.at.stage} at step ${resumed.at.step}`);
  } else {
    for (const [name, t] of initialWeights(cfg, params.seed)) weights.set(name, t);
  }
  const history: PretrainPoint[] = resumed ? resumed.history : [];
  const heldOut: HeldOutReport | null = sets
    ? (resumed?.heldOut ?? { items: heldSamples.length, posters: heldPosters.length, textTokens: 0, posterTokens: 0, points: [] })
    : null;
  if (heldOut && heldOut.points.length) hooks.onHeldOut?.(heldOut);
  const totalSteps = params.stage0Steps + params.stage1Steps + params.stage2Steps;
  const started = performance.now();
  let lastLoss = NaN;
  // Started before the first step that trains (not at all when a resume finds every stage done).
  let replica: PretrainReplica | null = null;
  let replicaTried = false;

  /** Measures the held-out loss on the current weights (plain tensors) unless already measured there. */
  const measure = async (after: 'start' | PretrainStage, step: number): Promise<boolean> => {
    if (!sets || !heldOut || heldOut.points.some((p) => p.after === after)) return false;
    const model = new LlavaModel(cfg, weights);
    try {
      const loss = (set: CaptionSample[], withImage: boolean) =>
        meanCaptionLoss(model, weights.get('text.embed_tokens.weight') as tf.Tensor2D, set, withImage, spec, input.grids, params.batchSize);
      const text = await loss(sets.text, false);
      const withPoster = sets.posters.length ? await loss(sets.posters, true) : null;
      const withoutPoster = sets.posters.length ? await loss(sets.postersCut, false) : null;
      heldOut.textTokens = text.tokens;
      heldOut.posterTokens = withPoster?.tokens ?? 0;
      const point: HeldOutLoss = { after, step, text: text.loss, withPoster: withPoster?.loss ?? null, withoutPoster: withoutPoster?.loss ?? null };
      heldOut.points.push(point);
      const f = (x: number) => x.toFixed(3);
      hooks.onLog?.(
        `held-out caption loss ${after === 'start' ? 'at the start' : `after stage ${after} (${PRETRAIN_STAGE_NAMES[after]})`}: ` +
          `text ${f(text.loss)} over ${heldSamples.length} captions` +
          (withPoster && withoutPoster ? `; the ${heldPosters.length} with a poster ${f(withPoster.loss)} with it, ${f(withoutPoster.loss)} without` : '')
      );
      hooks.onHeldOut?.(heldOut);
      return true;
    } finally {
      model.dispose();
    }
  };

  /** Trains one stage from `startAt`; returns its last step's loss. Leaves the weights as plain tensors. */
  async function trainStage(stage: PretrainStage, startAt: Position): Promise<number> {
    const stepsInStage = stageSteps(params, stage);
    // This stage's trainables become variables; the rest stay plain (frozen) tensors.
    const vars = new Map<string, tf.Variable>();
    for (const name of trainableNames(cfg, stage)) {
      const t = weights.get(name)!;
      const v = tf.variable(t, true, `pretrain/${name}`);
      t.dispose();
      weights.set(name, v);
      vars.set(name, v);
    }
    const peak = stagePeak(params, stage);
    const adam = new Adam(vars, { learningRate: peak, beta2: 0.999 });
    if (resumed && resumed.at.stage === stage) adam.load(resumed.adamStep, resumed.m, resumed.v);
    const order = new SampleOrder(stageSamples[stage].length, params.seed + stage, startAt.pass, startAt.pos);
    const model = new LlavaModel(cfg, weights);
    const shardModel: ShardModel = { model, vars, embedTable: weights.get('text.embed_tokens.weight') as tf.Tensor2D };
    const doneBefore = stepsBefore(params, stage);
    // Stage 0 reads every caption as text; stages 1 and 2 put the poster before it where there is one.
    const withImage = stage === 0 ? () => false : (s: CaptionSample) => s.hasImage;
    /** One step's mean loss over its target tokens and the gradients, from its shards in order. */
    const runStep = async (picked: CaptionSample[]): Promise<{ loss: number; grads: Map<string, tf.Tensor> }> => {
      const inputs = shardInputs(picked, withImage, spec, input.grids, cfg.vision.hiddenSize, SHARDS);
      const last = inputs[SHARDS - 1];
      // The replica takes the last shard while this thread computes the others.
      const remote = replica && last ? replica.shard(await currentValues(vars), last) : null;
      // If this thread's shard throws, the replica's answer is never awaited: its failure must not surface as
      // an unhandled rejection when the replica is closed.
      remote?.catch(() => undefined);
      const parts: ShardResult[] = [];
      for (const [i, shard] of inputs.entries()) if (shard && !(remote && i === SHARDS - 1)) parts.push(await pretrainShardAsync(shardModel, shard));
      if (remote) parts.push(await remote);
      return combineShards(parts);
    };
    const checkpoint = async (step: number) => {
      await saveState(input.statePath, weights, adam, { stage, step, pass: order.pass, pos: order.pos }, params, history, heldOut);
      hooks.onCheckpoint?.();
    };
    let loss = NaN;
    try {
      if (!replicaTried) {
        replicaTried = true;
        replica = await startReplica(cfg, threads, hooks);
      }
      await replica?.beginStage(stage, weights, vars);
      for (let step = startAt.step; step < stepsInStage; step++) {
        if (hooks.signal?.aborted) {
          await checkpoint(step);
          throw new CancelledError();
        }
        const t0 = performance.now();
        const picked = order.next(params.batchSize).map((i) => stageSamples[stage][i]);
        hooks.onBatch?.(
          stage,
          picked.map((s) => s.itemId)
        );
        const lr = learningRateAt(step, stepsInStage, peak, params.warmupSteps);
        adam.setLearningRate(lr);
        const { loss: stepLoss, grads } = await runStep(picked);
        adam.apply(vars, Object.fromEntries(grads));
        tf.dispose([...grads.values()]);
        loss = stepLoss;
        if (!Number.isFinite(loss)) throw new Error(`pretraining diverged at stage ${stage} step ${step + 1} (loss ${loss}); lower the learning rate`);
        const point: PretrainPoint = { step: doneBefore + step + 1, stage, loss, learningRate: lr, seconds: (performance.now() - t0) / 1000 };
        history.push(point);
        hooks.onStep?.(point, totalSteps);
        crashPoint('pretrain-step');
        if ((step + 1) % params.checkpointEvery === 0 && step + 1 < stepsInStage) await checkpoint(step + 1);
        await new Promise((r) => setImmediate(r));
      }
      return loss;
    } finally {
      model.dispose();
      adam.dispose();
      // Back to plain tensors for the next stage, the held-out measurement or the save.
      for (const [name, v] of vars) {
        weights.set(name, tf.clone(v));
        v.dispose();
      }
    }
  }

  try {
    await measure('start', 0);
    for (const stage of PRETRAIN_STAGES) {
      const steps = stageSteps(params, stage);
      if (resumed && resumed.at.stage > stage) continue;
      const startAt = resumed && resumed.at.stage === stage ? resumed.at : { stage, step: 0, pass: 0, pos: 0 };
      const doneBefore = stepsBefore(params, stage);
      const trained = startAt.step < steps;
      if (trained) lastLoss = await trainStage(stage, startAt);
      if (steps === 0) continue;
      const measured = await measure(stage, doneBefore + steps);
      // The end of a stage is a checkpoint too: a resume never redoes a finished stage or its measurement.
      if ((trained || measured) && doneBefore + steps < totalSteps) {
        await saveState(input.statePath, weights, null, { stage, step: steps, pass: 0, pos: 0 }, params, history, heldOut);
        hooks.onCheckpoint?.();
      }
    }
  } finally {
    await (replica as PretrainReplica | null)?.close();
  }

  try {
    // saveHfCheckpoint streams with synchronous reads: on webgpu they are served from these host copies.
    await readToHost(weights.values());
    saveHfCheckpoint(input.outDir, cfg, weights, {
      layout: 'legacy',
      extraFiles: {
        'tokenizer_config.json': JSON.stringify({ tokenizer_class: 'LlamaTokenizer', almostrec_tokenizer: tokenizer.id, bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', pad_token: '<unk>' }, null, 2),
        'almostrec_pretraining.json': JSON.stringify(
          {
            params,
            gridEncoderId: input.gridEncoderId,
            captions: train.length,
            withPoster: stageSamples[1].length,
            heldOut,
            heldOutItemIds: heldSamples.map((s) => s.itemId),
            history
          },
          null,
          1
        )
      }
    });
  } finally {
    for (const t of weights.values()) t.dispose();
  }
  rmSync(input.statePath, { force: true });
  const parameters = [...expectedTensors(cfg).values()].reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
  // What ran: two threads only where a replica computed a shard of every step.
  const ran = (replica as PretrainReplica | null) ? 2 : 1;
  return { config: cfg, steps: totalSteps, finalLoss: lastLoss, seconds: (performance.now() - started) / 1000, parameters, heldOut, threads: ran };
}

/** The trainable weights' current values, copied for a replica (read asynchronously, as webgpu needs in Node). */
async function currentValues(vars: Map<string, tf.Variable>): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const v of vars.values()) out.push(((await v.data()) as Float32Array).slice());
  return out;
}

/** Whether this backend runs every kernel on one core, so that a second engine can use the other (wasm, cpu). */
const replicaCapable = (): boolean => ['wasm', 'cpu'].includes(tf.getBackend());

/**
 * A replica when more than one thread is wanted, the backend runs kernels on one core and the replica script
 * is built; otherwise null (this thread computes every shard, with the same result). A replica that fails
 * to start is reported and pretraining goes on without it.
 */
async function startReplica(config: LlavaConfig, threads: number, hooks: PretrainHooks): Promise<PretrainReplica | null> {
  if (threads < 2 || !replicaCapable()) return null;
  const script = hooks.replicaScript ?? defaultReplicaScript('pretrain-replica.js');
  if (!script) {
    hooks.onLog?.('pretraining on one thread: the replica worker (pretrain-replica.js) is not built');
    return null;
  }
  try {
    return await PretrainReplica.start(script, { config, backend: tf.getBackend() });
  } catch (e) {
    hooks.onLog?.(`pretraining on one thread: ${e instanceof Error ? e.message : String(e)}`);
    return null;
  }
}
