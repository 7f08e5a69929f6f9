// SASRec (Kang & McAuley 2018), RecBole-style as the PyTorch reference (DESIGN.md §8): item + position
// embeddings → LayerNorm → dropout → post-LN Transformer blocks (causal self-attention, GELU FFN of width d)
// → scores tied to the item-embedding table. Left-padded inputs of length maxLen; item 0 is padding.
import * as tf from '@tensorflow/tfjs-core';
import type { SasrecConfig } from '../../shared/api';
import { trainPart, type SequenceData } from '../data/types';
import type { ModelContext, ModelSpec, ShardLoss, TrainableModel } from '../train/model-spec';
import { bmm, dense, embedding, gelu, layerNorm, tiedSoftmaxCrossEntropy, transposeLast2 } from '../tensor/ops';
import type { Rng } from '../tensor/rng';
import { batchMembers, shardMembers } from './seq/batches';

export interface SasrecShape {
  numItems: number;
  maxLen: number;
  hiddenSize: number;
  numBlocks: number;
  numHeads: number;
  dropout: number;
}

export function sasrecShape(config: SasrecConfig, numItems: number): SasrecShape {
  if (config.hiddenSize % config.numHeads !== 0) throw new Error(`hiddenSize ${config.hiddenSize} is not divisible by numHeads ${config.numHeads}`);
  return {
    numItems,
    maxLen: config.maxLen,
    hiddenSize: config.hiddenSize,
    numBlocks: config.numBlocks,
    numHeads: config.numHeads,
    dropout: config.dropout
  };
}

/** Parameter names and shapes, in a fixed order (checkpoints and Adam state follow it). */
export function sasrecParamShapes(s: SasrecShape): [string, number[]][] {
  const d = s.hiddenSize;
  const out: [string, number[]][] = [
    ['item_emb', [s.numItems + 1, d]],
    ['pos_emb', [s.maxLen, d]],
    ['emb_ln.gamma', [d]],
    ['emb_ln.beta', [d]]
  ];
  for (let i = 0; i < s.numBlocks; i++) {
    const p = `block${i}.`;
    for (const n of ['q', 'k', 'v', 'o']) out.push([`${p}attn.w${n}`, [d, d]], [`${p}attn.b${n}`, [d]]);
    out.push([`${p}ln1.gamma`, [d]], [`${p}ln1.beta`, [d]]);
    out.push([`${p}ffn.w1`, [d, d]], [`${p}ffn.b1`, [d]], [`${p}ffn.w2`, [d, d]], [`${p}ffn.b2`, [d]]);
    out.push([`${p}ln2.gamma`, [d]], [`${p}ln2.beta`, [d]]);
  }
  return out;
}

/**
 * Initial values as the reference: N(0, 0.02) for embeddings and linear weights, padding row zero, zero
 * biases, LayerNorm γ = 1, β = 0. The attention q/k/v projections keep PyTorch's nn.MultiheadAttention
 * xavier-uniform init (the reference's N(0, 0.02) loop only reaches nn.Linear/nn.Embedding modules).
 */
export function initSasrecParams(s: SasrecShape, rng: Rng): Map<string, Float32Array> {
  const d = s.hiddenSize;
  const xavier = Math.sqrt(6 / (d + 3 * d)); // in_proj_weight is (3d × d)
  const values = new Map<string, Float32Array>();
  for (const [name, shape] of sasrecParamShapes(s)) {
    const size = shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(size);
    if (name.endsWith('.gamma')) v.fill(1);
    else if (/attn\.w[qkv]$/.test(name)) for (let i = 0; i < size; i++) v[i] = (rng.next() * 2 - 1) * xavier;
    else if (shape.length === 2) for (let i = 0; i < size; i++) v[i] = rng.normal() * 0.02;
    if (name === 'item_emb') v.fill(0, 0, d);
    values.set(name, v);
  }
  return values;
}

