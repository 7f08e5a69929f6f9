// NCF / NeuMF (He et al. 2017) as RecBole's NeuMF: a GMF tower (u_mf ⊙ i_mf) and an MLP tower
// (concat(u_mlp, i_mlp) → dense 128 → ReLU → dropout → dense 64 → ReLU → dropout), concatenated → one
// logit; binary cross-entropy with `negatives` uniformly sampled unseen items per training pair.
// Init as RecBole: embeddings N(0, 0.01); linear layers PyTorch's default U(±1/√fan_in).
// Batches count rows (positives and their negatives together), as RecBole's negative-sampling loader.
// User-ID model: histories map back to users (HistoryIndex); unknown ones are folded in (mean item rows).
import * as tf from '@tensorflow/tfjs-core';
import type { TrainingConfig } from '../../shared/api';
import type { ModelContext, ModelSpec, TrainableModel } from '../train/model-spec';
import { dense, embedding } from '../tensor/ops';
import type { Rng } from '../tensor/rng';
import { HistoryIndex, sampleNegative, shuffledOrder, trainingPairs, type TrainingPairs } from './cf/interactions';
import { makeVariables, normalValues, uniformValues, userVectors } from './cf/tables';
import { readScores, readScoresAsync, type ScoreChunks } from './score-read';

export interface NcfConfig extends TrainingConfig {
  mfEmbeddingSize: number;
  mlpEmbeddingSize: number;
  dropout: number;
  negatives: number;
}

/** RecBole NeuMF's default mlp_hidden_size. */
export const NCF_HIDDEN = [128, 64] as const;

function ncfShapes(config: NcfConfig, ctx: ModelContext): [string, number[]][] {
  const { mfEmbeddingSize: dm, mlpEmbeddingSize: dp } = config;
  const [h1, h2] = NCF_HIDDEN;
  const users = ctx.data.users.length;
  const items = ctx.data.numItems + 1;
  return [
    ['user_mf_emb', [users, dm]],
    ['item_mf_emb', [items, dm]],
    ['user_mlp_emb', [users, dp]],
    ['item_mlp_emb', [items, dp]],
    ['mlp.w1', [2 * dp, h1]],
    ['mlp.b1', [h1]],
    ['mlp.w2', [h1, h2]],
    ['mlp.b2', [h2]],
    ['predict.w', [dm + h2, 1]],
    ['predict.b', [1]]
  ];
}

/** Floats of the [users × items × 128] MLP activation built at once while scoring (~32 MiB). */
const SCORE_CHUNK_FLOATS = 8 * 1024 * 1024;

export class NcfModel implements TrainableModel {
  readonly params: Map<string, tf.Variable>;
  /** Histories scored by fold-in since construction (0 during a normal evaluation). */
  foldIns = 0;
  private readonly pairs: TrainingPairs;
  private readonly index: HistoryIndex;
  private readonly numItems: number;
  private readonly config: NcfConfig;
  /** Rows per step: whole groups of one positive and its negatives. */
  private readonly rowsPerStep: number;
  private epoch: { users: Int32Array; items: Int32Array; labels: Float32Array } | null = null;

  constructor(config: NcfConfig, ctx: ModelContext, values: Map<string, Float32Array>) {
    if (!(config.negatives >= 1) || !Number.isInteger(config.negatives)) throw new Error(`NCF: negatives must be an integer ≥ 1, got ${config.negatives}`);
    if (!(config.dropout >= 0 && config.dropout < 1)) throw new Error(`NCF: dropout must be in [0, 1), got ${config.dropout}`);
    if (!(config.batchSize >= 1)) throw new Error(`NCF: batchSize must be ≥ 1, got ${config.batchSize}`);
    this.params = makeVariables('ncf', ncfShapes(config, ctx), values);
    this.pairs = trainingPairs(ctx.data);
    this.index = new HistoryIndex(ctx.data);
    this.numItems = ctx.data.numItems;
    this.config = config;
    const group = 1 + config.negatives;
    this.rowsPerStep = Math.max(1, Math.floor(config.batchSize / group)) * group;
  }

