// ALMOSTREC (paper §4, Algorithm 1; DESIGN §5) in the generic training loop. A frozen LLaVA-family backbone
// reads one sequence per sample (almostrec-prompt.ts): the history items' cached visual tokens V, the prompt's
// word embeddings T and the items' ID tokens S = M(ids) · W^B, where M is a finished SASRec/GRU4Rec run's
// frozen item table. The final hidden state at an ID token scores every item through W^T; softmax
// cross-entropy on the next item. Trainable: W^B, W^T and LoRA on the language model's attention — the only
// entries of `params`, so checkpoints hold exactly these.
//
// Training examples are windows of a user's training part (seq/batches.ts), as SASRec and GRU4Rec train:
// - interleaved layout (1): every ID token S(i_j) predicts i_{j+1}. Causal attention keeps it from seeing
//   anything of later items (their images, titles and IDs come after it), so one forward trains every target
//   of the window, and every target of the training part is predicted once per epoch;
// - concat layout (0, eq. 1): only the last ID token may be trained (earlier ones come after every image and
//   title of the history), so an example is one sampled target, `samplesPerUser` per user per epoch.
// Scoring reads F at the newest item's ID token (the last position) in both layouts.
//
// Sequences are right-padded (positions 0…n−1 as for an unpadded sequence, and causal attention keeps real
// tokens from seeing the padding after them). The constant start of every sequence (<s>, and the task in the
// interleaved layout) is encoded once per batch as a shared prefix K/V.
import * as tf from '@tensorflow/tfjs-core';
import { LlavaModel } from '../backbone/llava-model';
import { LoraAdapter, type PeftLoraModule } from '../backbone/lora';
import { trainPart } from '../data/types';
import { tiedSoftmaxCrossEntropy } from '../tensor/ops';
import type { Rng } from '../tensor/rng';
import type { BackboneInputs, ModelContext, ModelSpec, ShardLoss, TrainableModel } from '../train/model-spec';
import { llmOptimizer, loraConfigOf, type AlmostrecConfig } from './almostrec-config';
import { exportAlmostrec } from './almostrec-export';
import { MODEL, almostrecParamShapes, backboneInputsOf, itemTableValues, loraModules, loraName } from './almostrec-params';
import { ALMOSTREC_PROMPT, type PromptStyle } from './almostrec-style';
import { layoutBatch, promptTokens, sequencePieces, sharedPrefix, type LayoutOptions, type Piece, type PromptTokens } from './almostrec-prompt';
import { makeVariables, uniformValues } from './cf/tables';
import { batchMembers, sampledTargets, shardMembers, shuffledBatches, trainingWindows, type TrainingWindow } from './seq/batches';
import { readScores, readScoresAsync, type ScoreChunks } from './score-read';

/** Histories per forward pass when scoring (bounds the activations whatever the evaluator's batch). */
const SCORE_CHUNK = 32;

/** A batch's input embeddings after the shared prefix, and where each row's ID tokens are. */
interface BatchInputs {
  embeds: tf.Tensor3D;
  /** [B, prefix + T]: the prefix, then each row's real tokens (1) and padding (0). */
  mask: number[][];
  /** Per row, the positions (after the prefix) of its ID tokens, oldest item first. */
  idPositions: number[][];
}

/** The cached visual tokens of the items that have an image, packed as rows of one table. */
export interface PackedVisualTokens {
  /** [items with an image · tokensPerImage, d_m]. */
  table: tf.Tensor2D;
  /** Per item index: its first row in `table`, −1 without an image. */
  start: Int32Array;
  tokensPerImage: number;
}

/** Packs the backbone's cached visual tokens (ctx.backbone.visual) into one frozen table (the caller disposes it). */
export function packVisualTokens(v: NonNullable<BackboneInputs['visual']>, numItems: number, dm: number, model: string): PackedVisualTokens {
  if (v.dim !== dm) throw new Error(`${model}: visual tokens are ${v.dim}-d, the backbone is ${dm}-d`);
  const tokensPerImage = v.tokensPerImage;
  const start = new Int32Array(numItems + 1).fill(-1);
  const withImage = v.tokens.flatMap((t, i) => (t && i > 0 ? [i] : []));
  const all = new Float32Array(withImage.length * tokensPerImage * dm);
  withImage.forEach((item, r) => {
    all.set(v.tokens[item]!, r * tokensPerImage * dm);
    start[item] = r * tokensPerImage;
  });
  return { table: tf.tensor2d(all, [withImage.length * tokensPerImage, dm]), start, tokensPerImage };
}

