// The one training loop every trainable model runs in (model-spec.ts): a seeded Rng as the single source of
// randomness, Adam, validation every `evalEvery` epochs with early stopping on NDCG@10, an atomic resumable
// checkpoint after every epoch (resume is bit-exact) and the best weights kept apart, progress, cancel.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { parseModelConfig, type TrainingConfig } from '../../shared/api';
import type { EpochRecord, Metrics } from '../../shared/types';
import { crashPoint } from '../crash-point';
import { throwIfCancelled, type CancelSignal, type ProgressFn } from '../progress';
import { evaluate, type Scorer } from '../eval/evaluator';
import { computeThreads, initBackend, isBackendInitialised } from '../tensor/backend';
import { setCrossEntropyThreads } from '../tensor/ort-cross-entropy';
import { Rng } from '../tensor/rng';
import { SafetensorsError } from '../tensor/safetensors';
import { Adam } from '../tensor/adam';
import { learningRateAt } from '../tensor/lr-schedule';
import { readTrainState, readWeights, writeTrainState, writeWeights, type CheckpointHeader, type EarlyStopState, type ParamShapes, type TrainState } from './checkpoint';
import { backboneSource, scoreAsync, type ModelContext, type ModelSpec, type TrainableKind, type TrainableModel } from './model-spec';
import { defaultReplicaScript, Replica, SHARDS, type ShardResult } from './replicas';
import { combineShards, computeShardAsync } from './shard-step';

/** What the checks below need to know of a spec, whatever its config type. */
type SpecId = { kind: TrainableKind; needsItemFeatures?: boolean; needsBackbone?: boolean };

export interface TrainModelOptions {
  checkpointDir: string;
  /** Continue from `checkpointDir`'s training checkpoint when there is one. */
  resume?: boolean;
  /** phase 'train': done/total steps over the whole run, metrics {epoch, step, loss, etaSeconds}; phase 'validate'. */
  onProgress?: ProgressFn;
  onEpoch?: (rec: EpochRecord, valid: Metrics | null) => void;
  /** Checked every step; a cancelled run throws CancelledError and the last epoch checkpoint stays resumable. */
  signal?: CancelSignal;
  /**
   * Threads for models that split a step into shards (replicas.ts; default: env ALMOSTREC_THREADS, else the
   * cores, at most SHARDS). The result is the same for any value; only the speed differs.
   */
  threads?: number;
  /** The built replica worker script (default: found next to the build, see defaultReplicaScript). */
  replicaScript?: string;
  /** Notes worth a line in a job log (e.g. why training runs on one thread). */
  onLog?: (message: string) => void;
}

/**
 * Cumulative seconds spent in each part of the training steps (data = beginEpoch's preparation; wait = time
 * the main thread waited for a replica's gradients after finishing its own shard).
 */
export interface TrainTiming {
  forward: number;
  backward: number;
  optimizer: number;
  data: number;
  wait: number;
}

export interface TrainModelResult {
  bestEpoch: number;
  valid: Metrics;
  /** Best weights (by validation NDCG@10). */
  checkpointPath: string;
  history: EpochRecord[];
  stoppedEarly: boolean;
  timing: TrainTiming;
  /** Threads the steps ran on (2 with a data-parallel replica). */
  threads: number;
}

export const CHECKPOINT_FILE = 'checkpoint.safetensors';
export const BEST_FILE = 'best.safetensors';
/** The training checkpoint before the last one: what a resume falls back to when the last is unreadable. */
export const PREVIOUS_CHECKPOINT_FILE = 'checkpoint.prev.safetensors';

/** Config keys a resumed run may change: how long to train, not what is trained. */
const RESUMABLE_CHANGES = new Set(['epochs', 'patience']);

async function ensureBackend(): Promise<void> {
  if (!isBackendInitialised()) await initBackend();
}

/** The item features a visual model needs, checked against the dataset (clear error instead of a shape crash). */
function checkContext(spec: SpecId, ctx: ModelContext): void {
  const f = ctx.itemFeatures;
  if (spec.needsItemFeatures && !f) throw new Error(`model ${spec.kind} needs item image features, none were given`);
  if (spec.needsBackbone && !ctx.backbone) throw new Error(`model ${spec.kind} needs a backbone and an item-embedding table, none were given`);
  if (f && f.values.length !== (ctx.data.numItems + 1) * f.dim) {
    throw new Error(`item features (${f.encoderId}) have ${f.values.length} values, expected ${ctx.data.numItems + 1} × ${f.dim}`);
  }
}