  private p(name: string): tf.Tensor2D {
    return this.params.get(name)! as tf.Tensor as tf.Tensor2D;
  }

  /** Each training pair (shuffled) followed by its `negatives` sampled unseen items, labels 1 then 0s. */
  beginEpoch(rng: Rng): number {
    const n = this.pairs.users.length;
    if (n === 0) throw new Error('NCF: the dataset has no training interactions');
    const group = 1 + this.config.negatives;
    const order = shuffledOrder(n, rng);
    const users = new Int32Array(n * group);
    const items = new Int32Array(n * group);
    const labels = new Float32Array(n * group);
    for (let j = 0; j < n; j++) {
      const u = this.pairs.users[order[j]];
      const at = j * group;
      users.fill(u, at, at + group);
      items[at] = this.pairs.items[order[j]];
      labels[at] = 1;
      for (let k = 1; k < group; k++) items[at + k] = sampleNegative(rng, this.pairs.seen[u], this.numItems);
    }
    this.epoch = { users, items, labels };
    return Math.ceil(users.length / this.rowsPerStep);
  }

  /** The current epoch's (user, item, label) rows of step `step`, for tests and tools. */
  stepRows(step: number): { users: Int32Array; items: Int32Array; labels: Float32Array } {
    if (!this.epoch) throw new Error('NCF: stepLoss before beginEpoch');
    const start = step * this.rowsPerStep;
    const end = Math.min(start + this.rowsPerStep, this.epoch.users.length);
    if (step < 0 || start >= end) throw new Error(`NCF: step ${step} outside this epoch`);
    const { users, items, labels } = this.epoch;
    return { users: users.subarray(start, end), items: items.subarray(start, end), labels: labels.subarray(start, end) };
  }

  /** Logits [R] for (user row, item) pairs; dropout masks from `rng` (training) or none (eval). */
  logits(users: Int32Array, items: Int32Array, rng: Rng | null): tf.Tensor1D {
    const pDrop = this.config.dropout;
    const drop = (x: tf.Tensor): tf.Tensor =>
      rng && pDrop > 0 ? tf.mul(x, tf.tensor(rng.dropoutMask(tf.util.sizeFromShape(x.shape), pDrop), x.shape)) : x;
    const u = tf.tensor1d(users, 'int32');
    const i = tf.tensor1d(items, 'int32');
    const gmf = tf.mul(embedding(this.p('user_mf_emb'), u), embedding(this.p('item_mf_emb'), i, 0));
    const mlpIn = tf.concat([embedding(this.p('user_mlp_emb'), u), embedding(this.p('item_mlp_emb'), i, 0)], 1);
    const h1 = drop(tf.relu(dense(mlpIn, this.p('mlp.w1'), this.p('mlp.b1'))));
    const h2 = drop(tf.relu(dense(h1, this.p('mlp.w2'), this.p('mlp.b2'))));
    return tf.reshape(dense(tf.concat([gmf, h2], 1), this.p('predict.w'), this.p('predict.b')), [users.length]) as tf.Tensor1D;
  }

  stepLoss(step: number, rng: Rng): tf.Scalar {
    const r = this.stepRows(step);
    const x = this.logits(r.users, r.items, rng);
    // BCE with logits, stably: softplus(x) − y·x.
    return tf.mean(tf.sub(tf.softplus(x), tf.mul(tf.tensor1d(r.labels), x))) as tf.Scalar;
  }

  /**
   * Logits for every (history, item), eval mode. The MLP's first layer splits into a user part and an item
   * part (concat(u, i)·W1 = u·W1ᵤ + i·W1ᵢ), so the item side is computed once per call; the GMF tower and
   * the prediction weights fold into one plain matmul against (I_mf ⊙ w_mf)ᵀ, transposed once per call.
   * Only the MLP's second layer runs per (user, item), in chunks bounding memory.
   */
  scoreBatch(histories: Int32Array[]): Float32Array {
    return readScores({ rows: histories.length, width: this.numItems + 1, maskPadding: true }, this.scoreChunks(histories));
  }