/** Copy the last `maxLen` items of `seq` into out[offset..offset+maxLen), left-padded with 0. */
export function padLeftInto(seq: ArrayLike<number>, maxLen: number, out: Int32Array, offset: number): void {
  const n = Math.min(seq.length, maxLen);
  const pad = maxLen - n;
  out.fill(0, offset, offset + pad);
  for (let i = 0; i < n; i++) out[offset + pad + i] = seq[seq.length - n + i];
}

// Variable names must be unique per engine; several models may coexist (tests, comparisons).
let modelCounter = 0;

export class SasrecModel {
  readonly shape: SasrecShape;
  readonly params: Map<string, tf.Variable>;

  constructor(shape: SasrecShape, values: Map<string, Float32Array>) {
    this.shape = shape;
    this.params = new Map();
    for (const [name, dims] of sasrecParamShapes(shape)) {
      const v = values.get(name);
      if (!v) throw new Error(`SASRec: missing parameter "${name}"`);
      const expected = dims.reduce((a, b) => a * b, 1);
      if (v.length !== expected) throw new Error(`SASRec: parameter "${name}" has ${v.length} values, expected [${dims}]`);
      const id = `sasrec${++modelCounter}/${name}`;
      // tidy frees the initial-value tensor; the variable keeps its own reference to the data.
      this.params.set(name, tf.tidy(() => tf.variable(tf.tensor(v, dims), true, id)));
    }
  }

  private p(name: string): tf.Variable {
    return this.params.get(name)!;
  }

  /**
   * Hidden states [B, len, d] for left-padded ids (B × len, row-major): the last `len` of the maxLen
   * positions (leading all-padding columns dropped, see lengthGroups). With `rng`, dropout is applied
   * using masks drawn from it (training); without, the model runs in eval mode.
   */
  forward(ids: Int32Array, batch: number, len: number, rng: Rng | null): tf.Tensor3D {
    return sasrecEncoder((name) => this.p(name), this.shape, this.p('item_emb') as tf.Tensor as tf.Tensor2D, ids, batch, len, rng);
  }

  /**
   * Training loss: cross-entropy over all items at every position whose target is not padding.
   * `inputs`/`targets` are B × maxLen left-padded (targets[t] = next item after inputs[t]).
   */
  loss(inputsFull: Int32Array, targetsFull: Int32Array, batch: number, rng: Rng | null): tf.Scalar {
    return this.lossWithCount(inputsFull, targetsFull, batch, rng)?.loss ?? tf.scalar(0);
  }

  /** The loss and the number of targets it averages over; null when no target is real. */
  lossWithCount(inputsFull: Int32Array, targetsFull: Int32Array, batch: number, rng: Rng | null): ShardLoss | null {
    const encode = (ids: Int32Array, b: number, len: number) => this.forward(ids, b, len, rng);
    return lengthGroupedLoss(encode, this.p('item_emb') as tf.Tensor as tf.Tensor2D, inputsFull, targetsFull, batch, this.shape.maxLen);
  }

  /** Scores (B × (numItems + 1)) for the next item after each history (eval mode). */
  scoreNext(histories: Int32Array[]): Float32Array {
    const scores = this.scoreTensor(histories);
    const out = scores.dataSync() as Float32Array;
    scores.dispose();
    return out;
  }

  /** scoreNext read back asynchronously (webgpu in Node cannot read synchronously). */
  async scoreNextAsync(histories: Int32Array[]): Promise<Float32Array> {
    const scores = this.scoreTensor(histories);
    try {
      return (await scores.data()) as Float32Array;
    } finally {
      scores.dispose();
    }
  }

  private scoreTensor(histories: Int32Array[]): tf.Tensor2D {
    // Pad only to the longest history in the batch (same result as padding to maxLen: see lengthGroups).
    const L = Math.max(1, Math.min(this.shape.maxLen, Math.max(...histories.map((h) => h.length))));
    const B = histories.length;
    const ids = new Int32Array(B * L);
    histories.forEach((hist, b) => padLeftInto(hist, L, ids, b * L));
    return tf.tidy(() => {
      const h = this.forward(ids, B, L, null);
      const last = tf.reshape(tf.slice(h, [0, L - 1, 0], [B, 1, -1]), [B, this.shape.hiddenSize]) as tf.Tensor2D;
      return tf.matMul(last, tf.transpose(this.p('item_emb')) as tf.Tensor2D);
    });
  }

