// VIP5 (Geng et al. 2023, "VIP5: Towards Multimodal Foundation Models for Recommendation"; DESIGN §6) on the
// workbench's LLaVA-family backbone. The prompt (vip5-prompt.ts) lists the history's items, each its ID
// written as text ("item_1234") followed by the backbone's cached visual tokens of its poster (ALMOSTREC's,
// k per image); the model learns to write the next item's ID and ";" through the backbone's frozen
// language-model head, as TALLRec writes titles (tallrec.ts). VIP5 tunes small adapters in a frozen backbone;
// here the parameter-efficient adapter is LoRA on the frozen language model, the other LLM baselines' — the
// only trainable parameters.
//
// Training reads windows of L + 1 items of the training parts and, as TALLRec, learns every item after the
// first from the items before it: one forward per window, every ID's tokens and its ";" trained. An item's
// image follows its ID, so causal attention hides it (and every later item) from the prediction of that ID.
// Scoring (Table 2's full ranking) ranks every item by log P(ID ; | prompt) over a prefix tree of all IDs
// (backbone/title-trie.ts: the prompt encoded once per user, each distinct ID prefix once). VIP5 generates
// IDs by beam search constrained to valid IDs; those scores are every valid ID's exact likelihood, so their
// top k IS constrained beam search with an unlimited beam (recommend). decodeGreedy is constrained greedy
// decoding (backbone/generate.ts), VIP5's beam of width 1.
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { TrainingConfig } from '../../shared/api';
import { constrainedSteps } from '../backbone/generate';
import { LlavaModel } from '../backbone/llava-model';
import type { LoraAdapter } from '../backbone/lora';
import { TitleTrie, trieScoreSteps } from '../backbone/title-trie';
import type { TextTokenizer } from '../backbone/tokenizer';
import { trainPart } from '../data/types';
import { tiedSoftmaxCrossEntropy } from '../tensor/ops';
import { runReadsAsync, runReadsSync, type ReadSteps } from '../tensor/read-steps';
import type { Rng } from '../tensor/rng';
import { readModelWeights } from '../train/checkpoint';
import type { BackboneInputs, ModelContext, ModelSpec, ShardLoss, TrainableModel } from '../train/model-spec';
import { packVisualTokens } from './almostrec';
import { layoutBatch, renderPieces, type Piece } from './almostrec-prompt';
import { batchMembers, shardMembers, shuffledBatches, trainingWindows, type TrainingWindow } from './seq/batches';
import { exportTextLora, initTextLora, lmHead, textLoraAdapter, textLoraShapes, writeLmManifest } from './tallrec';
import { VIP5_END, VIP5_ID_FORMAT, VIP5_TASK, itemPieces, vip5Answer, vip5Pieces, vip5Prefix, vip5Tokens, type Vip5Tokens } from './vip5-prompt';
import { llmOptimizer } from './almostrec-config';

const MODEL = 'VIP5';

export interface Vip5Config extends TrainingConfig {
  warmupSteps: number;
  gradAccum: number;
  lrSchedule: number;
  backboneId: number;
  historyLength: number;
  /** k visual tokens per image: 1, 4, 9, or 0 for all (the cache loaded; see almostrec-context.ts). */
  visualTokens: number;
  /** 0: no visual tokens (ablation). */
  useImages: number;
  loraRank: number;
  loraAlpha: number;
  loraDropout: number;
  loraTargets: number;
}

export const VIP5_MANIFEST_FILE = 'vip5.json';
export const VIP5_LORA_DIR = 'lora';

/** One recommendation: an item index and log P(its ID ; | prompt). */
export interface Vip5Pick {
  item: number;
  logProb: number;
}

function backboneOf(ctx: ModelContext): BackboneInputs {
  if (!ctx.backbone) throw new Error(`${MODEL} needs a backbone (ModelContext.backbone)`);
  return ctx.backbone;
}

/** VIP5's parameters: LoRA only. */
function vip5ParamShapes(config: Vip5Config, ctx: ModelContext): [string, number[]][] {
  return textLoraShapes(config, backboneOf(ctx));
}