const encoderOf = (spec: SpecId, ctx: ModelContext): string | null => (spec.needsItemFeatures ? (ctx.itemFeatures?.encoderId ?? null) : null);

/** Checks a stored header against the model and dataset it is loaded for; every message names the file. */
function checkHeader(file: string, h: CheckpointHeader, spec: SpecId, ctx: ModelContext, resume: boolean): void {
  if (h.kind !== spec.kind) throw new Error(`${file}: checkpoint is a ${h.kind} model, expected ${spec.kind}`);
  if (h.numItems !== ctx.data.numItems) {
    throw new Error(resume ? `${file}: checkpoint has ${h.numItems} items, dataset has ${ctx.data.numItems}` : `${file}: checkpoint has ${h.numItems} items, dataset ${ctx.data.datasetId} has ${ctx.data.numItems}`);
  }
  const enc = encoderOf(spec, ctx);
  if (h.encoderId !== enc) throw new Error(`${file}: checkpoint was trained on image features "${h.encoderId}", these are "${enc}"`);
}

/** The spec's shapes for a stored config; a config the spec rejects is reported against the file. */
function shapesFor<C extends TrainingConfig>(file: string, spec: ModelSpec<C>, ctx: ModelContext) {
  return (h: CheckpointHeader): ParamShapes => {
    try {
      return spec.paramShapes(h.config as unknown as C, ctx);
    } catch (e) {
      throw new Error(`${file}: stored config does not fit ${spec.kind} (${(e as Error).message})`);
    }
  };
}

/**
 * The newest training checkpoint that reads back whole: the last, else the one before it (the last is missing
 * when the process died between moving it aside and renaming the new one into place). A torn or corrupt
 * file (SafetensorsError: bad header, short data, digest mismatch) is logged and skipped, never loaded; any
 * other error (a checkpoint of another model or config) is the caller's to see. Null: start from epoch 1.
 */
function readResumableState(paths: string[], read: (path: string) => TrainState, onLog?: (message: string) => void): TrainState | null {
  let skipped = false;
  for (const path of paths) {
    if (!existsSync(path)) continue;
    try {
      const state = read(path);
      if (path !== paths[0]) onLog?.(`resuming from the previous checkpoint ${path} (epoch ${state.epoch})`);
      return state;
    } catch (e) {
      if (!(e instanceof SafetensorsError)) throw e;
      onLog?.(`skipping a checkpoint that does not read back whole: ${e.message}`);
      skipped = true;
    }
  }
  if (skipped) onLog?.('no readable checkpoint left: training restarts from epoch 1');
  return null;
}

/** Copies of the variables' values; read asynchronously, the only way the webgpu backend can in Node. */
async function snapshot(vars: Map<string, tf.Variable>): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [name, v] of vars) out.set(name, ((await v.data()) as Float32Array).slice());
  return out;
}