  scoreBatchAsync(histories: Int32Array[]): Promise<Float32Array> {
    return readScoresAsync({ rows: histories.length, width: this.numItems + 1, maskPadding: true }, this.scoreChunks(histories));
  }

  /** The per-call parts (see scoreBatch's comment above), then the scores chunk by chunk; frees the parts at the end. */
  private *scoreChunks(histories: Int32Array[]): ScoreChunks {
    const B = histories.length;
    if (B === 0) return;
    const width = this.numItems + 1;
    const [h1, h2] = NCF_HIDDEN;
    const dm = this.config.mfEmbeddingSize;
    const dp = this.config.mlpEmbeddingSize;
    const chunk = Math.max(1, Math.floor(SCORE_CHUNK_FLOATS / (width * h1)));
    const { userPart, itemPart, wMlp, base } = tf.tidy(() => {
      const mf = userVectors(histories, this.index, this.p('user_mf_emb'), this.p('item_mf_emb'));
      const mlp = userVectors(histories, this.index, this.p('user_mlp_emb'), this.p('item_mlp_emb'));
      this.foldIns += mf.foldIns;
      const w1 = this.p('mlp.w1');
      const wp = this.p('predict.w');
      const wMf = tf.reshape(tf.slice(wp, [0, 0], [dm, 1]), [1, dm]);
      const gmfT = tf.transpose(tf.mul(this.p('item_mf_emb'), wMf)) as tf.Tensor2D;
      return {
        userPart: tf.matMul(mlp.vectors, tf.slice(w1, [0, 0], [dp, h1])),
        itemPart: tf.add(tf.matMul(this.p('item_mlp_emb'), tf.slice(w1, [dp, 0], [dp, h1])), this.p('mlp.b1')),
        wMlp: tf.slice(wp, [dm, 0], [h2, 1]),
        base: tf.add(tf.matMul(mf.vectors, gmfT), this.p('predict.b'))
      };
    });
    try {
      for (let start = 0; start < B; start += chunk) {
        const rows = Math.min(chunk, B - start);
        const scores = tf.tidy(() => {
          const u = tf.reshape(tf.slice(userPart, [start, 0], [rows, h1]), [rows, 1, h1]);
          const a1 = tf.reshape(tf.relu(tf.add(u, tf.reshape(itemPart, [1, width, h1]))), [rows * width, h1]);
          const a2 = tf.relu(tf.add(tf.matMul(a1, this.p('mlp.w2')), this.p('mlp.b2')));
          return tf.add(tf.reshape(tf.matMul(a2, wMlp), [rows, width]), tf.slice(base, [start, 0], [rows, width]));
        });
        yield { offset: start * width, scores };
      }
    } finally {
      tf.dispose([userPart, itemPart, wMlp, base]);
    }
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
  }
}

export const ncfSpec: ModelSpec<NcfConfig> = {
  kind: 'ncf',
  paramShapes: ncfShapes,
  init(config, ctx, rng) {
    const values = new Map<string, Float32Array>();
    for (const [name, shape] of ncfShapes(config, ctx)) {
      const size = shape.reduce((a, b) => a * b, 1);
      let v: Float32Array;
      if (name.endsWith('_emb')) {
        v = normalValues(size, 0.01, rng);
        if (name.startsWith('item_')) v.fill(0, 0, shape[1]);
      } else {
        // nn.Linear default: weight and bias U(±1/√fan_in), fan_in = the layer's input width.
        v = uniformValues(size, 1 / Math.sqrt(linearFanIn(name, config)), rng);
      }
      values.set(name, v);
    }
    return values;
  },
  build: (config, ctx, values) => new NcfModel(config, ctx, values),
  optimizer: (config) => ({ learningRate: config.learningRate })
};

/** Input width of the linear layer a weight or bias belongs to. */
function linearFanIn(name: string, config: NcfConfig): number {
  if (name.startsWith('mlp.') && name.endsWith('1')) return 2 * config.mlpEmbeddingSize;
  if (name.startsWith('mlp.') && name.endsWith('2')) return NCF_HIDDEN[0];
  return config.mfEmbeddingSize + NCF_HIDDEN[1];
}