export class Vip5Model implements TrainableModel {
  readonly params = new Map<string, tf.Variable>();
  readonly tokens: Vip5Tokens;
  /** <s> and the task: every input starts with them (encoded once per batch as a shared prefix). */
  readonly prefixTokens: number[];
  private readonly lora: LoraAdapter;
  private readonly llava: LlavaModel;
  private readonly head: tf.Tensor2D;
  private readonly tokenizer: TextTokenizer;
  private readonly itemIds: Int32Array;
  /** The visual tokens of items with an image (null without images) and each item's first row in it. */
  private readonly visual: tf.Tensor2D | null = null;
  private readonly visualStart: Int32Array;
  private readonly tokensPerImage: number;
  private readonly seqs: Int32Array[];
  private readonly numItems: number;
  private readonly dm: number;
  private trie: TitleTrie | null = null;
  private windows: TrainingWindow[] = [];
  private order: Int32Array = new Int32Array(0);

  constructor(
    readonly config: Vip5Config,
    ctx: ModelContext,
    values: Map<string, Float32Array>
  ) {
    const inputs = backboneOf(ctx);
    this.tokenizer = inputs.tokenizer;
    this.tokens = vip5Tokens(inputs.tokenizer, ctx.data.itemIds, MODEL);
    this.prefixTokens = vip5Prefix(this.tokens);
    this.itemIds = ctx.data.itemIds;
    this.numItems = ctx.data.numItems;
    this.dm = inputs.backbone.config.text.hiddenSize;
    this.seqs = ctx.data.users.map(trainPart);
    this.head = lmHead(inputs, MODEL);
    this.visualStart = new Int32Array(this.numItems + 1).fill(-1);
    this.tokensPerImage = 0;
    if (config.useImages) {
      if (!inputs.visual) throw new Error(`${MODEL}: useImages is 1 but the context holds no visual tokens`);
      const packed = packVisualTokens(inputs.visual, this.numItems, this.dm, MODEL);
      this.visual = packed.table;
      this.visualStart = packed.start;
      this.tokensPerImage = packed.tokensPerImage;
    }
    let lora: LoraAdapter | null = null;
    try {
      lora = textLoraAdapter(config, inputs, values, this.params, MODEL);
      this.lora = lora;
      this.llava = new LlavaModel(inputs.backbone.config, inputs.backbone.weights, lora);
    } catch (e) {
      lora?.dispose();
      this.visual?.dispose();
      throw e;
    }
  }

  /** Visual tokens an item shows in the prompt (0 without an image or with useImages 0). */
  imageTokens(item: number): number {
    return this.visualStart[item] >= 0 ? this.tokensPerImage : 0;
  }

  /** The pieces after the shared prefix for `items` (oldest first): each ID, ";", then its visual tokens. */
  itemPieces(items: ArrayLike<number>): Piece[] {
    return itemPieces(items, this.tokens, (item) => this.imageTokens(item));
  }

  /** The whole prompt (shared prefix included) that scoring continues for a history (its last historyLength items). */
  promptPieces(history: Int32Array): Piece[] {
    return vip5Pieces(history.subarray(Math.max(0, history.length - this.config.historyLength)), this.tokens, (item) => this.imageTokens(item));
  }

  /** The prompt as text: each item's visual tokens as one `<image×k:label>` mark, `itemLabel` by default its external id. */
  renderPrompt(history: Int32Array, itemLabel: (item: number) => string = (item) => String(this.itemIds[item])): string {
    return renderPieces(this.promptPieces(history), this.tokenizer, itemLabel);
  }

  /** Input embeddings [B, T, d_m] of right-padded rows of text and image pieces, and their attention mask. */
  embedPieces(rows: readonly Piece[][]): { embeds: tf.Tensor3D; mask: number[][] } {
    const l = layoutBatch(rows, (item, index) => this.visualStart[item] + index);
    if (l.idItems.length) throw new Error(`${MODEL}: a prompt holds no ID-embedding tokens (its IDs are text)`);
    const embeds = tf.tidy(() => {
      // layoutBatch's row table: padding (0), text, images.
      const parts: tf.Tensor[] = [tf.zeros([1, this.dm])];
      if (l.textIds.length) parts.push(tf.reshape(this.llava.embedTokens([l.textIds]), [l.textIds.length, this.dm]));
      if (l.imageRows.length) parts.push(tf.gather(this.visual!, tf.tensor1d(l.imageRows, 'int32')));
      return tf.reshape(tf.gather(tf.concat(parts, 0), tf.tensor1d(l.rows, 'int32')), [l.batch, l.length, this.dm]) as tf.Tensor3D;
    });
    return { embeds, mask: l.mask };
  }

