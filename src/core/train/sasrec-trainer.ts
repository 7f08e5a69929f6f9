// SASRec training loop: seeded shuffling and dropout, Adam, validation every `evalEvery` epochs with early
// stopping on NDCG@10, an atomic resumable checkpoint after every epoch and the best weights kept apart.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { sasrecConfigSchema, type SasrecConfig } from '../../shared/api';
import type { EpochRecord, Metrics } from '../../shared/types';
import { trainPart, type SequenceData } from '../data/types';
import { throwIfCancelled, type CancelSignal, type ProgressFn } from '../jobs/types';
import { evaluate, type Scorer } from '../eval/evaluator';
import { initSasrecParams, padLeftInto, SasrecModel } from '../models/sasrec';
import { initBackend, isBackendInitialised } from '../tensor/backend';
import { Rng } from '../tensor/rng';
import { Adam } from './adam';
import { readTrainState, readWeights, shapeOf, writeTrainState, writeWeights, type EarlyStopState } from './checkpoint';

export interface TrainSasrecOptions {
  checkpointDir: string;
  resume?: boolean;
  /** phase 'train': done/total steps over the whole run, metrics {epoch, step, loss, etaSeconds}; phase 'validate'. */
  onProgress?: ProgressFn;
  onEpoch?: (rec: EpochRecord, valid: Metrics | null) => void;
  /** Checked every step; a cancelled run throws CancelledError and the last epoch checkpoint stays resumable. */
  signal?: CancelSignal;
}

/** Cumulative seconds spent in each part of the training steps. */
export interface TrainTiming {
  forward: number;
  backward: number;
  optimizer: number;
  data: number;
}

export interface TrainSasrecResult {
  bestEpoch: number;
  valid: Metrics;
  /** Best weights (by validation NDCG@10). */
  checkpointPath: string;
  history: EpochRecord[];
  stoppedEarly: boolean;
  timing: TrainTiming;
}

export const CHECKPOINT_FILE = 'checkpoint.safetensors';
export const BEST_FILE = 'best.safetensors';

async function ensureBackend(): Promise<void> {
  if (!isBackendInitialised()) await initBackend();
}

/** Training sequences: each user's training part, if it has at least one (input, target) pair. */
function trainingSequences(data: SequenceData): Int32Array[] {
  return data.users.map(trainPart).filter((s) => s.length >= 2);
}

/** Settings that must match between a checkpoint and the run resuming it (epochs/patience may change). */
function sameArchitecture(a: SasrecConfig, b: SasrecConfig): boolean {
  const keys: (keyof SasrecConfig)[] = ['batchSize', 'maxLen', 'hiddenSize', 'numBlocks', 'numHeads', 'dropout', 'learningRate', 'beta2', 'seed', 'evalEvery'];
  return keys.every((k) => a[k] === b[k]);
}

