// GRU4Rec (Hidasi et al. 2016) as RecBole's GRU4Rec with the CE loss: item embedding (padding row 0) →
// dropout → GRU (numLayers, hiddenSize, no biases) → dense to embeddingSize → scores tied to the item table.
//
// Training differs from RecBole in one deliberate way: RecBole makes one example per prefix of each user's
// sequence and a loss only at its end; we train like SASRec on windows of a user's training part — inputs =
// seq[a..e−1), targets = seq[a+1..e), at most maxLen pairs, CE at every counted non-padding position — and
// the windows of an epoch cover every training target once (seq/batches.ts). For a causal model this is
// the same set of (history, next item) pairs (histories truncated to the window), computed in one pass
// instead of one pass per prefix.
//
// Inputs are left-padded (the last item in the last column, so the final state is the last step); padding
// steps keep the hidden state (gruSequence's mask), so the leading all-padding columns of a batch are
// dropped exactly.
import * as tf from '@tensorflow/tfjs-core';
import type { TrainingConfig } from '../../shared/api';
import { bmm, dense, embedding, tiedSoftmaxCrossEntropy } from '../tensor/ops';
import type { Rng } from '../tensor/rng';
import { gruSequence } from '../tensor/seq-ops';
import type { ModelContext, ModelSpec, ShardLoss, TrainableModel } from '../train/model-spec';
import { batchMembers, historyBatch, nextItemBatch, shardMembers, shuffledBatches, trainingWindows, type TrainingWindow, toTimeMajor, trainingSequences } from './seq/batches';
import { createVariables, disposeVariables, dropout, itemTable, normalValues, uniformValues } from './seq/params';
import { readScores, readScoresAsync, type ScoreChunks } from './score-read';

export interface Gru4recConfig extends TrainingConfig {
  maxLen: number;
  embeddingSize: number;
  hiddenSize: number;
  numLayers: number;
  dropout: number;
}

/** Parameter names and shapes in a fixed order. GRU weights are stored [in, 3H] (gates r, z, n) so x·W needs no transpose. */
export function gru4recParamShapes(config: Gru4recConfig, numItems: number): [string, number[]][] {
  const { embeddingSize: E, hiddenSize: H, numLayers } = config;
  const out: [string, number[]][] = [['item_emb', [numItems + 1, E]]];
  for (let l = 0; l < numLayers; l++) out.push([`gru${l}.w_ih`, [l === 0 ? E : H, 3 * H]], [`gru${l}.w_hh`, [H, 3 * H]]);
  out.push(['dense.w', [H, E]], ['dense.b', [E]]);
  return out;
}

/**
 * RecBole's initialisation: xavier-normal item table (row 0 zeroed here: it is padding and must read as M's
 * empty row), xavier-uniform GRU layer-0 weights; deeper GRU layers and the dense layer keep PyTorch's
 * defaults, U(±1/√fan_in) (nn.GRU: 1/√H).
 */
export function initGru4recParams(config: Gru4recConfig, numItems: number, rng: Rng): Map<string, Float32Array> {
  const { embeddingSize: E, hiddenSize: H } = config;
  const values = new Map<string, Float32Array>();
  for (const [name, shape] of gru4recParamShapes(config, numItems)) {
    const size = shape.reduce((a, b) => a * b, 1);
    let v: Float32Array;
    if (name === 'item_emb') {
      v = normalValues(size, Math.sqrt(2 / (numItems + 1 + E)), rng);
      v.fill(0, 0, E);
    } else if (name === 'gru0.w_ih' || name === 'gru0.w_hh') {
      v = uniformValues(size, Math.sqrt(6 / (shape[0] + shape[1])), rng);
    } else {
      v = uniformValues(size, 1 / Math.sqrt(H), rng); // deeper GRU layers; dense.w and dense.b (fan_in = H)
    }
    values.set(name, v);
  }
  return values;
}

export class Gru4recModel implements TrainableModel {
  readonly params: Map<string, tf.Variable>;
  private readonly seqs: Int32Array[];
  private readonly windows: TrainingWindow[];
  private order: Int32Array = new Int32Array(0);

  constructor(
    private readonly config: Gru4recConfig,
    private readonly numItems: number,
    values: Map<string, Float32Array>,
    ctx?: ModelContext
  ) {
    if (config.numLayers < 1) throw new Error(`GRU4Rec: numLayers must be ≥ 1, got ${config.numLayers}`);
    this.params = createVariables('GRU4Rec', gru4recParamShapes(config, numItems), values);
    this.seqs = ctx ? trainingSequences(ctx.data) : [];
    this.windows = trainingWindows(this.seqs, config.maxLen);
  }

  private p(name: string): tf.Tensor {
    return this.params.get(name)!;
  }

