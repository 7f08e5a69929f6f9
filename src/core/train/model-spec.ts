// The contract between one training loop (train-model.ts: Adam, epochs, validation, early stopping,
// checkpoints, resume, progress, cancel) and each trainable model (SASRec, GRU4Rec, NextItNet, BPR, NCF,
// SASRec_ID+V, YouTube_ID+V, ALMOSTREC). A model only says what its parameters are, how one step's loss is
// computed and how it scores; everything about running a job is shared.
import type * as tf from '@tensorflow/tfjs-core';
import type { TrainingConfig } from '../../shared/api';
import type { ModelKind } from '../../shared/models';
import type { LlavaConfig } from '../backbone/config';
import type { TextTokenizer } from '../backbone/tokenizer';
import type { SequenceData } from '../data/types';
import type { Scorer } from '../eval/evaluator';
import type { CancelSignal, ProgressFn } from '../progress';
import type { Rng } from '../tensor/rng';

export type TrainableKind = Exclude<ModelKind, 'popularity'>;

/** Frozen per-item image features (e.g. a pretrained encoder's pooled output), indexed like SequenceData. */
export interface ItemFeatures {
  encoderId: string;
  dim: number;
  /** (numItems + 1) × dim, row-major; row 0 (padding) and rows of items without an image are zeros. */
  values: Float32Array;
  /** has[i] = 1 when item index i has an image feature. */
  has: Uint8Array;
}

/**
 * What a model built on a LLaVA-family backbone (ALMOSTREC) reads besides the sequences; loaded from the
 * catalog by models/almostrec-context.ts. Everything here is frozen; the tensors belong to this object.
 */
export interface BackboneInputs {
  backbone: { id: number; name: string; path: string; config: LlavaConfig; weights: Map<string, tf.Tensor> };
  tokenizer: TextTokenizer;
  datasetName: string;
  /** M: a finished sequential run's item_embeddings, (numItems + 1) × dim, row 0 padding; null for a model that reads no IDs (TALLRec). */
  itemTable: { values: Float32Array; dim: number; runId: number; model: string; path: string } | null;
  /** Title tokens (no BOS) of every item index, uncut; [] for the padding row. */
  titleTokens: number[][];
  /** The backbone's cached visual tokens per item index (null: no image); null when images are not used. */
  visual: { cacheId: string; tokensPerImage: number; dim: number; tokens: (Float32Array | null)[] } | null;
  /** Frees the backbone weights. */
  dispose(): void;
}

/**
 * BackboneInputs without what cannot cross a thread boundary (tensors, the tokenizer): a replica worker
 * reloads the weights and tokenizer from the backbone's folder, once (see models/almostrec-context.ts).
 */
export type BackboneSource = Omit<BackboneInputs, 'backbone' | 'tokenizer' | 'dispose'> & { backbone: Pick<BackboneInputs['backbone'], 'id' | 'name' | 'path'> };

/** The cloneable part of BackboneInputs. */
export function backboneSource(b: BackboneInputs): BackboneSource {
  return {
    backbone: { id: b.backbone.id, name: b.backbone.name, path: b.backbone.path },
    datasetName: b.datasetName,
    itemTable: b.itemTable,
    titleTokens: b.titleTokens,
    visual: b.visual
  };
}

/** What a model is built on: the dataset's sequences and, for visual models, the item features. */
export interface ModelContext {
  data: SequenceData;
  itemFeatures?: ItemFeatures;
  /** For models with `needsBackbone`. */
  backbone?: BackboneInputs;
}

/** One shard's part of a step: its mean loss over `count` targets (the step's loss is the count-weighted mean). */
export interface ShardLoss {
  loss: tf.Scalar;
  count: number;
}