  beginEpoch(rng: Rng): number {
    this.windows = trainingWindows(this.seqs, this.config.historyLength);
    if (this.windows.length === 0) throw new Error(`${MODEL}: no user has two training interactions`);
    const { order, steps } = shuffledBatches(this.windows.length, this.config.batchSize, rng);
    this.order = order;
    return steps;
  }

  private windowStart(w: TrainingWindow): number {
    return Math.max(0, w.end - 1 - this.config.historyLength);
  }

  /**
   * Mean cross-entropy over the vocabulary of every answer token of `windows`: the ID tokens and ";" of each
   * target item seq[t], first ≤ t < end, read after the up to historyLength items before it (their IDs and
   * images). LoRA dropout from `rng`.
   */
  windowsLoss(windows: readonly TrainingWindow[], rng: Rng): ShardLoss {
    this.lora.setDropoutRng(rng);
    const rows: Piece[][] = [];
    // Each trained answer token: its row, the position that predicts it, and the token.
    const pickRow: number[] = [];
    const pickPos: number[] = [];
    const targets: number[] = [];
    windows.forEach((w, r) => {
      const seq = this.seqs[w.seq];
      const start = this.windowStart(w);
      const row: Piece[] = [];
      for (let t = start; t < w.end; t++) {
        if (t >= Math.max(w.first, start + 1)) {
          // The item's pieces start with its answer; token k is predicted at the position before it (the
          // previous item's last visual token, or its ";" without an image, for k = 0).
          vip5Answer(seq[t], this.tokens).forEach((token, k) => {
            pickRow.push(r);
            pickPos.push(row.length + k - 1);
            targets.push(token);
          });
        }
        row.push(...this.itemPieces([seq[t]]));
      }
      rows.push(row);
    });
    const p = this.prefixTokens.length;
    const { embeds, mask } = this.embedPieces(rows);
    const width = embeds.shape[1];
    const ones = new Array<number>(p).fill(1);
    const prefix = this.llava.encodePrefix({ inputIds: [this.prefixTokens], training: true });
    const hidden = this.llava.forward({ inputsEmbeds: embeds, attentionMask: mask.map((m) => [...ones, ...m]), prefix, training: true, logits: 'none' }).hidden;
    const at = Int32Array.from(targets, (_, i) => pickRow[i] * width + pickPos[i]);
    const f = tf.gather(tf.reshape(hidden, [rows.length * width, this.dm]), tf.tensor1d(at, 'int32')) as tf.Tensor2D;
    return { loss: tiedSoftmaxCrossEntropy(f, this.head, Int32Array.from(targets), -1), count: targets.length };
  }

  shardLoss(step: number, shard: number, shards: number, rng: Rng): ShardLoss | null {
    if (this.order.length === 0) throw new Error(`${MODEL}: step ${step} before beginEpoch`);
    const all = batchMembers(this.order, this.config.batchSize, step);
    const members = shardMembers(all, (e) => this.windows[e].end - this.windowStart(this.windows[e]), shard, shards);
    return members.length ? this.windowsLoss(Array.from(members, (e) => this.windows[e]), rng) : null;
  }

  stepLoss(step: number, rng: Rng): tf.Scalar {
    return this.shardLoss(step, 0, 1, rng)!.loss;
  }

  /**
   * log P(ID ; | prompt) of items 1…numItems (entry i − 1 for item i), the prompt encoded once (eval mode);
   * its reads left to the driver (tensor/read-steps.ts).
   */
  private *itemScoreSteps(history: Int32Array): ReadSteps<Float64Array> {
    this.trie ??= new TitleTrie(this.tokens.ids.slice(1));
    const { embeds } = this.embedPieces([this.promptPieces(history)]);
    try {
      return (yield* trieScoreSteps(this.llava, { inputsEmbeds: embeds }, this.trie, { endTokenId: this.tokens.end })).scores;
    } finally {
      embeds.dispose();
    }
  }

  private *scoreSteps(histories: Int32Array[]): ReadSteps<Float32Array> {
    const width = this.numItems + 1;
    const out = new Float32Array(histories.length * width);
    for (const [b, h] of histories.entries()) {
      out[b * width] = -Infinity;
      out.set(yield* this.itemScoreSteps(h), b * width + 1);
    }
    return out;
  }

  /** Eval mode: every item scored by log P(ID ; | prompt) over the prefix tree of all IDs; column 0 is −∞. */
  scoreBatch(histories: Int32Array[]): Float32Array {
    return runReadsSync(this.scoreSteps(histories));
  }