  /** Current parameter values, copied out. */
  snapshot(): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const [name, v] of this.params) out.set(name, v.dataSync().slice() as Float32Array);
    return out;
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
    this.params.clear();
  }
}

/**
 * The SASRec encoder: hidden states [B, L, d] for left-padded ids, with `table` as the item-embedding
 * table (SASRec's own item_emb, or SASRec_ID+V's ID + visual table) and the other weights from `param`.
 * With `rng`, dropout masks are drawn from it (training); without, eval mode.
 */
export function sasrecEncoder(
  param: (name: string) => tf.Tensor,
  shape: SasrecShape,
  table: tf.Tensor2D,
  ids: Int32Array,
  batch: number,
  len: number,
  rng: Rng | null
): tf.Tensor3D {
  const { maxLen, hiddenSize: d, numHeads: H, dropout: pDrop } = shape;
  const L = len;
  if (L < 1 || L > maxLen || ids.length !== batch * L) throw new Error(`SASRec: ${ids.length} ids for batch ${batch} × length ${L} (maxLen ${maxLen})`);
  const dh = d / H;
  const drop = (x: tf.Tensor): tf.Tensor =>
    rng && pDrop > 0 ? tf.mul(x, tf.tensor(rng.dropoutMask(tf.util.sizeFromShape(x.shape), pDrop), x.shape)) : x;

  const idsT = tf.tensor2d(ids, [batch, L], 'int32');
  // Positions are counted from the right end (the last item is always position maxLen − 1).
  const pos = L === maxLen ? param('pos_emb') : tf.slice(param('pos_emb'), [maxLen - L, 0], [L, d]);
  let h = tf.add(embedding(table, idsT, 0), pos);
  h = drop(layerNorm(h, param('emb_ln.gamma'), param('emb_ln.beta')));
  const bias = tf.tensor4d(attentionBias(ids, batch, L), [batch, 1, L, L]);
  const scale = 1 / Math.sqrt(dh);
  const splitHeads = (x: tf.Tensor): tf.Tensor =>
    H === 1 ? x : tf.reshape(tf.transpose(tf.reshape(x, [batch, L, H, dh]), [0, 2, 1, 3]), [batch * H, L, dh]);
  for (let i = 0; i < shape.numBlocks; i++) {
    const p = `block${i}.`;
    const q = splitHeads(dense(h, param(`${p}attn.wq`), param(`${p}attn.bq`)));
    const k = splitHeads(dense(h, param(`${p}attn.wk`), param(`${p}attn.bk`)));
    const v = splitHeads(dense(h, param(`${p}attn.wv`), param(`${p}attn.bv`)));
    const scores = tf.add(tf.reshape(tf.mul(bmm(q, transposeLast2(k)), scale), [batch, H, L, L]), bias);
    const probs = drop(tf.reshape(tf.softmax(scores), [batch * H, L, L]));
    let ctx = bmm(probs, v);
    if (H > 1) ctx = tf.reshape(tf.transpose(tf.reshape(ctx, [batch, H, L, dh]), [0, 2, 1, 3]), [batch, L, d]);
    const attnOut = drop(dense(ctx, param(`${p}attn.wo`), param(`${p}attn.bo`)));
    h = layerNorm(tf.add(h, attnOut), param(`${p}ln1.gamma`), param(`${p}ln1.beta`));
    const inner = drop(gelu(dense(h, param(`${p}ffn.w1`), param(`${p}ffn.b1`))));
    const ffnOut = drop(dense(inner, param(`${p}ffn.w2`), param(`${p}ffn.b2`)));
    h = layerNorm(tf.add(h, ffnOut), param(`${p}ln2.gamma`), param(`${p}ln2.beta`));
  }
  return h as tf.Tensor3D;
}

/**
 * Relative cost of running the encoder on one group of left-padded sequences, per row of the group (µs on
 * the wasm backend, measured with SASRec's defaults: ~47 per position for the per-position layers, ~0.09 per
 * entry of the L × L attention) plus a fixed cost per group (the extra kernel launches, ~10 ms).
 */