export class AlmostrecModel implements TrainableModel {
  readonly params = new Map<string, tf.Variable>();
  readonly config: AlmostrecConfig;
  readonly prompt: PromptTokens;
  readonly layoutOptions: LayoutOptions;
  private readonly own: tf.Variable[] = [];
  private readonly lora: LoraAdapter | null = null;
  private readonly llava: LlavaModel;
  private readonly itemTable: tf.Tensor2D;
  private readonly visual: tf.Tensor2D | null = null;
  /** Per item index: its first row in `visual`, −1 without an image. */
  private readonly visualStart: Int32Array;
  private readonly seqs: Int32Array[];
  private readonly numItems: number;
  private readonly dm: number;
  /** Token ids every input starts with (sharedPrefix). */
  private readonly prefixTokens: number[];
  /** The epoch's examples as (sequence, end, first) triples: targets seq[t], first ≤ t < end, see seq/batches.ts. */
  private examples: Int32Array = new Int32Array(0);
  /** The epoch's example order. */
  private order: Int32Array = new Int32Array(0);

  constructor(config: AlmostrecConfig, ctx: ModelContext, values: Map<string, Float32Array>, style: PromptStyle = ALMOSTREC_PROMPT) {
    const inputs = backboneInputsOf(ctx);
    const shapes = almostrecParamShapes(config, ctx);
    this.config = config;
    this.numItems = ctx.data.numItems;
    this.dm = inputs.backbone.config.text.hiddenSize;
    this.seqs = ctx.data.users.map(trainPart);
    const created: tf.Tensor[] = [];
    let llava: LlavaModel | null = null;
    try {
      for (const [name, v] of makeVariables('almostrec', shapes.slice(0, 2), values)) {
        this.params.set(name, v);
        this.own.push(v);
      }
      const lora = loraConfigOf(config);
      if (lora) {
        const factor = (name: string, shape: [number, number]): PeftLoraModule['a'] => {
          const v = values.get(name);
          if (!v || v.length !== shape[0] * shape[1]) throw new Error(`${MODEL}: parameter "${name}" is missing or not [${shape}]`);
          return { data: v, shape };
        };
        const modules = new Map<string, PeftLoraModule>();
        for (const [path, [outDim, inDim]] of loraModules(config, inputs)) {
          modules.set(path, { a: factor(loraName(path, 'A'), [lora.r, inDim]), b: factor(loraName(path, 'B'), [outDim, lora.r]) });
        }
        this.lora = LoraAdapter.fromPeft(modules, lora, config.seed);
        for (const path of modules.keys()) {
          const f = this.lora.factors(path)!;
          this.params.set(loraName(path, 'A'), f.a);
          this.params.set(loraName(path, 'B'), f.b);
        }
      }
      llava = new LlavaModel(inputs.backbone.config, inputs.backbone.weights, this.lora ?? undefined);
      this.llava = llava;
      this.itemTable = tf.tensor2d(itemTableValues(config, ctx), [this.numItems + 1, inputs.itemTable.dim]);
      created.push(this.itemTable);
      this.visualStart = new Int32Array(this.numItems + 1).fill(-1);
      let tokensPerImage = 0;
      if (config.useImages) {
        const packed = packVisualTokens(inputs.visual!, this.numItems, this.dm, MODEL);
        this.visual = packed.table;
        created.push(this.visual);
        this.visualStart = packed.start;
        tokensPerImage = packed.tokensPerImage;
      }
      this.prompt = promptTokens(inputs.tokenizer, inputs.titleTokens, config.maxTitleTokens, style.task);
      this.layoutOptions = {
        interleaved: config.layout === 1,
        useImages: config.useImages === 1,
        useText: config.useText === 1,
        promptTitles: style.titles ? config.promptTitles || config.historyLength : 0,
        imageTokens: (item) => (this.visualStart[item] >= 0 ? tokensPerImage : 0)
      };
      this.prefixTokens = sharedPrefix(this.prompt, this.layoutOptions);
    } catch (e) {
      llava?.dispose();
      tf.dispose(created);
      this.disposeParams();
      throw e;
    }
  }

