// NextItNet (Yuan et al. 2019) as RecBole's NextItNet: item embedding (padding row 0) → residual blocks of
// dilated causal convolutions → final dense → scores tied to the item table (RecBole: final_layer, then
// seq_output · item_embeddingᵀ), cross-entropy over all items at every non-padding position, trained on
// windows of each user's training part that cover every training target once per epoch (seq/batches.ts).
//
// Blocks follow RecBole exactly: `numBlocks` is RecBole's block_num, the dilation list [1, 4] is repeated
// block_num times, and each residual block (ResidualBlock_b) for dilation d holds two causal convolutions
// with dilations d and 2d, each followed by LayerNorm (eps 1e-8) and ReLU, plus the skip connection. With
// block_num 5 that is 10 residual blocks whose convolutions cycle through dilations 1, 2, 4, 8 — the
// paper's {1, 2, 4, 8} stack.
//
// Inputs are right-padded (items from column 0, padding after): every convolution is causal, so no real
// position ever sees a padding one, the trailing all-padding columns of a batch are dropped exactly, and a
// history's scores do not depend on what it is batched with.
import * as tf from '@tensorflow/tfjs-core';
import type { TrainingConfig } from '../../shared/api';
import { dense, embedding, layerNorm, tiedSoftmaxCrossEntropy } from '../tensor/ops';
import type { Rng } from '../tensor/rng';
import { causalConv1d } from '../tensor/seq-ops';
import type { ModelContext, ModelSpec, ShardLoss, TrainableModel } from '../train/model-spec';
import { batchMembers, historyBatch, nextItemBatch, shardMembers, shuffledBatches, trainingWindows, type TrainingWindow, trainingSequences } from './seq/batches';
import { createVariables, disposeVariables, itemTable, normalValues, uniformValues } from './seq/params';
import { readScores, readScoresAsync, type ScoreChunks } from './score-read';

export interface NextitnetConfig extends TrainingConfig {
  maxLen: number;
  embeddingSize: number;
  kernelSize: number;
  numBlocks: number;
}

/** RecBole's nextitnet.yaml dilations, repeated numBlocks times. */
const DILATIONS = [1, 4];
export const LN_EPS = 1e-8;
/**
 * RecBole's reg_weight (nextitnet.yaml): the loss adds reg_weight × Σ‖W‖₂ (plain, not squared, Frobenius
 * norms) over the item table, the final dense weight and every residual-block "weight" (convolutions and
 * LayerNorm γ). Not in the catalogue: a fixed part of the reference model.
 */
const REG_WEIGHT = 1e-5;

/** Dilation of each residual block (its second convolution uses twice that). */
export function residualDilations(numBlocks: number): number[] {
  return Array.from({ length: numBlocks * DILATIONS.length }, (_, i) => DILATIONS[i % DILATIONS.length]);
}

/** Parameter names and shapes in a fixed order; conv weights are [kernel·E, E] (tf.conv1d's filter flattened). */
export function nextitnetParamShapes(config: NextitnetConfig, numItems: number): [string, number[]][] {
  const { embeddingSize: E, kernelSize: k } = config;
  const out: [string, number[]][] = [['item_emb', [numItems + 1, E]]];
  residualDilations(config.numBlocks).forEach((_, i) => {
    for (const c of ['1', '2']) {
      out.push([`block${i}.conv${c}.w`, [k * E, E]], [`block${i}.conv${c}.b`, [E]]);
      out.push([`block${i}.ln${c}.gamma`, [E]], [`block${i}.ln${c}.beta`, [E]]);
    }
  });
  out.push(['final.w', [E, E]], ['final.b', [E]]);
  return out;
}

/**
 * RecBole's initialisation: item table U(±1/√n_items) with n_items counting padding (row 0 zeroed here),
 * final dense xavier-normal with bias 0.1; the convolutions keep PyTorch's Conv2d default U(±1/√(E·k)) for
 * weight and bias; LayerNorm γ = 1, β = 0.
 */
export function initNextitnetParams(config: NextitnetConfig, numItems: number, rng: Rng): Map<string, Float32Array> {
  const { embeddingSize: E, kernelSize: k } = config;
  const values = new Map<string, Float32Array>();
  for (const [name, shape] of nextitnetParamShapes(config, numItems)) {
    const size = shape.reduce((a, b) => a * b, 1);
    let v: Float32Array;
    if (name === 'item_emb') {
      v = uniformValues(size, Math.sqrt(1 / (numItems + 1)), rng);
      v.fill(0, 0, E);
    } else if (name === 'final.w') v = normalValues(size, Math.sqrt(2 / (E + E)), rng);
    else if (name === 'final.b') v = new Float32Array(size).fill(0.1);
    else if (name.includes('.conv')) v = uniformValues(size, 1 / Math.sqrt(E * k), rng);
    else v = new Float32Array(size).fill(name.endsWith('.gamma') ? 1 : 0);
    values.set(name, v);
  }
  return values;
}

export class NextitnetModel implements TrainableModel {
  readonly params: Map<string, tf.Variable>;
  private readonly seqs: Int32Array[];
  private readonly dilations: number[];
  private readonly windows: TrainingWindow[];
  private order: Int32Array = new Int32Array(0);

  constructor(
    private readonly config: NextitnetConfig,
    numItems: number,
    values: Map<string, Float32Array>,
    ctx?: ModelContext
  ) {
    this.params = createVariables('NextItNet', nextitnetParamShapes(config, numItems), values);
    this.dilations = residualDilations(config.numBlocks);
    this.seqs = ctx ? trainingSequences(ctx.data) : [];
    this.windows = trainingWindows(this.seqs, config.maxLen);
  }