export async function trainModel<C extends TrainingConfig>(
  spec: ModelSpec<C>,
  ctx: ModelContext,
  config: Partial<C> | Record<string, number>,
  opts: TrainModelOptions
): Promise<TrainModelResult> {
  const cfg = parseModelConfig(spec.kind, config) as unknown as C;
  const { data } = ctx;
  checkContext(spec, ctx);
  const shapes = spec.paramShapes(cfg, ctx);
  await ensureBackend();
  mkdirSync(opts.checkpointDir, { recursive: true });
  const ckptPath = join(opts.checkpointDir, CHECKPOINT_FILE);
  const bestPath = join(opts.checkpointDir, BEST_FILE);
  const prevPath = join(opts.checkpointDir, PREVIOUS_CHECKPOINT_FILE);
  // A fresh start must never fall back to an earlier attempt's state.
  if (!opts.resume) for (const p of [ckptPath, prevPath]) rmSync(p, { force: true });
  // Half-written temp files of a writer that was killed (writeSafetensors): never read, only in the way.
  for (const f of readdirSync(opts.checkpointDir)) if (/\.safetensors\.tmp-\d+$/.test(f)) rmSync(join(opts.checkpointDir, f), { force: true });
  const encoderId = encoderOf(spec, ctx);
  const header = (epoch: number): CheckpointHeader => ({ kind: spec.kind, config: cfg as unknown as Record<string, number>, numItems: data.numItems, datasetId: data.datasetId, encoderId, epoch });

  let rng = new Rng(cfg.seed);
  let startEpoch = 0;
  let history: EpochRecord[] = [];
  let early: EarlyStopState = { bestNdcg10: -1, bestEpoch: 0, bestValid: null, badEvals: 0, stoppedEarly: false };
  let resumed: TrainState | null = null;
  if (opts.resume) {
    resumed = readResumableState([ckptPath, prevPath], (path) =>
      readTrainState(path, (h) => {
        checkHeader(path, h, spec, ctx, true);
        const changed = Object.keys({ ...h.config, ...cfg }).filter(
          (k) => !RESUMABLE_CHANGES.has(k) && h.config[k] !== (cfg as unknown as Record<string, number>)[k]
        );
        if (changed.length) throw new Error(`${path}: checkpoint was trained with a different configuration (${changed.join(', ')})`);
        return shapes;
      }), opts.onLog);
  }
  if (resumed) {
    rng = new Rng(resumed.rng);
    startEpoch = resumed.epoch;
    history = resumed.history;
    early = resumed.early;
  }
  const initial = resumed ? resumed.params : spec.init(cfg, ctx, rng);

  const model: TrainableModel = spec.build(cfg, ctx, initial);
  let adam: Adam | null = null;
  let replica: Replica | null = null;
  // Gradients summed over the steps of one update (gradAccum > 1); null between updates.
  let pending: Map<string, tf.Tensor> | null = null;
  try {
    const names = shapes.map(([n]) => n);
    if (names.join('\n') !== [...model.params.keys()].join('\n')) {
      throw new Error(`model ${spec.kind}: built parameters [${[...model.params.keys()]}] differ from paramShapes [${names}]`);
    }
    const o = spec.optimizer(cfg);
    const optimizer = new Adam(model.params, { learningRate: o.learningRate, beta1: o.beta1, beta2: o.beta2, weightDecay: o.weightDecay });
    adam = optimizer;
    if (resumed) adam.load(resumed.adamStep, resumed.adamM, resumed.adamV);
    const accumulate = Math.max(1, Math.floor(o.gradAccum ?? 1));
    const warmup = Math.max(0, o.warmupSteps ?? 0);
    let pendingSteps = 0;
    // Updates in the whole run (the cosine schedule's span), known once the first epoch has its examples.
    let totalUpdates = 1;
    const update = (grads: Map<string, tf.Tensor>, steps: number): void => {
      // The schedule follows Adam's own step count, which checkpoints restore: resume stays exact.
      if (o.schedule === 'cosine') optimizer.setLearningRate(learningRateAt(optimizer.step, totalUpdates, o.learningRate, warmup));
      else if (warmup > 0) optimizer.setLearningRate(o.learningRate * Math.min(1, (optimizer.step + 1) / warmup));
      const named: tf.NamedTensorMap = {};
      for (const [name, g] of grads) named[name] = steps === 1 ? g : tf.mul(g, 1 / steps);
      optimizer.apply(model.params, named);
      tf.dispose(Object.values(named));
      if (steps > 1) tf.dispose([...grads.values()]);
    };
    const timing: TrainTiming = { forward: 0, backward: 0, optimizer: 0, data: 0, wait: 0 };
    const varList = names.map((n) => model.params.get(n)!);
    const sharded = typeof model.shardLoss === 'function';
    if (sharded) replica = await startReplica(spec.kind, cfg as unknown as Record<string, number>, ctx, model, opts);
    // The cross-entropy's onnxruntime pool gets the cores a replica does not use.
    setCrossEntropyThreads(replica ? 1 : computeThreads(opts.threads));

    /** One step's mean loss and gradients by variable name, timed into `timing`. */
    const runStep = async (s: number): Promise<{ loss: number; grads: Map<string, tf.Tensor> }> => {
      if (!sharded) {
        const t0 = performance.now();
        let forwardEnd = t0;
        const { value, grads } = tf.variableGrads(() => {
          const l = model.stepLoss(s, rng);
          forwardEnd = performance.now();
          return l;
        }, varList);
        const loss = (await value.data())[0];
        value.dispose();
        timing.forward += (forwardEnd - t0) / 1000;
        timing.backward += (performance.now() - forwardEnd) / 1000;
        const byName = new Map<string, tf.Tensor>();
        varList.forEach((v, i) => grads[v.name] && byName.set(names[i], grads[v.name]));
        return { loss, grads: byName };
      }
      const seeds = Array.from({ length: SHARDS }, () => rng.nextU32());
      // The replica takes the last shard while this thread computes the others.
      const remote = replica?.shard(s, SHARDS - 1, seeds[SHARDS - 1], varList.map((v) => (v.dataSync() as Float32Array).slice()));
      // If this thread's shard throws, the replica's answer is never awaited: its failure must not surface as
      // an unhandled rejection when the replica is closed.
      remote?.catch(() => undefined);
      const parts: ShardResult[] = [];
      for (let i = 0; i < (remote ? SHARDS - 1 : SHARDS); i++) {
        const part = await computeShardAsync(model, model.params, s, i, seeds[i]);
        timing.forward += part.forward;
        timing.backward += part.backward;
        parts.push(part);
      }
      const computed = performance.now();
      if (remote) {
        const r = await remote;
        const grads = new Map(names.flatMap((n, i) => (r.grads[i] ? [[n, tf.tensor(r.grads[i]!, varList[i].shape)] as const] : [])));
        parts.push({ ...r, grads });
      }
      timing.wait += (performance.now() - computed) / 1000;
      return combineShards(parts);
    };
    const runStart = performance.now();
    let stepsThisRun = 0;
    let stepsPerEpoch = 0;
    const scorer: Scorer = { scoreBatch: (h) => scoreAsync(model, h) };

    for (let epoch = startEpoch + 1; epoch <= cfg.epochs && !early.stoppedEarly; epoch++) {
      throwIfCancelled(opts.signal);
      const epochStart = performance.now();
      replica?.beginEpoch(rng.state(), epoch);
      stepsPerEpoch = model.beginEpoch(rng, epoch);
      if (!(stepsPerEpoch >= 1)) throw new Error(`model ${spec.kind}: no training examples (does any user have enough training interactions?)`);
      timing.data += (performance.now() - epochStart) / 1000;
      const totalSteps = stepsPerEpoch * cfg.epochs;
      totalUpdates = Math.ceil(stepsPerEpoch / accumulate) * cfg.epochs;
      let lossSum = 0;
      for (let s = 0; s < stepsPerEpoch; s++) {
        throwIfCancelled(opts.signal);
        const { loss, grads } = await runStep(s);
        const t1 = performance.now();
        const sum: Map<string, tf.Tensor> = pending ?? new Map();
        for (const [name, g] of grads) {
          const before = sum.get(name);
          sum.set(name, before ? tf.add(before, g) : g);
          if (before) tf.dispose([before, g]);
        }
        pending = sum;
        pendingSteps++;
        // An epoch's last steps update even when fewer than `accumulate`: checkpoints never hold a partial sum.
        if (pendingSteps === accumulate || s === stepsPerEpoch - 1) {
          update(sum, pendingSteps);
          pending = null;
          pendingSteps = 0;
        }
        timing.optimizer += (performance.now() - t1) / 1000;
        if (!Number.isFinite(loss)) throw new Error(`Training diverged: loss ${loss} at epoch ${epoch}, step ${s + 1}`);
        lossSum += loss;

        stepsThisRun++;
        crashPoint('train-step');
        const done = (epoch - 1) * stepsPerEpoch + s + 1;
        const perStep = (performance.now() - runStart) / 1000 / stepsThisRun;
        opts.onProgress?.({
          phase: 'train',
          done,
          total: totalSteps,
          metrics: { epoch, step: s + 1, loss, etaSeconds: perStep * (totalSteps - done) }
        });
      }
      const seconds = (performance.now() - epochStart) / 1000;

      let valid: Metrics | null = null;
      if (epoch % cfg.evalEvery === 0 || epoch === cfg.epochs) {
        valid = (await evaluate(scorer, data, 'valid', { onProgress: opts.onProgress, signal: opts.signal })).metrics;
        if (valid.ndcg10 > early.bestNdcg10) {
          early = { ...early, bestNdcg10: valid.ndcg10, bestEpoch: epoch, bestValid: valid, badEvals: 0 };
          writeWeights(bestPath, { ...header(epoch), valid, params: await snapshot(model.params) }, shapes);
        } else {
          early = { ...early, badEvals: early.badEvals + 1, stoppedEarly: early.badEvals + 1 >= cfg.patience };
        }
      }
      const rec: EpochRecord = { epoch, loss: lossSum / stepsPerEpoch, validNdcg10: valid ? valid.ndcg10 : null, seconds };
      history = [...history, rec];
      // The last good checkpoint stays as the previous one until the new one is whole (a fallback on resume).
      if (existsSync(ckptPath)) renameSync(ckptPath, prevPath);
      writeTrainState(
        ckptPath,
        {
          ...header(epoch),
          adamStep: adam.step,
          rng: rng.state(),
          early,
          history,
          params: await snapshot(model.params),
          adamM: await snapshot(adam.m),
          adamV: await snapshot(adam.v)
        },
        shapes
      );
      opts.onEpoch?.(rec, valid);
    }
    if (!early.bestValid) throw new Error(`${ckptPath}: run finished without a validation result`);
    return { bestEpoch: early.bestEpoch, valid: early.bestValid, checkpointPath: bestPath, history, stoppedEarly: early.stoppedEarly, timing, threads: replica ? 2 : 1 };
  } finally {
    if (pending) tf.dispose([...pending.values()]);
    model.dispose();
    adam?.dispose();
    await replica?.close();
  }
}

