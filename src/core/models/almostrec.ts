// ALMOSTREC (paper §4, Algorithm 1; DESIGN §5) in the generic training loop. A frozen LLaVA-family backbone
// reads one sequence per sample (almostrec-prompt.ts): the history items' cached visual tokens V, the prompt's
// word embeddings T and the items' ID tokens S = M(ids) · W^B, where M is a finished SASRec/GRU4Rec run's
// frozen item table. F, the final hidden state at the last position (the newest item's ID token), scores
// every item through W^T; softmax cross-entropy on the next item. Trainable: W^B, W^T and LoRA on the
// language model's attention — the only entries of `params`, so checkpoints hold exactly these.
//
// Sequences are right-padded (positions 0…n−1 as for an unpadded sequence, and causal attention keeps real
// tokens from seeing the padding after them); lastHidden picks each row's last real position.
import * as tf from '@tensorflow/tfjs-core';
import { LlavaModel } from '../backbone/llava-model';
import { LoraAdapter, type PeftLoraModule } from '../backbone/lora';
import { trainPart } from '../data/types';
import type { Rng } from '../tensor/rng';
import type { ModelContext, ModelSpec, TrainableModel } from '../train/model-spec';
import { loraConfigOf, type AlmostrecConfig } from './almostrec-config';
import { exportAlmostrec } from './almostrec-export';
import { MODEL, almostrecParamShapes, backboneInputsOf, itemTableValues, loraModules, loraName } from './almostrec-params';
import { layoutBatch, promptTokens, sequencePieces, type LayoutOptions, type Piece, type PromptTokens } from './almostrec-prompt';
import { makeVariables, uniformValues } from './cf/tables';

