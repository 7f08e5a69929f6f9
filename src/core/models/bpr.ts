// BPR-MF (Rendle et al. 2009) as RecBole's BPR: user and item embeddings (xavier-normal init), score =
// ⟨u, i⟩, loss = −mean log σ(s⁺ − s⁻) with one uniformly sampled unseen negative per training pair.
// A user-ID model: trained on each user's training part only; at evaluation each history is mapped back to
// its user (HistoryIndex), and an unknown history is folded in as the mean of its items' embeddings.
import * as tf from '@tensorflow/tfjs-core';
import type { TrainingConfig } from '../../shared/api';
import type { ModelContext, ModelSpec, TrainableModel } from '../train/model-spec';
import { embedding } from '../tensor/ops';
import type { Rng } from '../tensor/rng';
import { HistoryIndex, sampleNegative, shuffledOrder, trainingPairs, type TrainingPairs } from './cf/interactions';
import { makeVariables, normalValues, userVectors } from './cf/tables';
import { readScores, readScoresAsync, type ScoreChunks } from './score-read';

export interface BprConfig extends TrainingConfig {
  embeddingSize: number;
}

function bprShapes(config: BprConfig, ctx: ModelContext): [string, number[]][] {
  const d = config.embeddingSize;
  return [
    ['user_emb', [ctx.data.users.length, d]],
    ['item_emb', [ctx.data.numItems + 1, d]]
  ];
}

export class BprModel implements TrainableModel {
  readonly params: Map<string, tf.Variable>;
  /** Histories scored by fold-in since construction (0 during a normal evaluation). */
  foldIns = 0;
  private readonly pairs: TrainingPairs;
  private readonly index: HistoryIndex;
  private readonly numItems: number;
  private readonly batchSize: number;
  private epoch: { users: Int32Array; pos: Int32Array; neg: Int32Array } | null = null;

  constructor(config: BprConfig, ctx: ModelContext, values: Map<string, Float32Array>) {
    if (!(config.batchSize >= 1)) throw new Error(`BPR: batchSize must be ≥ 1, got ${config.batchSize}`);
    this.params = makeVariables('bpr', bprShapes(config, ctx), values);
    this.pairs = trainingPairs(ctx.data);
    this.index = new HistoryIndex(ctx.data);
    this.numItems = ctx.data.numItems;
    this.batchSize = config.batchSize;
  }

  private get userEmb(): tf.Tensor2D {
    return this.params.get('user_emb')! as tf.Tensor as tf.Tensor2D;
  }

  private get itemEmb(): tf.Tensor2D {
    return this.params.get('item_emb')! as tf.Tensor as tf.Tensor2D;
  }

  /** All training pairs in a shuffled order, each with one negative the user has not seen in training. */
  beginEpoch(rng: Rng): number {
    const n = this.pairs.users.length;
    if (n === 0) throw new Error('BPR: the dataset has no training interactions');
    const order = shuffledOrder(n, rng);
    const users = new Int32Array(n);
    const pos = new Int32Array(n);
    const neg = new Int32Array(n);
    for (let j = 0; j < n; j++) {
      const u = this.pairs.users[order[j]];
      users[j] = u;
      pos[j] = this.pairs.items[order[j]];
      neg[j] = sampleNegative(rng, this.pairs.seen[u], this.numItems);
    }
    this.epoch = { users, pos, neg };
    return Math.ceil(n / this.batchSize);
  }

  /** The current epoch's (user, positive, negative) triples of step `step`, for tests and tools. */
  stepTriples(step: number): { users: Int32Array; pos: Int32Array; neg: Int32Array } {
    if (!this.epoch) throw new Error('BPR: stepLoss before beginEpoch');
    const start = step * this.batchSize;
    const end = Math.min(start + this.batchSize, this.epoch.users.length);
    if (step < 0 || start >= end) throw new Error(`BPR: step ${step} outside this epoch`);
    const { users, pos, neg } = this.epoch;
    return { users: users.subarray(start, end), pos: pos.subarray(start, end), neg: neg.subarray(start, end) };
  }

  stepLoss(step: number): tf.Scalar {
    const t = this.stepTriples(step);
    const u = embedding(this.userEmb, tf.tensor1d(t.users, 'int32'));
    const p = embedding(this.itemEmb, tf.tensor1d(t.pos, 'int32'), 0);
    const n = embedding(this.itemEmb, tf.tensor1d(t.neg, 'int32'), 0);
    const diff = tf.sum(tf.mul(u, tf.sub(p, n)), 1);
    // −log σ(x) = softplus(−x), tfjs's numerically stable kernel.
    return tf.mean(tf.softplus(tf.neg(diff))) as tf.Scalar;
  }

  /** ⟨u, i⟩ for every item: one plain matmul against the item table transposed once per call. */
  private *scoreChunks(histories: Int32Array[]): ScoreChunks {
    const scores = tf.tidy(() => {
      const { vectors, foldIns } = userVectors(histories, this.index, this.userEmb, this.itemEmb);
      this.foldIns += foldIns;
      return tf.matMul(vectors, tf.transpose(this.itemEmb) as tf.Tensor2D);
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
  }
}

export const bprSpec: ModelSpec<BprConfig> = {
  kind: 'bpr',
  paramShapes: bprShapes,
  /** RecBole's xavier_normal_ on both tables (std = √(2 / (rows + d))); the padding item row is zero. */
  init(config, ctx, rng) {
    const values = new Map<string, Float32Array>();
    for (const [name, [rows, d]] of bprShapes(config, ctx)) {
      const v = normalValues(rows * d, Math.sqrt(2 / (rows + d)), rng);
      if (name === 'item_emb') v.fill(0, 0, d);
      values.set(name, v);
    }
    return values;
  },
  build: (config, ctx, values) => new BprModel(config, ctx, values),
  optimizer: (config) => ({ learningRate: config.learningRate })
};