  private p(name: 'w_b' | 'w_t'): tf.Variable {
    return this.params.get(name)!;
  }

  /** The input pieces of one history (its last historyLength items), the shared prefix included. */
  pieces(history: Int32Array): Piece[] {
    const h = history.subarray(Math.max(0, history.length - this.config.historyLength));
    return sequencePieces(h, this.prompt, this.layoutOptions);
  }

  /**
   * Input embeddings [B, T, d_m] after the shared prefix, the attention mask and the ID-token positions.
   * With `dropoutRng` (training) the ID tokens get dropout at idDropout, its mask seeded from that Rng.
   */
  inputs(histories: Int32Array[], dropoutRng?: Rng): BatchInputs {
    const p = this.prefixTokens.length;
    const pieces = histories.map((h) => this.pieces(h).slice(p));
    const l = layoutBatch(pieces, (item, index) => this.visualStart[item] + index);
    const parts: tf.Tensor[] = [tf.zeros([1, this.dm])];
    if (l.textIds.length) parts.push(tf.reshape(this.llava.embedTokens([l.textIds]), [l.textIds.length, this.dm]));
    if (l.imageRows.length) parts.push(tf.gather(this.visual!, tf.tensor1d(l.imageRows, 'int32')));
    if (l.idItems.length) {
      const ids = tf.matMul(tf.gather(this.itemTable, tf.tensor1d(l.idItems, 'int32')), this.p('w_b'));
      const rate = this.config.idDropout;
      parts.push(dropoutRng && rate > 0 ? tf.dropout(ids, rate, undefined, dropoutRng.nextU32()) : ids);
    }
    const rows = tf.concat(parts, 0);
    const embeds = tf.reshape(tf.gather(rows, tf.tensor1d(l.rows, 'int32')), [l.batch, l.length, this.dm]) as tf.Tensor3D;
    const ones = new Array<number>(p).fill(1);
    return {
      embeds,
      mask: l.mask.map((m) => [...ones, ...m]),
      idPositions: pieces.map((row) => row.flatMap((piece, t) => (piece.kind === 'id' ? [t] : [])))
    };
  }

  /** Final hidden states [B, T, d_m] of a batch (after the shared prefix, encoded once for all rows). */
  private hidden(b: BatchInputs, training: boolean): tf.Tensor3D {
    const prefix = this.prefixTokens.length ? this.llava.encodePrefix({ inputIds: [this.prefixTokens], training }) : undefined;
    return this.llava.forward({ inputsEmbeds: b.embeds, attentionMask: b.mask, prefix, training, logits: 'none' }).hidden;
  }

  /** Logits [B, numItems + 1] = F · W^T, F the final hidden state at each row's last position (its newest ID token). */
  logits(histories: Int32Array[], training: boolean): tf.Tensor2D {
    const last = histories.map((h, row) => ({ row, item: Math.min(h.length, this.config.historyLength) - 1 }));
    return tf.matMul(this.idHidden(histories, last, training), this.p('w_t'));
  }

  /**
   * The epoch's examples (DESIGN §5), drawn only from `rng`. Interleaved layout: the windows of
   * historyLength items covering every target of every training part once (seq/batches.ts), in a fresh
   * order. Concat layout: per user `samplesPerUser` distinct targets after the first (all of them when the
   * user has fewer), each an example whose only trained position is its last.
   */
  beginEpoch(rng: Rng): number {
    const triples: number[] = [];
    if (this.config.layout === 1) {
      const length = this.config.historyLength;
      const phases = this.config.windowPhase ? Int32Array.from(this.seqs, () => rng.int(length)) : undefined;
      for (const w of trainingWindows(this.seqs, length, length, phases)) triples.push(w.seq, w.end, w.first);
    } else {
      const pairs = sampledTargets(this.seqs, this.config.samplesPerUser, rng);
      for (let i = 0; i < pairs.length; i += 2) triples.push(pairs[i], pairs[i + 1] + 1, pairs[i + 1]);
    }
    if (triples.length === 0) throw new Error(`${MODEL}: no user has two training interactions`);
    this.examples = Int32Array.from(triples);
    const { order, steps } = shuffledBatches(triples.length / 3, this.config.batchSize, rng);
    this.order = order;
    return steps;
  }