/** Histories per forward pass when scoring (bounds the activations whatever the evaluator's batch). */
const SCORE_CHUNK = 32;
/** Added to the padding column's logit: item 0 is never a target and never ranked. */
const MASKED = -1e9;

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
  private readonly paddingMask: tf.Tensor2D;
  private readonly seqs: Int32Array[];
  private readonly numItems: number;
  private readonly dm: number;
  /** The epoch's samples as (user, target position) pairs, in step order. */
  private samples = new Int32Array(0);

  constructor(config: AlmostrecConfig, ctx: ModelContext, values: Map<string, Float32Array>) {
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
      const padding = new Float32Array(this.numItems + 1);
      padding[0] = MASKED;
      this.paddingMask = tf.tensor2d(padding, [1, this.numItems + 1]);
      created.push(this.paddingMask);
      this.visualStart = new Int32Array(this.numItems + 1).fill(-1);
      let tokensPerImage = 0;
      if (config.useImages) {
        const v = inputs.visual!;
        if (v.dim !== this.dm) throw new Error(`${MODEL}: visual tokens are ${v.dim}-d, the backbone is ${this.dm}-d`);
        tokensPerImage = v.tokensPerImage;
        const withImage = v.tokens.flatMap((t, i) => (t && i > 0 ? [i] : []));
        const all = new Float32Array(withImage.length * tokensPerImage * this.dm);
        withImage.forEach((item, r) => {
          all.set(v.tokens[item]!, r * tokensPerImage * this.dm);
          this.visualStart[item] = r * tokensPerImage;
        });
        this.visual = tf.tensor2d(all, [withImage.length * tokensPerImage, this.dm]);
        created.push(this.visual);
      }
      this.prompt = promptTokens(inputs.tokenizer, inputs.titleTokens, config.maxTitleTokens);
      this.layoutOptions = {
        interleaved: config.layout === 1,
        useImages: config.useImages === 1,
        useText: config.useText === 1,
        promptTitles: config.promptTitles || config.historyLength,
        imageTokens: (item) => (this.visualStart[item] >= 0 ? tokensPerImage : 0)
      };
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

  /** The input pieces of one history (its last historyLength items). */
  pieces(history: Int32Array): Piece[] {
    const h = history.subarray(Math.max(0, history.length - this.config.historyLength));
    return sequencePieces(h, this.prompt, this.layoutOptions);
  }

  /** Input embeddings [B, T, d_m] and the attention mask for a batch of histories. */
  inputs(histories: Int32Array[]): { embeds: tf.Tensor3D; mask: number[][] } {
    const l = layoutBatch(
      histories.map((h) => this.pieces(h)),
      (item, index) => this.visualStart[item] + index
    );
    const parts: tf.Tensor[] = [tf.zeros([1, this.dm])];
    if (l.textIds.length) parts.push(tf.reshape(this.llava.embedTokens([l.textIds]), [l.textIds.length, this.dm]));
    if (l.imageRows.length) parts.push(tf.gather(this.visual!, tf.tensor1d(l.imageRows, 'int32')));
    if (l.idItems.length) parts.push(tf.matMul(tf.gather(this.itemTable, tf.tensor1d(l.idItems, 'int32')), this.p('w_b')));
    const rows = tf.concat(parts, 0);
    const embeds = tf.reshape(tf.gather(rows, tf.tensor1d(l.rows, 'int32')), [l.batch, l.length, this.dm]) as tf.Tensor3D;
    return { embeds, mask: l.mask };
  }

  /** Logits [B, numItems + 1] = F · W^T, F the final hidden state at each row's last position. */
  logits(histories: Int32Array[], training: boolean): tf.Tensor2D {
    const { embeds, mask } = this.inputs(histories);
    const f = this.llava.lastHidden({ inputsEmbeds: embeds, attentionMask: mask, training });
    return tf.matMul(f, this.p('w_t'));
  }

  /**
   * DESIGN §5: per user, targets are training items after the first; `samplesPerUser` distinct ones are
   * drawn (all of them when the user has fewer), then the epoch's samples are shuffled.
   */
  beginEpoch(rng: Rng): number {
    const pairs: number[] = [];
    this.seqs.forEach((seq, u) => {
      const candidates = seq.length - 1;
      if (candidates < 1) return;
      const pos = Int32Array.from({ length: candidates }, (_, i) => i + 1);
      const take = Math.min(this.config.samplesPerUser, candidates);
      for (let i = 0; i < take; i++) {
        const j = i + rng.int(candidates - i);
        [pos[i], pos[j]] = [pos[j], pos[i]];
        pairs.push(u, pos[i]);
      }
    });
    if (pairs.length === 0) throw new Error(`${MODEL}: no user has two training interactions`);
    const order = Int32Array.from({ length: pairs.length / 2 }, (_, i) => i);
    rng.shuffle(order);
    this.samples = new Int32Array(pairs.length);
    order.forEach((k, i) => {
      this.samples[2 * i] = pairs[2 * k];
      this.samples[2 * i + 1] = pairs[2 * k + 1];
    });
    return Math.ceil(order.length / this.config.batchSize);
  }

  /** Mean cross-entropy over all items of the step's samples; LoRA dropout seeds come from `rng`. */
  stepLoss(step: number, rng: Rng): tf.Scalar {
    const bs = this.config.batchSize;
    const from = step * bs;
    const count = Math.min(bs, this.samples.length / 2 - from);
    if (!(count > 0)) throw new Error(`${MODEL}: step ${step} outside this epoch (or stepLoss before beginEpoch)`);
    this.lora?.setDropoutRng(rng);
    const histories: Int32Array[] = [];
    const picked = new Int32Array(count);
    const width = this.numItems + 1;
    for (let i = 0; i < count; i++) {
      const seq = this.seqs[this.samples[2 * (from + i)]];
      const pos = this.samples[2 * (from + i) + 1];
      histories.push(seq.subarray(Math.max(0, pos - this.config.historyLength), pos));
      picked[i] = i * width + seq[pos];
    }
    const logp = tf.logSoftmax(tf.add(this.logits(histories, true), this.paddingMask));
    return tf.neg(tf.mean(tf.gather(tf.reshape(logp, [-1]), tf.tensor1d(picked, 'int32')))) as tf.Scalar;
  }

  /** Eval mode (no dropout): scores for the next item after each history's last historyLength items. */
  scoreBatch(histories: Int32Array[]): Float32Array {
    const width = this.numItems + 1;
    const out = new Float32Array(histories.length * width);
    for (let start = 0; start < histories.length; start += SCORE_CHUNK) {
      const chunk = histories.slice(start, start + SCORE_CHUNK);
      const scores = tf.tidy(() => this.logits(chunk, false));
      out.set(scores.dataSync(), start * width);
      scores.dispose();
    }
    for (let b = 0; b < histories.length; b++) out[b * width] = -Infinity;
    return out;
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
    tf.dispose([this.itemTable, this.paddingMask, ...(this.visual ? [this.visual] : [])]);
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
  optimizer: (config) => ({ learningRate: config.learningRate, gradAccum: config.gradAccum, warmupSteps: config.warmupSteps }),
  exportArtifacts: (checkpointPath, ctx) => exportAlmostrec(checkpointPath, ctx)
};