const GROUP_COST = { perPosition: 47, perAttentionEntry: 0.09, perGroup: 10_000 };

/**
 * Splits a batch into groups of similar length so each group is padded only to its own longest sequence:
 * the members sorted by length, cut where the cost model above says a new group pays off (optimal
 * contiguous partition by dynamic programming, O(B²)). Returns member indices per group, shortest first.
 * Exact: padding positions never reach a real one (masked keys, positions counted from the right).
 */
export function lengthGroups(lengths: ArrayLike<number>, cost = GROUP_COST): Int32Array[] {
  const B = lengths.length;
  const order = Int32Array.from({ length: B }, (_, i) => i).sort((a, b) => lengths[a] - lengths[b] || a - b);
  const L = (i: number) => Math.max(1, lengths[order[i]]);
  const best = new Float64Array(B + 1).fill(Infinity);
  const cut = new Int32Array(B + 1);
  best[0] = 0;
  for (let j = 1; j <= B; j++) {
    const len = L(j - 1); // the group (i, j] is padded to its last (longest) member
    const perRow = cost.perPosition * len + cost.perAttentionEntry * len * len;
    for (let i = 0; i < j; i++) {
      const c = best[i] + (j - i) * perRow + cost.perGroup;
      if (c < best[j]) {
        best[j] = c;
        cut[j] = i;
      }
    }
  }
  const groups: Int32Array[] = [];
  for (let j = B; j > 0; j = cut[j]) groups.unshift(order.slice(cut[j], j));
  return groups;
}

/**
 * Mean cross-entropy over all items (tied to `table`) at every non-padding target of a B × maxLen
 * left-padded batch, with the encoder run once per length group (lengthGroups): the same loss as one padded
 * batch, for a fraction of the work when lengths differ (dropout masks are drawn group by group).
 */
export function lengthGroupedLoss(
  encode: (ids: Int32Array, batch: number, len: number) => tf.Tensor3D,
  table: tf.Tensor2D,
  inputsFull: Int32Array,
  targetsFull: Int32Array,
  batch: number,
  maxLen: number
): ShardLoss | null {
  const lengths = new Int32Array(batch);
  for (let b = 0; b < batch; b++) {
    let first = 0;
    while (first < maxLen && inputsFull[b * maxLen + first] === 0) first++;
    lengths[b] = maxLen - first;
  }
  const d = table.shape[1];
  const rows: tf.Tensor[] = [];
  const rowTargets: number[] = [];
  for (const group of lengthGroups(lengths)) {
    const len = Math.max(1, ...Array.from(group, (b) => lengths[b]));
    const ids = new Int32Array(group.length * len);
    const positions: number[] = [];
    group.forEach((b, g) => {
      ids.set(inputsFull.subarray(b * maxLen + maxLen - len, (b + 1) * maxLen), g * len);
      for (let t = 0; t < len; t++) {
        const target = targetsFull[b * maxLen + maxLen - len + t];
        if (target !== 0) {
          positions.push(g * len + t);
          rowTargets.push(target);
        }
      }
    });
    if (positions.length === 0) continue; // nothing to learn from these rows: skip their forward pass
    const h = encode(ids, group.length, len);
    // Only non-padding positions reach the (expensive) all-item softmax.
    rows.push(embedding(tf.reshape(h, [group.length * len, d]), tf.tensor1d(positions, 'int32')));
  }
  if (rows.length === 0) return null;
  const all = rows.length === 1 ? rows[0] : tf.concat(rows);
  return { loss: tiedSoftmaxCrossEntropy(all as tf.Tensor2D, table, Int32Array.from(rowTargets)), count: rowTargets.length };
}


/**
 * Additive attention bias [B, L, L]: query i may see key j ≤ i unless j is padding. A query always sees
 * itself so fully padded rows stay finite (their outputs are never used: no loss, never the last position).
 */