  /** scoreBatch read asynchronously (every backend, webgpu included). */
  scoreBatchAsync(histories: Int32Array[]): Promise<Float32Array> {
    return runReadsAsync(this.scoreSteps(histories));
  }

  /** The k best of an itemScoreSteps result, best first (ties to the lower index). */
  private topPicks(scores: Float64Array, k: number): Vip5Pick[] {
    const order = Array.from(scores, (_, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);
    return order.slice(0, Math.max(0, k)).map((i) => ({ item: i + 1, logProb: scores[i] }));
  }

  /**
   * The k items whose IDs the model most likely writes next (best first), among all valid IDs: VIP5's
   * constrained beam search, exact (an unlimited beam) since every valid ID's likelihood is scored. Items of
   * the history are not removed.
   */
  recommend(history: Int32Array, k: number): Vip5Pick[] {
    return this.topPicks(runReadsSync(this.itemScoreSteps(history)), k);
  }

  /** recommend read asynchronously (every backend, webgpu included). */
  async recommendAsync(history: Int32Array, k: number): Promise<Vip5Pick[]> {
    return this.topPicks(await runReadsAsync(this.itemScoreSteps(history)), k);
  }

  /** decodeGreedy's computation, its reads left to the driver. */
  private *greedySteps(history: Int32Array): ReadSteps<Vip5Pick> {
    const { embeds } = this.embedPieces([this.promptPieces(history)]);
    try {
      // The ";" ends every candidate, so none is a prefix of another: decoding stops at a leaf.
      const candidates = this.tokens.ids.slice(1).map((_, i) => vip5Answer(i + 1, this.tokens));
      const r = yield* constrainedSteps(this.llava, { inputsEmbeds: embeds }, candidates, this.tokens.end);
      return { item: r.index + 1, logProb: r.logProb };
    } finally {
      embeds.dispose();
    }
  }

  /**
   * Constrained greedy decoding (VIP5's beam of width 1): at each step the likeliest token that continues
   * some valid ID and ";"; its log-probability is that item's score. It need not reach recommend's first
   * item: a greedy prefix choice can lead past the likeliest complete ID.
   */
  decodeGreedy(history: Int32Array): Vip5Pick {
    return runReadsSync(this.greedySteps(history));
  }

  /** decodeGreedy read asynchronously (every backend, webgpu included). */
  decodeGreedyAsync(history: Int32Array): Promise<Vip5Pick> {
    return runReadsAsync(this.greedySteps(history));
  }

  dispose(): void {
    this.llava.dispose();
    this.lora.dispose();
    this.visual?.dispose();
    this.params.clear();
  }
}

/** VIP5's artifacts: the LoRA adapter as Hugging Face PEFT (a causal-LM adapter: the backbone's own head) and a manifest. */
function exportVip5(checkpointPath: string, ctx: ModelContext): { kind: string; path: string }[] {
  const inputs = backboneOf(ctx);
  const dir = dirname(checkpointPath);
  const { weights: w, config } = readModelWeights<Vip5Config>(checkpointPath, 'vip5', ctx.data, (c) => vip5ParamShapes(c, ctx));
  const adapter = exportTextLora(join(dir, VIP5_LORA_DIR), config, inputs, w.params);
  const images = config.useImages === 1 && inputs.visual !== null;
  const manifest = writeLmManifest(join(dir, VIP5_MANIFEST_FILE), 'vip5', ctx, inputs, w, VIP5_LORA_DIR, {
    prompt: {
      task: VIP5_TASK,
      idFormat: VIP5_ID_FORMAT,
      end: VIP5_END,
      item: 'the ID, the end token, then the item\'s visual tokens (none without an image)',
      answer: 'the next item\'s ID, then the end token',
      historyLength: config.historyLength
    },
    visual: images ? { visualTokens: config.visualTokens, tokensPerImage: inputs.visual!.tokensPerImage, cache: inputs.visual!.cacheId } : null
  });
  return [...adapter, manifest];
}

export const vip5Spec: ModelSpec<Vip5Config> = {
  kind: 'vip5',
  needsBackbone: true,
  paramShapes: vip5ParamShapes,
  init: (config, ctx, rng) => initTextLora(vip5ParamShapes(config, ctx), rng),
  build: (config, ctx, values) => new Vip5Model(config, ctx, values),
  optimizer: llmOptimizer,
  exportArtifacts: exportVip5
};
