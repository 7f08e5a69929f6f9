// Model checkpoints in safetensors, for every trainable kind: `best.safetensors` (weights + config, what
// scorers load) and `checkpoint.safetensors` (weights + Adam moments + RNG/early-stopping/history state,
// what resume loads), each with the SHA-256 of its data in its metadata (a torn file is refused on read).
// Metadata names the model kind, its config, the dataset and (for visual models) the
// image encoder; tensors are checked name by name against the spec's shapes, and every error names the file.
import type { EpochRecord, Metrics } from '../../shared/types';
import { crashPoint } from '../crash-point';
import type { TrainableKind } from './model-spec';
import { readSafetensors, writeSafetensors, type TensorEntry, type TensorToWrite } from '../tensor/safetensors';
import type { RngState } from '../tensor/rng';

export const WEIGHTS_FORMAT = 'almostrec-weights/1';
export const TRAIN_STATE_FORMAT = 'almostrec-train-state/1';
/** Formats written before the generic loop (SASRec only, same tensor names); still readable. */
const LEGACY_WEIGHTS = 'almostrec-sasrec-weights/1';
const LEGACY_TRAIN_STATE = 'almostrec-sasrec-train-state/1';

export interface EarlyStopState {
  bestNdcg10: number;
  bestEpoch: number;
  bestValid: Metrics | null;
  /** Evaluations since the last improvement. */
  badEvals: number;
  stoppedEarly: boolean;
}

/** What identifies a checkpoint: which model, trained how, on what. */
export interface CheckpointHeader {
  kind: TrainableKind;
  config: Record<string, number>;
  numItems: number;
  datasetId: number;
  /** Image-feature encoder of a visual model's item features (null otherwise). */
  encoderId: string | null;
  epoch: number;
}

export interface ModelWeights extends CheckpointHeader {
  valid: Metrics | null;
  /** Parameter values in the order of `shapes`. */
  params: Map<string, Float32Array>;
}

export interface TrainState extends CheckpointHeader {
  adamStep: number;
  rng: RngState;
  early: EarlyStopState;
  history: EpochRecord[];
  params: Map<string, Float32Array>;
  adamM: Map<string, Float32Array>;
  adamV: Map<string, Float32Array>;
}

/** Parameter names and shapes, in the spec's order. */
export type ParamShapes = [string, number[]][];

function tensorsFrom(prefix: string, values: Map<string, Float32Array>, shapes: ParamShapes, out: Record<string, TensorToWrite>): void {
  for (const [name, dims] of shapes) {
    const data = values.get(name);
    if (!data) throw new Error(`checkpoint: no value for parameter "${name}"`);
    out[prefix + name] = { dtype: 'F32', shape: dims, data };
  }
}

