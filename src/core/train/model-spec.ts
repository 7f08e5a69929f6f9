// The contract between one training loop (train-model.ts: Adam, epochs, validation, early stopping,
// checkpoints, resume, progress, cancel) and each trainable model (SASRec, GRU4Rec, NextItNet, BPR, NCF,
// SASRec_ID+V, YouTube_ID+V). A model only says what its parameters are, how one step's loss is computed
// and how it scores; everything about running a job is shared.
import type * as tf from '@tensorflow/tfjs-core';
import type { TrainingConfig } from '../../shared/api';
import type { ModelKind } from '../../shared/models';
import type { SequenceData } from '../data/types';
import type { Scorer } from '../eval/evaluator';
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

/** What a model is built on: the dataset's sequences and, for visual models, the item features. */
export interface ModelContext {
  data: SequenceData;
  itemFeatures?: ItemFeatures;
}

export interface TrainableModel extends Scorer {
  /** Trainable variables under stable names; checkpoints and Adam state follow this map's order. */
  readonly params: Map<string, tf.Variable>;
  /**
   * Prepares one epoch of training examples (shuffling, negative sampling) drawing only from `rng`, the
   * run's single source of randomness (so a seed fixes the run and a checkpoint can resume it exactly).
   * Returns the number of steps in the epoch.
   */
  beginEpoch(rng: Rng): number;
  /** The mean loss of step `step` (0-based) of the current epoch; called inside tf.variableGrads. Dropout masks come from `rng`. */
  stepLoss(step: number, rng: Rng): tf.Scalar;
  /** Eval mode: scores B × (numItems + 1) for the next item after each history (column 0 = padding). */
  scoreBatch(histories: Int32Array[]): Float32Array;
  /** Frees the variables. */
  dispose(): void;
}

export interface OptimizerSettings {
  learningRate: number;
  beta1?: number;
  beta2?: number;
  /** L2 penalty added to the gradient (Adam, PyTorch semantics), e.g. RecBole's reg weights. */
  weightDecay?: number;
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
  /**
   * The item-embedding table usable as ALMOSTREC's M ((numItems + 1) × d_i, row 0 padding), for models
   * that have one (SASRec, GRU4Rec).
   */
  itemEmbeddings?(values: Map<string, Float32Array>, config: C): { table: Float32Array; dim: number };
}