  /** The example's window: targets seq[t] for first ≤ t < end, read from the historyLength items before end − 1. */
  private window(e: number): TrainingWindow {
    return { seq: this.examples[3 * e], end: this.examples[3 * e + 1], first: this.examples[3 * e + 2] };
  }

  private windowStart(w: TrainingWindow): number {
    return Math.max(0, w.end - 1 - this.config.historyLength);
  }

  /**
   * Final hidden states [N, d_m] at the ID tokens `picks` ({row, item}: the item-th history item of a row)
   * of one forward over `histories`.
   */
  private idHidden(histories: Int32Array[], picks: { row: number; item: number }[], training: boolean, dropoutRng?: Rng): tf.Tensor2D {
    const b = this.inputs(histories, training ? dropoutRng : undefined);
    const [rows, steps] = b.embeds.shape;
    const at = Int32Array.from(picks, (p) => p.row * steps + b.idPositions[p.row][p.item]);
    return tf.gather(tf.reshape(this.hidden(b, training), [rows * steps, this.dm]), tf.tensor1d(at, 'int32')) as tf.Tensor2D;
  }

  /**
   * Logits [n, numItems + 1] at every ID token of one history of n ≤ historyLength items (eval mode): row j
   * scores the item after history[0..j] — what every-position training trains, from one forward.
   */
  idTokenLogits(history: Int32Array): tf.Tensor2D {
    const h = history.subarray(Math.max(0, history.length - this.config.historyLength));
    return tf.tidy(() => tf.matMul(this.idHidden([h], Array.from(h, (_, item) => ({ row: 0, item })), false), this.p('w_t')));
  }

  /**
   * Mean cross-entropy over all items of every trained target of `windows` (of the training parts): the
   * hidden state at the ID token of seq[t − 1] predicts seq[t] for each first ≤ t < end. LoRA dropout seeds
   * come from `rng`.
   */
  windowsLoss(windows: readonly TrainingWindow[], rng: Rng): ShardLoss {
    this.lora?.setDropoutRng(rng);
    const histories: Int32Array[] = [];
    const picks: { row: number; item: number }[] = [];
    const targets: number[] = [];
    windows.forEach((w, row) => {
      const seq = this.seqs[w.seq];
      const start = this.windowStart(w);
      histories.push(seq.subarray(start, w.end - 1));
      for (let t = Math.max(w.first, start + 1); t < w.end; t++) {
        picks.push({ row, item: t - 1 - start });
        targets.push(seq[t]);
      }
    });
    const f = this.idHidden(histories, picks, true, rng);
    return { loss: tiedSoftmaxCrossEntropy(f, tf.transpose(this.p('w_t')) as tf.Tensor2D, Int32Array.from(targets)), count: targets.length };
  }

  /** Shard `shard` of `shards` of step `step`: its examples balanced by length (seq/batches.ts shardMembers). */
  shardLoss(step: number, shard: number, shards: number, rng: Rng): ShardLoss | null {
    if (this.order.length === 0) throw new Error(`${MODEL}: step ${step} before beginEpoch`);
    const all = batchMembers(this.order, this.config.batchSize, step);
    const length = (e: number): number => this.examples[3 * e + 1] - this.windowStart(this.window(e));
    const members = shardMembers(all, length, shard, shards);
    return members.length ? this.windowsLoss(Array.from(members, (e) => this.window(e)), rng) : null;
  }