export function attentionBias(ids: Int32Array, batch: number, L: number): Float32Array {
  const out = new Float32Array(batch * L * L);
  const NEG = -1e9;
  for (let b = 0; b < batch; b++) {
    const base = b * L * L;
    for (let i = 0; i < L; i++) {
      const row = base + i * L;
      for (let j = 0; j < L; j++) {
        out[row + j] = j > i || (j !== i && ids[b * L + j] === 0) ? NEG : 0;
      }
    }
  }
  return out;
}

/**
 * Inputs and targets (B × maxLen, left-padded) of the given users' training sequences: at every position the
 * item and the next one (inputs = seq[0..n−1), targets = seq[1..n)).
 */
export function nextItemPairs(seqs: Int32Array[], members: ArrayLike<number>, maxLen: number): { inputs: Int32Array; targets: Int32Array } {
  const inputs = new Int32Array(members.length * maxLen);
  const targets = new Int32Array(members.length * maxLen);
  for (let b = 0; b < members.length; b++) {
    const seq = seqs[members[b]];
    padLeftInto(seq.subarray(0, seq.length - 1), maxLen, inputs, b * maxLen);
    padLeftInto(seq.subarray(1), maxLen, targets, b * maxLen);
  }
  return { inputs, targets };
}

/** Training sequences: each user's training part, if it has at least one (input, target) pair. */
export function trainingSequences(data: SequenceData): Int32Array[] {
  return data.users.map(trainPart).filter((s) => s.length >= 2);
}

/**
 * SASRec as a trainable model: an epoch is a seeded shuffle of the users' training sequences in batches;
 * each step predicts, at every position, the next item (inputs = seq[0..n-1), targets = seq[1..n)).
 */
class SasrecTrainable implements TrainableModel {
  private order = new Int32Array(0);
  private readonly seqs: Int32Array[];

  constructor(
    private readonly model: SasrecModel,
    data: SequenceData,
    private readonly batchSize: number
  ) {
    this.seqs = trainingSequences(data);
  }

  get params(): Map<string, tf.Variable> {
    return this.model.params;
  }

  beginEpoch(rng: Rng): number {
    if (this.seqs.length === 0) throw new Error('No user has enough training interactions to train SASRec');
    this.order = Int32Array.from(this.seqs.keys());
    rng.shuffle(this.order);
    return Math.ceil(this.seqs.length / this.batchSize);
  }

  stepLoss(step: number, rng: Rng): tf.Scalar {
    const members = batchMembers(this.order, this.batchSize, step);
    const { inputs, targets } = nextItemPairs(this.seqs, members, this.model.shape.maxLen);
    return this.model.loss(inputs, targets, members.length, rng);
  }

  shardLoss(step: number, shard: number, shards: number, rng: Rng): ShardLoss | null {
    const members = shardMembers(batchMembers(this.order, this.batchSize, step), (u) => this.seqs[u].length, shard, shards);
    if (members.length === 0) return null;
    const { inputs, targets } = nextItemPairs(this.seqs, members, this.model.shape.maxLen);
    return this.model.lossWithCount(inputs, targets, members.length, rng);
  }

  scoreBatch(histories: Int32Array[]): Float32Array {
    return this.model.scoreNext(histories);
  }

  scoreBatchAsync(histories: Int32Array[]): Promise<Float32Array> {
    return this.model.scoreNextAsync(histories);
  }

  dispose(): void {
    this.model.dispose();
  }
}

export const sasrecSpec: ModelSpec<SasrecConfig> = {
  kind: 'sasrec',
  paramShapes: (config: SasrecConfig, ctx: ModelContext) => sasrecParamShapes(sasrecShape(config, ctx.data.numItems)),
  init: (config, ctx, rng) => initSasrecParams(sasrecShape(config, ctx.data.numItems), rng),
  build: (config, ctx, values) => new SasrecTrainable(new SasrecModel(sasrecShape(config, ctx.data.numItems), values), ctx.data, config.batchSize),
  optimizer: (config) => ({ learningRate: config.learningRate, beta1: 0.9, beta2: config.beta2 }),
  itemEmbeddings: (values, config) => ({ table: values.get('item_emb')!, dim: config.hiddenSize })
};
