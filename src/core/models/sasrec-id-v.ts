// SASRec_ID+V (MicroLens benchmark, ID + visual side information): SASRec (sasrec.ts, RecBole-style) where
// every item's representation — at the input and as the tied output table — is its ID embedding plus a
// learned linear projection W_v of its frozen image feature (zero for items without an image, which then
// fall back to ID only). The Transformer is SASRec's own encoder (sasrecEncoder) given the fused table.
import * as tf from '@tensorflow/tfjs-core';
import type { SasrecConfig } from '../../shared/api';
import { trainPart } from '../data/types';
import type { Rng } from '../tensor/rng';
import type { ModelContext, ModelSpec, ShardLoss, TrainableModel } from '../train/model-spec';
import { FrozenFeatures, fusedItemTable } from '../vision/projection';
import { makeVariables, normalValues } from './cf/tables';
import { initSasrecParams, lengthGroupedLoss, nextItemPairs, sasrecEncoder, padLeftInto, sasrecParamShapes, type SasrecShape } from './sasrec';
import { batchMembers, shardMembers } from './seq/batches';
import { readScores, readScoresAsync, type ScoreChunks } from './score-read';

export type SasrecIdVConfig = SasrecConfig;

const MODEL = 'SASRec_ID+V';

function shapeOf(config: SasrecIdVConfig, ctx: ModelContext): SasrecShape {
  if (config.hiddenSize % config.numHeads !== 0) throw new Error(`${MODEL}: hiddenSize ${config.hiddenSize} is not divisible by numHeads ${config.numHeads}`);
  return { numItems: ctx.data.numItems, maxLen: config.maxLen, hiddenSize: config.hiddenSize, numBlocks: config.numBlocks, numHeads: config.numHeads, dropout: config.dropout };
}

function featuresOf(ctx: ModelContext): NonNullable<ModelContext['itemFeatures']> {
  if (!ctx.itemFeatures) throw new Error(`${MODEL} needs item image features (ModelContext.itemFeatures)`);
  return ctx.itemFeatures;
}

function idVShapes(config: SasrecIdVConfig, ctx: ModelContext): [string, number[]][] {
  return [...sasrecParamShapes(shapeOf(config, ctx)), ['vis_proj.w', [featuresOf(ctx).dim, config.hiddenSize]]];
}

export class SasrecIdVModel implements TrainableModel {
  readonly params: Map<string, tf.Variable>;
  readonly shape: SasrecShape;
  private readonly features: FrozenFeatures;
  private readonly seqs: Int32Array[];
  private readonly batchSize: number;
  private order: Int32Array | null = null;

  constructor(config: SasrecIdVConfig, ctx: ModelContext, values: Map<string, Float32Array>) {
    this.shape = shapeOf(config, ctx);
    this.params = makeVariables('sasrec_id_v', idVShapes(config, ctx), values);
    this.features = new FrozenFeatures(featuresOf(ctx), ctx.data.numItems, MODEL);
    // As SASRec: each user's training part with at least one (input, target) pair.
    this.seqs = ctx.data.users.map(trainPart).filter((s) => s.length >= 2);
    this.batchSize = config.batchSize;
  }

  private p(name: string): tf.Variable {
    return this.params.get(name)!;
  }

  /** ID embedding + W_v · feature for every item ((numItems + 1) × d). */
  itemTable(): tf.Tensor2D {
    return fusedItemTable(this.p('item_emb'), this.features, this.p('vis_proj.w'));
  }

  /** Hidden states [B, L, d] for left-padded ids: SASRec's encoder with the fused table as item embedding. */
  forward(table: tf.Tensor2D, ids: Int32Array, batch: number, L: number, rng: Rng | null): tf.Tensor3D {
    return sasrecEncoder((name) => this.p(name), this.shape, table, ids, batch, L, rng);
  }

  /** Users in a seeded shuffled order, `batchSize` per step (as the SASRec trainer). */
  beginEpoch(rng: Rng): number {
    if (this.seqs.length === 0) throw new Error(`${MODEL}: no user has enough training interactions`);
    this.order = Int32Array.from(this.seqs.keys());
    rng.shuffle(this.order);
    return Math.ceil(this.seqs.length / this.batchSize);
  }

  private members(step: number): Int32Array {
    if (!this.order) throw new Error(`${MODEL}: stepLoss before beginEpoch`);
    return batchMembers(this.order, this.batchSize, step);
  }

  /** Mean cross-entropy over all items at every non-padding position of the given users; null: no target. */
  private lossOf(members: Int32Array, rng: Rng): ShardLoss | null {
    const M = this.shape.maxLen;
    const { inputs, targets } = nextItemPairs(this.seqs, members, M);
    const table = this.itemTable();
    return lengthGroupedLoss((ids, b, len) => this.forward(table, ids, b, len, rng), table, inputs, targets, members.length, M);
  }

  stepLoss(step: number, rng: Rng): tf.Scalar {
    return this.lossOf(this.members(step), rng)?.loss ?? tf.scalar(0);
  }

  shardLoss(step: number, shard: number, shards: number, rng: Rng): ShardLoss | null {
    const members = shardMembers(this.members(step), (u) => this.seqs[u].length, shard, shards);
    return members.length ? this.lossOf(members, rng) : null;
  }

  private *scoreChunks(histories: Int32Array[]): ScoreChunks {
    const L = Math.max(1, Math.min(this.shape.maxLen, Math.max(...histories.map((h) => h.length))));
    const B = histories.length;
    const ids = new Int32Array(B * L);
    histories.forEach((hist, b) => padLeftInto(hist, L, ids, b * L));
    const scores = tf.tidy(() => {
      const table = this.itemTable();
      const h = this.forward(table, ids, B, L, null);
      const last = tf.reshape(tf.slice(h, [0, L - 1, 0], [B, 1, -1]), [B, this.shape.hiddenSize]) as tf.Tensor2D;
      return tf.matMul(last, tf.transpose(table) as tf.Tensor2D);
    });
    yield { offset: 0, scores };
  }

  scoreBatch(histories: Int32Array[]): Float32Array {
    return readScores({ rows: histories.length, width: this.shape.numItems + 1, maskPadding: true }, this.scoreChunks(histories));
  }

  scoreBatchAsync(histories: Int32Array[]): Promise<Float32Array> {
    return readScoresAsync({ rows: histories.length, width: this.shape.numItems + 1, maskPadding: true }, this.scoreChunks(histories));
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
    this.params.clear();
    this.features.dispose();
  }
}

export const sasrecIdVSpec: ModelSpec<SasrecIdVConfig> = {
  kind: 'sasrec_id_v',
  needsItemFeatures: true,
  paramShapes: idVShapes,
  /** SASRec's initialisation, then W_v ~ N(0, 0.02) as the reference's other linear weights. */
  init(config, ctx, rng) {
    const values = initSasrecParams(shapeOf(config, ctx), rng);
    const [, [dim, d]] = idVShapes(config, ctx).at(-1)!;
    values.set('vis_proj.w', normalValues(dim * d, 0.02, rng));
    return values;
  },
  build: (config, ctx, values) => new SasrecIdVModel(config, ctx, values),
  optimizer: (config) => ({ learningRate: config.learningRate, beta1: 0.9, beta2: config.beta2 })
};