  /** The whole step's mean loss (one shard). */
  stepLoss(step: number, rng: Rng): tf.Scalar {
    return this.shardLoss(step, 0, 1, rng)!.loss;
  }

  /** Eval mode (no dropout): scores for the next item after each history's last historyLength items. */
  scoreBatch(histories: Int32Array[]): Float32Array {
    return readScores({ rows: histories.length, width: this.numItems + 1, maskPadding: true }, this.scoreChunks(histories));
  }

  scoreBatchAsync(histories: Int32Array[]): Promise<Float32Array> {
    return readScoresAsync({ rows: histories.length, width: this.numItems + 1, maskPadding: true }, this.scoreChunks(histories));
  }

  private *scoreChunks(histories: Int32Array[]): ScoreChunks {
    for (let start = 0; start < histories.length; start += SCORE_CHUNK) {
      const chunk = histories.slice(start, start + SCORE_CHUNK);
      yield { offset: start * (this.numItems + 1), scores: tf.tidy(() => this.logits(chunk, false)) };
    }
  }

  private disposeParams(): void {
    for (const v of this.own) v.dispose();
    this.own.length = 0;
    // The LoRA entries are the adapter's variables: freed once, by the adapter.
    this.lora?.dispose();
    this.params.clear();
  }

  /** Frees the model's own tensors; the backbone weights stay with the context. */
  dispose(): void {
    this.llava.dispose();
    tf.dispose([this.itemTable, ...(this.visual ? [this.visual] : [])]);
    this.disposeParams();
  }
}

/**
 * W^T = c·(M·W^B)ᵀ: each item's column starts as its ID token S = W^B·M(item), so at the first step an item
 * scores by how F aligns with its own ID token — a warm start from the sequential model's geometry where
 * the paper leaves W^T's initialisation open. c gives the entries the default init's standard deviation
 * (U(±1/√d_m): 1/√(3·d_m)), so the initial logits keep their scale.
 */
function outputFromIds(m: Float32Array, wb: Float32Array, shapes: [string, number[]][]): Float32Array {
  const [di, dm] = shapes.find(([n]) => n === 'w_b')![1];
  const items = shapes.find(([n]) => n === 'w_t')![1][1];
  const wt = new Float32Array(dm * items);
  let sq = 0;
  for (let j = 0; j < items; j++) {
    for (let c = 0; c < dm; c++) {
      let s = 0;
      for (let k = 0; k < di; k++) s += m[j * di + k] * wb[k * dm + c];
      wt[c * items + j] = s;
      sq += s * s;
    }
  }
  const std = Math.sqrt(sq / wt.length);
  const scale = std > 0 ? 1 / Math.sqrt(3 * dm) / std : 0;
  for (let i = 0; i < wt.length; i++) wt[i] *= scale;
  return wt;
}

export const almostrecSpec: ModelSpec<AlmostrecConfig> = {
  kind: 'almostrec',
  needsBackbone: true,
  paramShapes: almostrecParamShapes,
  /**
   * W^B and W^T as PyTorch's nn.Linear initialises them (U(±1/√fan_in)); LoRA as PEFT: A U(±1/√in), B = 0,
   * so training starts from the frozen backbone's own function.
   */
  init(config, ctx, rng) {
    const values = new Map<string, Float32Array>();
    for (const [name, shape] of almostrecParamShapes(config, ctx)) {
      const size = shape[0] * shape[1];
      if (name.endsWith('.B')) values.set(name, new Float32Array(size));
      // fan_in: the rows of W^B [d_i, d_m] and W^T [d_m, |I| + 1], the columns of A [r, in].
      else values.set(name, uniformValues(size, 1 / Math.sqrt(name.startsWith('lora.') ? shape[1] : shape[0]), rng));
    }
    if (config.initOutputFromIds === 1) values.set('w_t', outputFromIds(itemTableValues(config, ctx), values.get('w_b')!, almostrecParamShapes(config, ctx)));
    return values;
  },
  build: (config, ctx, values) => new AlmostrecModel(config, ctx, values),
  optimizer: llmOptimizer,
  exportArtifacts: (checkpointPath, ctx) => exportAlmostrec(checkpointPath, ctx)
};