export async function trainSasrec(data: SequenceData, config: Partial<SasrecConfig>, opts: TrainSasrecOptions): Promise<TrainSasrecResult> {
  const cfg = sasrecConfigSchema.parse(config);
  if (cfg.hiddenSize % cfg.numHeads !== 0) throw new Error(`hiddenSize ${cfg.hiddenSize} is not divisible by numHeads ${cfg.numHeads}`);
  await ensureBackend();
  mkdirSync(opts.checkpointDir, { recursive: true });
  const ckptPath = join(opts.checkpointDir, CHECKPOINT_FILE);
  const bestPath = join(opts.checkpointDir, BEST_FILE);
  const shape = shapeOf(cfg, data.numItems);

  let rng = new Rng(cfg.seed);
  let startEpoch = 0;
  let history: EpochRecord[] = [];
  let early: EarlyStopState = { bestNdcg10: -1, bestEpoch: 0, bestValid: null, badEvals: 0, stoppedEarly: false };
  let initial: Map<string, Float32Array>;
  let resumed: ReturnType<typeof readTrainState> | null = null;
  if (opts.resume && existsSync(ckptPath)) {
    resumed = readTrainState(ckptPath);
    if (resumed.numItems !== data.numItems) {
      throw new Error(`${ckptPath}: checkpoint has ${resumed.numItems} items, dataset has ${data.numItems}`);
    }
    if (!sameArchitecture(resumed.config, cfg)) throw new Error(`${ckptPath}: checkpoint was trained with a different configuration`);
    initial = resumed.params;
    rng = new Rng(resumed.rng);
    startEpoch = resumed.epoch;
    history = resumed.history;
    early = resumed.early;
  } else {
    initial = initSasrecParams(shape, rng);
  }

  const model = new SasrecModel(shape, initial);
  const adam = new Adam(model.params, { learningRate: cfg.learningRate, beta1: 0.9, beta2: cfg.beta2 });
  if (resumed) adam.load(resumed.adamStep, resumed.adamM, resumed.adamV);
  const timing: TrainTiming = { forward: 0, backward: 0, optimizer: 0, data: 0 };
  try {
    const seqs = trainingSequences(data);
    if (seqs.length === 0) throw new Error('No user has enough training interactions to train SASRec');
    const stepsPerEpoch = Math.ceil(seqs.length / cfg.batchSize);
    const totalSteps = stepsPerEpoch * cfg.epochs;
    const L = cfg.maxLen;
    const varList = [...model.params.values()];
    const names = [...model.params.keys()];
    const runStart = performance.now();
    let stepsThisRun = 0;
    const scorer: Scorer = { scoreBatch: (h) => model.scoreNext(h) };

    for (let epoch = startEpoch + 1; epoch <= cfg.epochs && !early.stoppedEarly; epoch++) {
      const epochStart = performance.now();
      const order = Int32Array.from(seqs.keys());
      rng.shuffle(order);
      let lossSum = 0;
      for (let s = 0; s < stepsPerEpoch; s++) {
        throwIfCancelled(opts.signal);
        let t0 = performance.now();
        const members = order.subarray(s * cfg.batchSize, (s + 1) * cfg.batchSize);
        const B = members.length;
        const inputs = new Int32Array(B * L);
        const targets = new Int32Array(B * L);
        members.forEach((u, b) => {
          const seq = seqs[u];
          padLeftInto(seq.subarray(0, seq.length - 1), L, inputs, b * L);
          padLeftInto(seq.subarray(1), L, targets, b * L);
        });
        timing.data += (performance.now() - t0) / 1000;

        t0 = performance.now();
        let forwardEnd = t0;
        const { value, grads } = tf.variableGrads(() => {
          const l = model.loss(inputs, targets, B, rng);
          forwardEnd = performance.now();
          return l;
        }, varList);
        const loss = value.dataSync()[0];
        const t1 = performance.now();
        timing.forward += (forwardEnd - t0) / 1000;
        timing.backward += (t1 - forwardEnd) / 1000;
        const named: tf.NamedTensorMap = {};
        varList.forEach((v, i) => (named[names[i]] = grads[v.name]));
        adam.apply(model.params, named);
        value.dispose();
        tf.dispose(grads);
        timing.optimizer += (performance.now() - t1) / 1000;
        if (!Number.isFinite(loss)) throw new Error(`Training diverged: loss ${loss} at epoch ${epoch}, step ${s + 1}`);
        lossSum += loss;

        stepsThisRun++;
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
          writeWeights(bestPath, { config: cfg, numItems: data.numItems, datasetId: data.datasetId, epoch, valid, params: model.snapshot() });
        } else {
          early = { ...early, badEvals: early.badEvals + 1, stoppedEarly: early.badEvals + 1 >= cfg.patience };
        }
      }
      const rec: EpochRecord = { epoch, loss: lossSum / stepsPerEpoch, validNdcg10: valid ? valid.ndcg10 : null, seconds };
      history = [...history, rec];
      writeTrainState(ckptPath, {
        config: cfg,
        numItems: data.numItems,
        datasetId: data.datasetId,
        epoch,
        adamStep: adam.step,
        rng: rng.state(),
        early,
        history,
        params: model.snapshot(),
        adamM: snapshotAll(adam.m),
        adamV: snapshotAll(adam.v)
      });
      opts.onEpoch?.(rec, valid);
    }
    if (!early.bestValid) throw new Error(`${ckptPath}: run finished without a validation result`);
    return { bestEpoch: early.bestEpoch, valid: early.bestValid, checkpointPath: bestPath, history, stoppedEarly: early.stoppedEarly, timing };
  } finally {
    model.dispose();
    adam.dispose();
  }
}

function snapshotAll(vars: Map<string, tf.Variable>): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [name, v] of vars) out.set(name, v.dataSync().slice() as Float32Array);
  return out;
}

/** A scorer backed by saved SASRec weights (best or training checkpoint). Call dispose() when done. */
export async function loadSasrecScorer(checkpointPath: string, data: SequenceData): Promise<Scorer & { dispose(): void }> {
  await ensureBackend();
  const w = readWeights(checkpointPath);
  if (w.numItems !== data.numItems) {
    throw new Error(`${checkpointPath}: checkpoint has ${w.numItems} items, dataset ${data.datasetId} has ${data.numItems}`);
  }
  const model = new SasrecModel(shapeOf(w.config, w.numItems), w.params);
  return { scoreBatch: (h) => model.scoreNext(h), dispose: () => model.dispose() };
}