  /**
   * Last GRU layer's states, time-major [L·B, H] (row t·B + b), for time-major left-padded ids. With `rng`,
   * embedding dropout uses masks drawn from it (training); without, eval mode.
   */
  forward(idsTimeMajor: Int32Array, batch: number, len: number, rng: Rng | null): tf.Tensor2D {
    const { hiddenSize: H, numLayers } = this.config;
    if (idsTimeMajor.length !== batch * len) throw new Error(`GRU4Rec: ${idsTimeMajor.length} ids for batch ${batch} × length ${len}`);
    let mask: Float32Array | null = Float32Array.from(idsTimeMajor, (id) => (id === 0 ? 0 : 1));
    if (mask.every((m) => m === 1)) mask = null;
    let x = dropout(embedding(this.p('item_emb'), tf.tensor1d(idsTimeMajor, 'int32'), 0), this.config.dropout, rng);
    for (let l = 0; l < numLayers; l++) {
      const gx = tf.reshape(bmm(x, this.p(`gru${l}.w_ih`)), [len, batch, 3 * H]) as tf.Tensor3D;
      x = tf.reshape(gruSequence(gx, this.p(`gru${l}.w_hh`) as tf.Tensor2D, mask), [len * batch, H]);
    }
    return x as tf.Tensor2D;
  }

  /** Mean CE over all items at every non-padding target of B × len left-padded inputs/targets (row-major). */
  loss(inputs: Int32Array, targets: Int32Array, batch: number, len: number, rng: Rng | null): tf.Scalar {
    return this.lossWithCount(inputs, targets, batch, len, rng)?.loss ?? tf.scalar(0);
  }

  /** The loss and the number of targets it averages over; null when no target is real. */
  lossWithCount(inputs: Int32Array, targets: Int32Array, batch: number, len: number, rng: Rng | null): ShardLoss | null {
    const tm = toTimeMajor(targets, batch, len);
    const rows: number[] = [];
    for (let i = 0; i < tm.length; i++) if (tm[i] !== 0) rows.push(i);
    if (rows.length === 0) return null;
    const h = this.forward(toTimeMajor(inputs, batch, len), batch, len, rng);
    // Only rows with a target go through the dense layer and the all-item softmax.
    const out = dense(embedding(h, tf.tensor1d(rows, 'int32')), this.p('dense.w'), this.p('dense.b')) as tf.Tensor2D;
    return { loss: tiedSoftmaxCrossEntropy(out, this.p('item_emb') as tf.Tensor2D, Int32Array.from(rows, (r) => tm[r])), count: rows.length };
  }

  beginEpoch(rng: Rng): number {
    if (this.seqs.length === 0) throw new Error('GRU4Rec: no user has at least two training interactions');
    const { order, steps } = shuffledBatches(this.windows.length, this.config.batchSize, rng);
    this.order = order;
    return steps;
  }

  stepLoss(step: number, rng: Rng): tf.Scalar {
    const members = batchMembers(this.order, this.config.batchSize, step);
    const { inputs, targets, batch, len } = nextItemBatch(this.seqs, this.windows, members, this.config.maxLen, 'left');
    return this.loss(inputs, targets, batch, len, rng);
  }

  shardLoss(step: number, shard: number, shards: number, rng: Rng): ShardLoss | null {
    const all = batchMembers(this.order, this.config.batchSize, step);
    const members = shardMembers(all, (w) => this.windows[w].end, shard, shards);
    if (members.length === 0) return null;
    const { inputs, targets, batch, len } = nextItemBatch(this.seqs, this.windows, members, this.config.maxLen, 'left');
    return this.lossWithCount(inputs, targets, batch, len, rng);
  }

  private *scoreChunks(histories: Int32Array[]): ScoreChunks {
    const { ids, batch, len } = historyBatch(histories, this.config.maxLen, 'left');
    const scores = tf.tidy(() => {
      const h = this.forward(toTimeMajor(ids, batch, len), batch, len, null);
      const last = tf.slice(h, [(len - 1) * batch, 0], [batch, -1]);
      const out = dense(last, this.p('dense.w'), this.p('dense.b')) as tf.Tensor2D;
      return tf.matMul(out, tf.transpose(this.p('item_emb')) as tf.Tensor2D);
    });
    yield { offset: 0, scores };
  }

  private scoreShape(histories: Int32Array[]) {
    return { rows: histories.length, width: this.p('item_emb').shape[0], maskPadding: false };
  }

  scoreBatch(histories: Int32Array[]): Float32Array {
    return readScores(this.scoreShape(histories), this.scoreChunks(histories));
  }

  scoreBatchAsync(histories: Int32Array[]): Promise<Float32Array> {
    return readScoresAsync(this.scoreShape(histories), this.scoreChunks(histories));
  }

  dispose(): void {
    disposeVariables(this.params);
  }
}

export const gru4recSpec: ModelSpec<Gru4recConfig> = {
  kind: 'gru4rec',
  paramShapes: (config, ctx) => gru4recParamShapes(config, ctx.data.numItems),
  init: (config, ctx, rng) => initGru4recParams(config, ctx.data.numItems, rng),
  build: (config, ctx, values) => new Gru4recModel(config, ctx.data.numItems, values, ctx),
  // RecBole trains GRU4Rec with plain Adam (β = 0.9, 0.999), no weight decay.
  optimizer: (config) => ({ learningRate: config.learningRate }),
  itemEmbeddings: (values, config) => itemTable(values, 'item_emb', config.embeddingSize, 'GRU4Rec')
};
