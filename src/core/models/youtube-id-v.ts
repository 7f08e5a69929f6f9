// YouTube_ID+V: the YouTube DNN candidate generator (Covington et al. 2016) as the MicroLens benchmark's
// ID + visual variant. Each history item is its ID embedding plus a learned projection W_v of its frozen
// image feature (zero for items without an image: ID only); the last maxLen history items are mean-pooled
// (padding excluded) → Linear(hiddenSize) → ReLU → dropout → Linear(embeddingSize) = user vector, scored
// against the same fused item table with a softmax cross-entropy over all items.
// Training examples: every position t ≥ 1 of every user's training part (input seq[max(0, t − maxLen) : t],
// target seq[t]), all of them each epoch in a seeded shuffled order.
import * as tf from '@tensorflow/tfjs-core';
import type { TrainingConfig } from '../../shared/api';
import { trainPart } from '../data/types';
import { dense, tiedSoftmaxCrossEntropy } from '../tensor/ops';
import type { Rng } from '../tensor/rng';
import type { ModelContext, ModelSpec, TrainableModel } from '../train/model-spec';
import { FrozenFeatures, fusedItemTable } from '../vision/projection';
import { makeVariables, normalValues, uniformValues } from './cf/tables';
import { readScores, readScoresAsync, type ScoreChunks } from './score-read';

export interface YoutubeIdVConfig extends TrainingConfig {
  maxLen: number;
  embeddingSize: number;
  hiddenSize: number;
  dropout: number;
}

const MODEL = 'YouTube_ID+V';

function featuresOf(ctx: ModelContext): NonNullable<ModelContext['itemFeatures']> {
  if (!ctx.itemFeatures) throw new Error(`${MODEL} needs item image features (ModelContext.itemFeatures)`);
  return ctx.itemFeatures;
}

function youtubeShapes(config: YoutubeIdVConfig, ctx: ModelContext): [string, number[]][] {
  const e = config.embeddingSize;
  const h = config.hiddenSize;
  return [
    ['item_emb', [ctx.data.numItems + 1, e]],
    ['vis_proj.w', [featuresOf(ctx).dim, e]],
    ['mlp.w1', [e, h]],
    ['mlp.b1', [h]],
    ['mlp.w2', [h, e]],
    ['mlp.b2', [e]]
  ];
}

/**
 * Left-padded ids (B × L) and mean-pooling weights (1 / history length at real items, 0 at padding) for
 * the last `maxLen` items of each history.
 */
export function poolingBatch(histories: ArrayLike<number>[], maxLen: number): { ids: Int32Array; weights: Float32Array; L: number } {
  const L = Math.max(1, Math.min(maxLen, Math.max(...histories.map((h) => h.length))));
  const ids = new Int32Array(histories.length * L);
  const weights = new Float32Array(histories.length * L);
  histories.forEach((hist, b) => {
    const n = Math.min(hist.length, L);
    for (let i = 0; i < n; i++) {
      const at = b * L + L - n + i;
      ids[at] = hist[hist.length - n + i];
      weights[at] = 1 / n;
    }
  });
  return { ids, weights, L };
}

export class YoutubeIdVModel implements TrainableModel {
  readonly params: Map<string, tf.Variable>;
  private readonly features: FrozenFeatures;
  private readonly seqs: Int32Array[];
  /** Every training example as (sequence index, target position). */
  private readonly examples: { seq: Int32Array; pos: Int32Array };
  private readonly config: YoutubeIdVConfig;
  private readonly numItems: number;
  private order: Int32Array | null = null;

  constructor(config: YoutubeIdVConfig, ctx: ModelContext, values: Map<string, Float32Array>) {
    if (!(config.batchSize >= 1)) throw new Error(`${MODEL}: batchSize must be ≥ 1, got ${config.batchSize}`);
    this.config = config;
    this.numItems = ctx.data.numItems;
    this.params = makeVariables('youtube_id_v', youtubeShapes(config, ctx), values);
    this.features = new FrozenFeatures(featuresOf(ctx), ctx.data.numItems, MODEL);
    this.seqs = ctx.data.users.map(trainPart).filter((s) => s.length >= 2);
    const total = this.seqs.reduce((n, s) => n + s.length - 1, 0);
    const seq = new Int32Array(total);
    const pos = new Int32Array(total);
    let k = 0;
    this.seqs.forEach((s, i) => {
      for (let t = 1; t < s.length; t++, k++) {
        seq[k] = i;
        pos[k] = t;
      }
    });
    this.examples = { seq, pos };
  }

  private p(name: string): tf.Variable {
    return this.params.get(name)!;
  }

