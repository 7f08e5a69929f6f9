// SASRec checkpoints in safetensors: `best.safetensors` (weights + config, what scorers load) and
// `checkpoint.safetensors` (weights + Adam moments + RNG/early-stopping/history state, what resume loads).
import type { EpochRecord, Metrics } from '../../shared/types';
import type { SasrecConfig } from '../../shared/api';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../tensor/safetensors';
import type { RngState } from '../tensor/rng';
import { sasrecParamShapes, type SasrecShape } from '../models/sasrec';

export const WEIGHTS_FORMAT = 'almostrec-sasrec-weights/1';
export const TRAIN_STATE_FORMAT = 'almostrec-sasrec-train-state/1';

export interface EarlyStopState {
  bestNdcg10: number;
  bestEpoch: number;
  bestValid: Metrics | null;
  /** Evaluations since the last improvement. */
  badEvals: number;
  stoppedEarly: boolean;
}

export interface TrainState {
  config: SasrecConfig;
  numItems: number;
  datasetId: number;
  epoch: number;
  adamStep: number;
  rng: RngState;
  early: EarlyStopState;
  history: EpochRecord[];
  params: Map<string, Float32Array>;
  adamM: Map<string, Float32Array>;
  adamV: Map<string, Float32Array>;
}

export function shapeOf(config: SasrecConfig, numItems: number): SasrecShape {
  return {
    numItems,
    maxLen: config.maxLen,
    hiddenSize: config.hiddenSize,
    numBlocks: config.numBlocks,
    numHeads: config.numHeads,
    dropout: config.dropout
  };
}

function tensorsFrom(prefix: string, values: Map<string, Float32Array>, shape: SasrecShape, out: Record<string, TensorToWrite>): void {
  for (const [name, dims] of sasrecParamShapes(shape)) {
    out[prefix + name] = { dtype: 'F32', shape: dims, data: values.get(name)! };
  }
}

function valuesFrom(file: string, prefix: string, tensors: Map<string, { data: unknown; shape: number[] }>, shape: SasrecShape): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [name, dims] of sasrecParamShapes(shape)) {
    const t = tensors.get(prefix + name);
    if (!t) throw new Error(`${file}: missing tensor "${prefix + name}"`);
    if (!(t.data instanceof Float32Array) || t.shape.join(',') !== dims.join(',')) {
      throw new Error(`${file}: tensor "${prefix + name}" has shape [${t.shape}], expected [${dims}] float`);
    }
    out.set(name, t.data);
  }
  return out;
}

function parseJson<T>(file: string, meta: Record<string, string>, key: string): T {
  const raw = meta[key];
  if (raw === undefined) throw new Error(`${file}: metadata lacks "${key}"`);
  try {
    return JSON.parse(raw) as T;
  } catch {
    throw new Error(`${file}: metadata "${key}" is not valid JSON`);
  }
}

export interface SasrecWeights {
  config: SasrecConfig;
  numItems: number;
  datasetId: number;
  epoch: number;
  valid: Metrics | null;
  params: Map<string, Float32Array>;
}

export function writeWeights(path: string, w: SasrecWeights): void {
  const tensors: Record<string, TensorToWrite> = {};
  tensorsFrom('', w.params, shapeOf(w.config, w.numItems), tensors);
  writeSafetensors(path, tensors, {
    format: WEIGHTS_FORMAT,
    model: 'sasrec',
    config: JSON.stringify(w.config),
    numItems: String(w.numItems),
    datasetId: String(w.datasetId),
    epoch: String(w.epoch),
    valid: JSON.stringify(w.valid)
  });
}

export function readWeights(path: string): SasrecWeights {
  const { tensors, metadata } = readSafetensors(path);
  if (metadata.format !== WEIGHTS_FORMAT && metadata.format !== TRAIN_STATE_FORMAT) {
    throw new Error(`${path}: not a SASRec checkpoint (format "${metadata.format ?? 'none'}")`);
  }
  const config = parseJson<SasrecConfig>(path, metadata, 'config');
  const numItems = Number(metadata.numItems);
  if (!Number.isInteger(numItems) || numItems < 1) throw new Error(`${path}: bad numItems "${metadata.numItems}"`);
  const prefix = metadata.format === TRAIN_STATE_FORMAT ? 'param.' : '';
  return {
    config,
    numItems,
    datasetId: Number(metadata.datasetId),
    epoch: Number(metadata.epoch),
    valid: metadata.valid ? parseJson<Metrics | null>(path, metadata, 'valid') : null,
    params: valuesFrom(path, prefix, tensors, shapeOf(config, numItems))
  };
}

export function writeTrainState(path: string, s: TrainState): void {
  const shape = shapeOf(s.config, s.numItems);
  const tensors: Record<string, TensorToWrite> = {};
  tensorsFrom('param.', s.params, shape, tensors);
  tensorsFrom('adam_m.', s.adamM, shape, tensors);
  tensorsFrom('adam_v.', s.adamV, shape, tensors);
  writeSafetensors(path, tensors, {
    format: TRAIN_STATE_FORMAT,
    model: 'sasrec',
    config: JSON.stringify(s.config),
    numItems: String(s.numItems),
    datasetId: String(s.datasetId),
    epoch: String(s.epoch),
    adamStep: String(s.adamStep),
    rng: JSON.stringify(s.rng),
    early: JSON.stringify(s.early),
    history: JSON.stringify(s.history)
  });
}

export function readTrainState(path: string): TrainState {
  const { tensors, metadata } = readSafetensors(path);
  if (metadata.format !== TRAIN_STATE_FORMAT) {
    throw new Error(`${path}: not a SASRec training checkpoint (format "${metadata.format ?? 'none'}")`);
  }
  const config = parseJson<SasrecConfig>(path, metadata, 'config');
  const numItems = Number(metadata.numItems);
  const shape = shapeOf(config, numItems);
  const rng = parseJson<RngState>(path, metadata, 'rng');
  if (!Array.isArray(rng) || rng.length !== 4) throw new Error(`${path}: bad RNG state`);
  return {
    config,
    numItems,
    datasetId: Number(metadata.datasetId),
    epoch: Number(metadata.epoch),
    adamStep: Number(metadata.adamStep),
    rng,
    early: parseJson<EarlyStopState>(path, metadata, 'early'),
    history: parseJson<EpochRecord[]>(path, metadata, 'history'),
    params: valuesFrom(path, 'param.', tensors, shape),
    adamM: valuesFrom(path, 'adam_m.', tensors, shape),
    adamV: valuesFrom(path, 'adam_v.', tensors, shape)
  };
}