function valuesFrom(file: string, prefix: string, tensors: Map<string, TensorEntry>, shapes: ParamShapes): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [name, dims] of shapes) {
    const t = tensors.get(prefix + name);
    if (!t) throw new Error(`${file}: missing tensor "${prefix + name}"`);
    if (!(t.data instanceof Float32Array) || t.dtype !== 'F32' || t.shape.join(',') !== dims.join(',')) {
      throw new Error(`${file}: tensor "${prefix + name}" has shape [${t.shape}] ${t.dtype}, expected [${dims}] F32`);
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

function headerMetadata(h: CheckpointHeader, format: string): Record<string, string> {
  const meta: Record<string, string> = {
    format,
    model: h.kind,
    config: JSON.stringify(h.config),
    numItems: String(h.numItems),
    datasetId: String(h.datasetId),
    epoch: String(h.epoch)
  };
  if (h.encoderId !== null) meta.encoder = h.encoderId;
  return meta;
}

function parseHeader(file: string, meta: Record<string, string>): CheckpointHeader {
  const config = parseJson<Record<string, number>>(file, meta, 'config');
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new Error(`${file}: metadata "config" is not an object`);
  const numItems = Number(meta.numItems);
  if (!Number.isInteger(numItems) || numItems < 1) throw new Error(`${file}: bad numItems "${meta.numItems}"`);
  if (!meta.model) throw new Error(`${file}: metadata lacks "model"`);
  return {
    kind: meta.model as TrainableKind,
    config,
    numItems,
    datasetId: Number(meta.datasetId),
    encoderId: meta.encoder ?? null,
    epoch: Number(meta.epoch)
  };
}

/** Reads and checks a file's header before its tensors are decoded against `shapesFor(header)`. */
function openCheckpoint(path: string, train: boolean): { header: CheckpointHeader; meta: Record<string, string>; tensors: Map<string, TensorEntry>; prefix: string } {
  const { tensors, metadata } = readSafetensors(path);
  const isTrain = metadata.format === TRAIN_STATE_FORMAT || metadata.format === LEGACY_TRAIN_STATE;
  const isWeights = metadata.format === WEIGHTS_FORMAT || metadata.format === LEGACY_WEIGHTS;
  if (train ? !isTrain : !isTrain && !isWeights) {
    throw new Error(`${path}: not ${train ? 'a training' : 'a model'} checkpoint (format "${metadata.format ?? 'none'}")`);
  }
  return { header: parseHeader(path, metadata), meta: metadata, tensors, prefix: isTrain ? 'param.' : '' };
}

export function writeWeights(path: string, w: ModelWeights, shapes: ParamShapes): void {
  const tensors: Record<string, TensorToWrite> = {};
  tensorsFrom('', w.params, shapes, tensors);
  writeSafetensors(path, tensors, { ...headerMetadata(w, WEIGHTS_FORMAT), valid: JSON.stringify(w.valid) }, { digest: true });
}

/** Weights from a best or training checkpoint; `shapesFor` gives the expected shapes for the stored header. */
export function readWeights(path: string, shapesFor: (h: CheckpointHeader) => ParamShapes): ModelWeights {
  const { header, meta, tensors, prefix } = openCheckpoint(path, false);
  return {
    ...header,
    valid: meta.valid ? parseJson<Metrics | null>(path, meta, 'valid') : null,
    params: valuesFrom(path, prefix, tensors, shapesFor(header))
  };
}

/**
 * The weights of a `kind` model trained on `data`'s dataset, with its stored config: the header must name
 * that kind, item count and dataset (every message names the file), and the tensors `shapes(config)`.
 */
export function readModelWeights<C>(
  path: string,
  kind: TrainableKind,
  data: { numItems: number; datasetId: number },
  shapes: (config: C) => ParamShapes
): { weights: ModelWeights; config: C } {
  let config: C | null = null;
  const weights = readWeights(path, (h) => {
    if (h.kind !== kind) throw new Error(`${path}: checkpoint is a ${h.kind} model, expected ${kind}`);
    if (h.numItems !== data.numItems || h.datasetId !== data.datasetId) {
      throw new Error(`${path}: checkpoint is for dataset ${h.datasetId} (${h.numItems} items), not dataset ${data.datasetId} (${data.numItems} items)`);
    }
    config = h.config as unknown as C;
    return shapes(config);
  });
  // readWeights calls shapesFor (which sets config) before it returns.
  return { weights, config: config as unknown as C };
}

export function writeTrainState(path: string, s: TrainState, shapes: ParamShapes): void {
  const tensors: Record<string, TensorToWrite> = {};
  tensorsFrom('param.', s.params, shapes, tensors);
  tensorsFrom('adam_m.', s.adamM, shapes, tensors);
  tensorsFrom('adam_v.', s.adamV, shapes, tensors);
  writeSafetensors(path, tensors, {
    ...headerMetadata(s, TRAIN_STATE_FORMAT),
    adamStep: String(s.adamStep),
    rng: JSON.stringify(s.rng),
    early: JSON.stringify(s.early),
    history: JSON.stringify(s.history)
  }, { digest: true, midWrite: () => crashPoint('checkpoint-write') });
}

export function readTrainState(path: string, shapesFor: (h: CheckpointHeader) => ParamShapes): TrainState {
  const { header, meta, tensors } = openCheckpoint(path, true);
  const rng = parseJson<RngState>(path, meta, 'rng');
  if (!Array.isArray(rng) || rng.length !== 4 || !rng.every((x) => Number.isInteger(x))) throw new Error(`${path}: bad RNG state`);
  const adamStep = Number(meta.adamStep);
  if (!Number.isInteger(adamStep) || adamStep < 0) throw new Error(`${path}: bad adamStep "${meta.adamStep}"`);
  const shapes = shapesFor(header);
  return {
    ...header,
    adamStep,
    rng,
    early: parseJson<EarlyStopState>(path, meta, 'early'),
    history: parseJson<EpochRecord[]>(path, meta, 'history'),
    params: valuesFrom(path, 'param.', tensors, shapes),
    adamM: valuesFrom(path, 'adam_m.', tensors, shapes),
    adamV: valuesFrom(path, 'adam_v.', tensors, shapes)
  };
}