  /** ID embedding + W_v · feature for every item ((numItems + 1) × embeddingSize). */
  itemTable(): tf.Tensor2D {
    return fusedItemTable(this.p('item_emb'), this.features, this.p('vis_proj.w'));
  }

  /** User vectors [B, embeddingSize] for histories (dropout masks from `rng` when training). */
  userVectors(table: tf.Tensor2D, histories: ArrayLike<number>[], rng: Rng | null): tf.Tensor2D {
    const B = histories.length;
    const e = this.config.embeddingSize;
    const { ids, weights, L } = poolingBatch(histories, this.config.maxLen);
    const items = tf.reshape(tf.gather(table, tf.tensor1d(ids, 'int32')), [B, L, e]);
    const pooled = tf.sum(tf.mul(items, tf.tensor3d(weights, [B, L, 1])), 1);
    let hidden = tf.relu(dense(pooled, this.p('mlp.w1'), this.p('mlp.b1')));
    const pDrop = this.config.dropout;
    if (rng && pDrop > 0) hidden = tf.mul(hidden, tf.tensor(rng.dropoutMask(tf.util.sizeFromShape(hidden.shape), pDrop), hidden.shape));
    return dense(hidden, this.p('mlp.w2'), this.p('mlp.b2')) as tf.Tensor2D;
  }

  beginEpoch(rng: Rng): number {
    const n = this.examples.seq.length;
    if (n === 0) throw new Error(`${MODEL}: no user has enough training interactions`);
    this.order = Int32Array.from({ length: n }, (_, i) => i);
    rng.shuffle(this.order);
    return Math.ceil(n / this.config.batchSize);
  }

  /** The step's (history, target) examples, for tests and tools. */
  stepExamples(step: number): { histories: Int32Array[]; targets: Int32Array } {
    if (!this.order) throw new Error(`${MODEL}: stepLoss before beginEpoch`);
    const members = this.order.subarray(step * this.config.batchSize, (step + 1) * this.config.batchSize);
    if (members.length === 0) throw new Error(`${MODEL}: step ${step} outside this epoch`);
    const histories: Int32Array[] = [];
    const targets = new Int32Array(members.length);
    members.forEach((j, b) => {
      const s = this.seqs[this.examples.seq[j]];
      const t = this.examples.pos[j];
      histories.push(s.subarray(Math.max(0, t - this.config.maxLen), t));
      targets[b] = s[t];
    });
    return { histories, targets };
  }

  stepLoss(step: number, rng: Rng): tf.Scalar {
    const { histories, targets } = this.stepExamples(step);
    const table = this.itemTable();
    return tiedSoftmaxCrossEntropy(this.userVectors(table, histories, rng), table, targets);
  }

  private *scoreChunks(histories: Int32Array[]): ScoreChunks {
    const scores = tf.tidy(() => {
      const table = this.itemTable();
      return tf.matMul(this.userVectors(table, histories, null), tf.transpose(table) as tf.Tensor2D);
    });
    yield { offset: 0, scores };
  }

  scoreBatch(histories: Int32Array[]): Float32Array {
    return readScores({ rows: histories.length, width: this.numItems + 1, maskPadding: true }, this.scoreChunks(histories));
  }

  scoreBatchAsync(histories: Int32Array[]): Promise<Float32Array> {
    return readScoresAsync({ rows: histories.length, width: this.numItems + 1, maskPadding: true }, this.scoreChunks(histories));
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
    this.params.clear();
    this.features.dispose();
  }
}

export const youtubeIdVSpec: ModelSpec<YoutubeIdVConfig> = {
  kind: 'youtube_id_v',
  needsItemFeatures: true,
  paramShapes: youtubeShapes,
  /**
   * Embeddings and W_v ~ N(0, 0.02) (padding row zero); MLP layers as PyTorch's nn.Linear default,
   * U(±1/√fan_in) for weights and biases.
   */
  init(config, ctx, rng) {
    const values = new Map<string, Float32Array>();
    for (const [name, shape] of youtubeShapes(config, ctx)) {
      const size = shape.reduce((a, b) => a * b, 1);
      let v: Float32Array;
      if (name === 'item_emb' || name === 'vis_proj.w') v = normalValues(size, 0.02, rng);
      else {
        const fanIn = name.endsWith('1') ? config.embeddingSize : config.hiddenSize;
        v = uniformValues(size, 1 / Math.sqrt(fanIn), rng);
      }
      if (name === 'item_emb') v.fill(0, 0, config.embeddingSize);
      values.set(name, v);
    }
    return values;
  },
  build: (config, ctx, values) => new YoutubeIdVModel(config, ctx, values),
  optimizer: (config) => ({ learningRate: config.learningRate })
};