export interface TrainableModel extends Scorer {
  /** Trainable variables under stable names; checkpoints and Adam state follow this map's order. */
  readonly params: Map<string, tf.Variable>;
  /**
   * Prepares one epoch of training examples (shuffling, negative sampling) drawing only from `rng`, the
   * run's single source of randomness (so a seed fixes the run and a checkpoint can resume it exactly).
   * `epoch` is the 1-based epoch being prepared (the loop passes it, in a resumed run too) for schedules over
   * the run such as LLaRA's curriculum; most models ignore it. Returns the number of steps in the epoch.
   */
  beginEpoch(rng: Rng, epoch?: number): number;
  /** The mean loss of step `step` (0-based) of the current epoch; called inside tf.variableGrads. Dropout masks come from `rng`. */
  stepLoss(step: number, rng: Rng): tf.Scalar;
  /**
   * Models that can split a step into independent shards implement this (data-parallel training, see
   * train/replicas.ts): the mean loss of shard `shard` of `shards` of step `step`, with dropout masks from
   * `rng`; null when the shard has no targets. Every shard must see the full regularisation terms, since the
   * step's loss is Σ count·loss / Σ count.
   */
  shardLoss?(step: number, shard: number, shards: number, rng: Rng): ShardLoss | null;
  /** Eval mode: scores B × (numItems + 1) for the next item after each history (column 0 = padding). */
  scoreBatch(histories: Int32Array[]): Float32Array;
  /**
   * scoreBatch read back asynchronously: the only way the webgpu backend reads in Node
   * (tensor/webgpu-backend.ts). Models that have it can score on webgpu; see scoreAsync.
   */
  scoreBatchAsync?(histories: Int32Array[]): Promise<Float32Array>;
  /** Frees the variables. */
  dispose(): void;
}

export interface OptimizerSettings {
  learningRate: number;
  beta1?: number;
  beta2?: number;
  /** L2 penalty added to the gradient (Adam, PyTorch semantics), e.g. RecBole's reg weights. */
  weightDecay?: number;
  /** Steps whose gradients are averaged into one optimizer update (default 1). */
  gradAccum?: number;
  /** Linear learning-rate warm-up over this many optimizer updates (default 0). */
  warmupSteps?: number;
  /** After the warm-up: constant (default), or a cosine decay to 0 at the last update of the run's epochs. */
  schedule?: 'constant' | 'cosine';
}

export interface ModelSpec<C extends TrainingConfig = TrainingConfig & Record<string, number>> {
  kind: TrainableKind;
  /** Parameter names and shapes for a config and context, in a fixed order. */
  paramShapes(config: C, ctx: ModelContext): [string, number[]][];
  /** Initial values (the model's own initialisation scheme) drawn from rng. */
  init(config: C, ctx: ModelContext, rng: Rng): Map<string, Float32Array>;
  /** A model over given values (initial, resumed, or best weights). */
  build(config: C, ctx: ModelContext, values: Map<string, Float32Array>): TrainableModel;
  optimizer(config: C): OptimizerSettings;
  /** Visual models need ctx.itemFeatures. */
  needsItemFeatures?: boolean;
  /** Models on a LLaVA-family backbone need ctx.backbone (built from the run config's references). */
  needsBackbone?: boolean;
  /**
   * Files written from the best weights once training has finished (beside the checkpoint), each registered
   * as a run artifact of its kind.
   */
  exportArtifacts?(checkpointPath: string, ctx: ModelContext): { kind: string; path: string }[];
  /**
   * A model's own evaluation besides Table 2's full ranking (LLaRA: HitRatio@1 and the valid ratio over
   * candidate lists), run on the best weights once training has finished; writes a file in `dir` and returns
   * it as a run artifact with a one-line summary.
   */
  ownEvaluation?(
    model: TrainableModel,
    data: SequenceData,
    dir: string,
    opts: { onProgress?: ProgressFn; signal?: CancelSignal }
  ): Promise<{ kind: string; path: string; summary: string }>;
  /**
   * The item-embedding table usable as ALMOSTREC's M ((numItems + 1) × d_i, row 0 padding), for models
   * that have one (SASRec, GRU4Rec).
   */
  itemEmbeddings?(values: Map<string, Float32Array>, config: C): { table: Float32Array; dim: number };
}

/** A model's scores through its asynchronous read when it has one (every backend), else scoreBatch. */
export function scoreAsync(model: Pick<TrainableModel, 'scoreBatch' | 'scoreBatchAsync'>, histories: Int32Array[]): Promise<Float32Array> | Float32Array {
  return model.scoreBatchAsync ? model.scoreBatchAsync(histories) : model.scoreBatch(histories);
}