  private p(name: string): tf.Tensor {
    return this.params.get(name)!;
  }

  /** Block outputs [B, len, E] for right-padded ids (B × len, row-major). RecBole's NextItNet has no dropout. */
  forward(ids: Int32Array, batch: number, len: number): tf.Tensor3D {
    const { embeddingSize: E, kernelSize: k } = this.config;
    if (ids.length !== batch * len) throw new Error(`NextItNet: ${ids.length} ids for batch ${batch} × length ${len}`);
    let x = embedding(this.p('item_emb'), tf.tensor2d(ids, [batch, len], 'int32'), 0) as tf.Tensor3D;
    const convLnRelu = (h: tf.Tensor3D, name: string, dilation: number): tf.Tensor3D => {
      const conv = causalConv1d(h, this.p(`${name.replace('ln', 'conv')}.w`) as tf.Tensor2D, this.p(`${name.replace('ln', 'conv')}.b`) as tf.Tensor1D, k, dilation);
      return tf.relu(layerNorm(conv, this.p(`${name}.gamma`), this.p(`${name}.beta`), LN_EPS)) as tf.Tensor3D;
    };
    this.dilations.forEach((d, i) => {
      const out1 = convLnRelu(x, `block${i}.ln1`, d);
      const out2 = convLnRelu(out1, `block${i}.ln2`, 2 * d);
      x = tf.add(out2, x) as tf.Tensor3D;
    });
    return tf.reshape(x, [batch, len, E]) as tf.Tensor3D;
  }

  /** Final dense on selected rows (b·len + t) of the block outputs. */
  private head(x: tf.Tensor3D, rows: ArrayLike<number>): tf.Tensor2D {
    const [batch, len, E] = x.shape;
    const picked = embedding(tf.reshape(x, [batch * len, E]), tf.tensor1d(Int32Array.from(rows), 'int32'));
    return dense(picked, this.p('final.w'), this.p('final.b')) as tf.Tensor2D;
  }

  /** Mean CE over all items at every non-padding target of B × len right-padded inputs/targets. */
  loss(inputs: Int32Array, targets: Int32Array, batch: number, len: number): tf.Scalar {
    return this.lossWithCount(inputs, targets, batch, len)?.loss ?? tf.scalar(0);
  }

  /** The loss (CE + the full regularisation) and the number of targets the CE averages over; null: no target. */
  lossWithCount(inputs: Int32Array, targets: Int32Array, batch: number, len: number): ShardLoss | null {
    const rows: number[] = [];
    for (let i = 0; i < targets.length; i++) if (targets[i] !== 0) rows.push(i);
    if (rows.length === 0) return null;
    const out = this.head(this.forward(inputs, batch, len), rows);
    const ce = tiedSoftmaxCrossEntropy(out, this.p('item_emb') as tf.Tensor2D, Int32Array.from(rows, (r) => targets[r]));
    const norms = [...this.params.keys()]
      .filter((n) => n === 'item_emb' || n === 'final.w' || /\.conv\d\.w$|\.gamma$/.test(n))
      .map((n) => tf.sqrt(tf.sum(tf.square(this.p(n)))));
    return { loss: tf.add(ce, tf.mul(tf.addN(norms), REG_WEIGHT)) as tf.Scalar, count: rows.length };
  }

  beginEpoch(rng: Rng): number {
    if (this.seqs.length === 0) throw new Error('NextItNet: no user has at least two training interactions');
    const { order, steps } = shuffledBatches(this.windows.length, this.config.batchSize, rng);
    this.order = order;
    return steps;
  }

  stepLoss(step: number): tf.Scalar {
    const members = batchMembers(this.order, this.config.batchSize, step);
    const { inputs, targets, batch, len } = nextItemBatch(this.seqs, this.windows, members, this.config.maxLen, 'right');
    return this.loss(inputs, targets, batch, len);
  }

  shardLoss(step: number, shard: number, shards: number): ShardLoss | null {
    const all = batchMembers(this.order, this.config.batchSize, step);
    const members = shardMembers(all, (w) => this.windows[w].end, shard, shards);
    if (members.length === 0) return null;
    const { inputs, targets, batch, len } = nextItemBatch(this.seqs, this.windows, members, this.config.maxLen, 'right');
    return this.lossWithCount(inputs, targets, batch, len);
  }

  private *scoreChunks(histories: Int32Array[]): ScoreChunks {
    const { ids, lengths, batch, len } = historyBatch(histories, this.config.maxLen, 'right');
    const scores = tf.tidy(() => {
      // Each history's last item sits at column length − 1 (an empty history reads column 0, padding).
      const last = this.head(this.forward(ids, batch, len), Array.from(lengths, (n, b) => b * len + Math.max(0, n - 1)));
      return tf.matMul(last, tf.transpose(this.p('item_emb')) as tf.Tensor2D);
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

export const nextitnetSpec: ModelSpec<NextitnetConfig> = {
  kind: 'nextitnet',
  paramShapes: (config, ctx) => nextitnetParamShapes(config, ctx.data.numItems),
  init: (config, ctx, rng) => initNextitnetParams(config, ctx.data.numItems, rng),
  build: (config, ctx, values) => new NextitnetModel(config, ctx.data.numItems, values, ctx),
  // RecBole: Adam (β = 0.9, 0.999); its L2 term is in the loss (REG_WEIGHT), not weight decay.
  optimizer: (config) => ({ learningRate: config.learningRate }),
  itemEmbeddings: (values, config) => itemTable(values, 'item_emb', config.embeddingSize, 'NextItNet')
};