/**
 * A replica for a shardable model when more than one thread is wanted, the backend runs kernels on one
 * core (wasm, cpu) and the replica script is built; otherwise null (the loop computes every shard itself,
 * with the same result). A replica that fails to start is reported and training goes on without it.
 */
async function startReplica(kind: TrainableKind, config: Record<string, number>, ctx: ModelContext, model: TrainableModel, opts: TrainModelOptions): Promise<Replica | null> {
  const threads = computeThreads(opts.threads);
  const backend = tf.getBackend();
  if (threads < 2 || (backend !== 'wasm' && backend !== 'cpu')) return null;
  const script = opts.replicaScript ?? defaultReplicaScript();
  if (!script) {
    opts.onLog?.('training on one thread: the replica worker (train-replica.js) is not built');
    return null;
  }
  try {
    const shared = { data: ctx.data, itemFeatures: ctx.itemFeatures, backbone: ctx.backbone && backboneSource(ctx.backbone) };
    return await Replica.start(script, { kind, config, ctx: shared, values: [...(await snapshot(model.params))], backend });
  } catch (e) {
    opts.onLog?.(`training on one thread: ${e instanceof Error ? e.message : String(e)}`);
    return null;
  }
}

/** The model of `spec`'s kind built on saved weights (best or training checkpoint). Call dispose() when done. */
export async function loadTrainedModel<C extends TrainingConfig>(spec: ModelSpec<C>, ctx: ModelContext, checkpointPath: string): Promise<TrainableModel> {
  await ensureBackend();
  checkContext(spec, ctx);
  let config: C | null = null;
  const w = readWeights(checkpointPath, (h) => {
    checkHeader(checkpointPath, h, spec, ctx, false);
    config = h.config as unknown as C;
    return shapesFor(checkpointPath, spec, ctx)(h);
  });
  return spec.build(config!, ctx, w.params);
}

/** A scorer backed by saved weights (best or training checkpoint) of `spec`'s kind. Call dispose() when done. */
export async function loadScorer<C extends TrainingConfig>(spec: ModelSpec<C>, ctx: ModelContext, checkpointPath: string): Promise<Scorer & { dispose(): void }> {
  const model = await loadTrainedModel(spec, ctx, checkpointPath);
  return { scoreBatch: (h) => scoreAsync(model, h), dispose: () => model.dispose() };
}
