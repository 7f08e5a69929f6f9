// LLaRA (Liao et al. 2024, "LLaRA: Large Language-Recommendation Assistant"; DESIGN §6) on the workbench's
// backbone. Each item in a prompt is hybrid: its title tokens, then one ID token whose input embedding is a
// trainable MLP projection of the frozen sequential model's item embedding M(i) (as ALMOSTREC's M). The
// prompt lists the history and a set of candidates (llara-prompt.ts); the model learns to write the target's
// title followed by ";" through the backbone's frozen language-model head, as TALLRec does (tallrec.ts).
// Trainable: LoRA and the projector only.
//
// Curriculum prompt tuning: a step trains on text-only prompts (titles, no ID tokens) or hybrid ones, hybrid
// with a probability that rises linearly from 0 to 1. As in LLaRA's code (TrainCollater: threshold =
// cur_step / max_step, one draw per batch, max_step = all the training's batches), the probability rises per
// step, not per epoch, and one draw decides a whole batch; its span is `curriculumEpochs` (at most the run's
// epochs — LLaRA's span is the whole run). The draws come from the epoch's rng, so a run resumes exactly. A
// text-only step gives the projector no gradient and Adam leaves it alone (LLaRA freezes it for such batches).
//
// Examples: one target per example (the candidate list contains it, so the positions of a sequence cannot be
// trained at once), `samplesPerUser` per user per epoch from its training part, the history being the up to L
// items before it; candidates = the target and items of no training interaction of the user, shuffled.
// Evaluation always reads hybrid prompts:
// - scoreBatch (Table 2's full ranking): the prompt lists `candidates` items drawn — from the seed and the
//   history alone — among the items not in the history, never conditioned on a target; every item is then
//   scored by log P(title ; | prompt) over the prefix tree of all titles (backbone/title-trie.ts);
// - LLaRA's own HR@1 among candidates with its valid ratio: llara-eval.ts, over `answer`.
import * as tf from '@tensorflow/tfjs-core';
import { greedySteps } from '../backbone/generate';
import { LlavaModel } from '../backbone/llava-model';
import type { LoraAdapter } from '../backbone/lora';
import { TitleTrie, trieScoreSteps } from '../backbone/title-trie';
import type { TextTokenizer } from '../backbone/tokenizer';
import { trainPart } from '../data/types';
import { gelu, tiedSoftmaxCrossEntropy } from '../tensor/ops';
import { runReadsAsync, runReadsSync, type ReadSteps } from '../tensor/read-steps';
import type { Rng } from '../tensor/rng';
import type { ModelContext, ModelSpec, ShardLoss, TrainableModel } from '../train/model-spec';
import { layoutBatch, renderPieces, singleToken, type Piece } from './almostrec-prompt';
import { makeVariables } from './cf/tables';
import { llaraOwnEvaluation } from './llara-eval';
import { exportLlara } from './llara-export';
import { MODEL, PROJECTOR, initLlara, llaraInputs, llaraParamShapes, type LlaraConfig } from './llara-params';
import { candidateList, historyRng, llaraAnswer, llaraPieces, llaraPrefix, llaraTokens, matchCandidate, type LlaraTokens } from './llara-prompt';
import { batchMembers, sampledTargets, shardMembers, shuffledBatches } from './seq/batches';
import { TALLREC_SEPARATOR, answerTitles, lmHead, textLoraAdapter } from './tallrec';
import { llmOptimizer } from './almostrec-config';

export type { LlaraConfig } from './llara-params';

/** Salts of the evaluation draws (historyRng): the ranking prompt's candidates, LLaRA's HR@1 candidates. */
const SCORE_SALT = 1;
const CANDIDATE_EVAL_SALT = 2;

/** One training example: the history (at most L items, oldest first), the target and the listed candidates (the target among them). */
export interface LlaraExample {
  history: Int32Array;
  target: number;
  candidates: Int32Array;
}

/** A greedy answer to a hybrid prompt: the tokens generated (with the closing ";" when reached), their text, the candidate it names. */
export interface LlaraAnswer {
  tokens: number[];
  text: string;
  /** Index into the candidates of the one whose title the text contains (matchCandidate), or null (invalid). */
  matched: number | null;
}

/** One user's case: the prompt as text (ID tokens as [ID:item]), what the model wrote, which candidate that is. */
export interface LlaraCase {
  prompt: string;
  generated: string;
  matched: number | null;
  candidates: number[];
  target: number;
  hit: boolean;
}

/**
 * The probability that step `step` (0-based) of epoch `epoch` (1-based) trains on hybrid prompts: linear in
 * the run's step from 0 at its first step to 1 after `spanEpochs` epochs; 1 throughout when spanEpochs = 0.
 */
export function curriculumProbability(epoch: number, step: number, stepsPerEpoch: number, spanEpochs: number): number {
  if (spanEpochs <= 0) return 1;
  return Math.min(1, ((epoch - 1) * stepsPerEpoch + step) / (spanEpochs * stepsPerEpoch));
}

export class LlaraModel implements TrainableModel {
  readonly params = new Map<string, tf.Variable>();
  readonly tokens: LlaraTokens;
  /** <s> and the history's lead-in: every prompt starts with them (encoded once per batch as a shared prefix). */
  readonly prefixTokens: number[];
  private readonly projector: tf.Variable[] = [];
  private readonly lora: LoraAdapter;
  private readonly llava: LlavaModel;
  private readonly head: tf.Tensor2D;
  private readonly itemTable: tf.Tensor2D;
  private readonly tokenizer: TextTokenizer;
  private readonly seqs: Int32Array[];
  /** Per user, the items of its training part: never a training negative. */
  private readonly seen: Set<number>[];
  private readonly numItems: number;
  private readonly dm: number;
  private trie: TitleTrie | null = null;
  /** The epoch's examples (user, target position, candidates) and their order. */
  private examples: { seq: number; t: number; candidates: Int32Array }[] = [];
  private order: Int32Array = new Int32Array(0);
  /** Per step of the epoch, 1 when it trains on hybrid prompts. */
  private hybrid: Uint8Array = new Uint8Array(0);

  constructor(
    readonly config: LlaraConfig,
    ctx: ModelContext,
    values: Map<string, Float32Array>
  ) {
    const inputs = llaraInputs(ctx);
    const tok = inputs.tokenizer;
    const sep = singleToken(tok, TALLREC_SEPARATOR, MODEL);
    this.head = lmHead(inputs, MODEL);
    this.tokenizer = tok;
    this.tokens = llaraTokens(tok, answerTitles(inputs, ctx.data.itemIds, config.maxTitleTokens), sep);
    this.prefixTokens = llaraPrefix(this.tokens);
    this.numItems = ctx.data.numItems;
    this.dm = inputs.backbone.config.text.hiddenSize;
    this.seqs = ctx.data.users.map(trainPart);
    this.seen = this.seqs.map((s) => new Set(s));
    const shapes = llaraParamShapes(config, ctx);
    const own = makeVariables('llara', shapes.slice(0, 4), values);
    for (const [name, v] of own) {
      this.params.set(name, v);
      this.projector.push(v);
    }
    let lora: LoraAdapter | null = null;
    try {
      lora = textLoraAdapter(config, inputs, values, this.params, MODEL);
      this.lora = lora;
      this.llava = new LlavaModel(inputs.backbone.config, inputs.backbone.weights, lora);
    } catch (e) {
      lora?.dispose();
      tf.dispose(this.projector);
      throw e;
    }
    this.itemTable = tf.tensor2d(inputs.itemTable.values, [this.numItems + 1, inputs.itemTable.dim]);
  }

  private p(name: string): tf.Variable {
    return this.params.get(name)!;
  }

  /** ID-token embeddings [n, d_m] = MLP(M(items)): Linear, GELU, Linear (LLaRA's MlpProjector). */
  project(items: ArrayLike<number>): tf.Tensor2D {
    return tf.tidy(() => {
      const m = tf.gather(this.itemTable, tf.tensor1d(Int32Array.from(items), 'int32'));
      const h = gelu(tf.add(tf.matMul(m, this.p(PROJECTOR.w1)), this.p(PROJECTOR.b1)));
      return tf.add(tf.matMul(h as tf.Tensor2D, this.p(PROJECTOR.w2)), this.p(PROJECTOR.b2)) as tf.Tensor2D;
    });
  }

  /** Input embeddings [B, T, d_m] of right-padded rows of text and ID pieces, and their attention mask. */
  embedPieces(rows: readonly Piece[][]): { embeds: tf.Tensor3D; mask: number[][] } {
    const l = layoutBatch(rows, () => {
      throw new Error(`${MODEL}: a prompt has no image tokens`);
    });
    const embeds = tf.tidy(() => {
      // layoutBatch's row table: padding (0), text, images (none here), ID tokens.
      const parts: tf.Tensor[] = [tf.zeros([1, this.dm])];
      if (l.textIds.length) parts.push(tf.reshape(this.llava.embedTokens([l.textIds]), [l.textIds.length, this.dm]));
      if (l.idItems.length) parts.push(this.project(l.idItems));
      return tf.reshape(tf.gather(tf.concat(parts, 0), tf.tensor1d(l.rows, 'int32')), [l.batch, l.length, this.dm]) as tf.Tensor3D;
    });
    return { embeds, mask: l.mask };
  }

  /** The whole prompt (shared prefix included) for the last historyLength items of `history` and `candidates`. */
  promptPieces(history: Int32Array, candidates: ArrayLike<number>, hybrid: boolean): Piece[] {
    return llaraPieces(history.subarray(Math.max(0, history.length - this.config.historyLength)), candidates, this.tokens, hybrid);
  }

  /** A title as the prompt shows it (cut to maxTitleTokens), as text. */
  titleText(item: number): string {
    return this.tokenizer.decode(this.tokens.titles[item]);
  }

  /**
   * The epoch's examples, drawn only from `rng`: per user samplesPerUser targets of its training part (after
   * the first), a fresh order, each example's candidates, then one curriculum draw per step.
   */
  beginEpoch(rng: Rng, epoch = 1): number {
    const pairs = sampledTargets(this.seqs, this.config.samplesPerUser, rng);
    if (pairs.length === 0) throw new Error(`${MODEL}: no user has two training interactions`);
    const { order, steps } = shuffledBatches(pairs.length / 2, this.config.batchSize, rng);
    this.examples = [];
    for (let i = 0; i < pairs.length; i += 2) {
      const [seq, t] = [pairs[i], pairs[i + 1]];
      this.examples.push({ seq, t, candidates: candidateList(this.seqs[seq][t], this.numItems, this.seen[seq], this.config.candidates, rng) });
    }
    this.order = order;
    const span = Math.min(this.config.curriculumEpochs, this.config.epochs);
    // One draw per step whatever the probability, so the rng's stream never depends on the schedule.
    this.hybrid = Uint8Array.from({ length: steps }, (_, s) => (rng.next() < curriculumProbability(epoch, s, steps, span) ? 1 : 0));
    return steps;
  }

  /** Whether step `step` of the current epoch trains on hybrid prompts (else text-only). */
  isHybridStep(step: number): boolean {
    if (step >= this.hybrid.length) throw new Error(`${MODEL}: step ${step} is not in the current epoch (${this.hybrid.length} steps; beginEpoch first)`);
    return this.hybrid[step] === 1;
  }

  /** Example e of the current epoch. */
  example(e: number): LlaraExample {
    const { seq, t, candidates } = this.examples[e];
    const s = this.seqs[seq];
    return { history: s.subarray(Math.max(0, t - this.config.historyLength), t), target: s[t], candidates };
  }

  /**
   * Mean cross-entropy over the vocabulary of every answer token (the target's title and ";") of `examples`,
   * each read after its prompt (hybrid or text-only); LoRA dropout from `rng`.
   */
  examplesLoss(examples: readonly LlaraExample[], hybrid: boolean, rng: Rng): ShardLoss {
    this.lora.setDropoutRng(rng);
    const p = this.prefixTokens.length;
    const rows: Piece[][] = [];
    // Each answer token: its row, the position that predicts it (the one before it) and the token.
    const pickRow: number[] = [];
    const pickPos: number[] = [];
    const targets: number[] = [];
    examples.forEach((ex, r) => {
      const prompt = this.promptPieces(ex.history, ex.candidates, hybrid).slice(p);
      const answer = llaraAnswer(ex.target, this.tokens);
      answer.forEach((token, k) => {
        pickRow.push(r);
        pickPos.push(prompt.length + k - 1);
        targets.push(token);
      });
      rows.push([...prompt, ...answer.map((token): Piece => ({ kind: 'text', token }))]);
    });
    const { embeds, mask } = this.embedPieces(rows);
    const width = embeds.shape[1];
    const ones = new Array<number>(p).fill(1);
    const prefix = this.llava.encodePrefix({ inputIds: [this.prefixTokens], training: true });
    const hidden = this.llava.forward({ inputsEmbeds: embeds, attentionMask: mask.map((m) => [...ones, ...m]), prefix, training: true, logits: 'none' }).hidden;
    const at = Int32Array.from(targets, (_, i) => pickRow[i] * width + pickPos[i]);
    const f = tf.gather(tf.reshape(hidden, [rows.length * width, this.dm]), tf.tensor1d(at, 'int32')) as tf.Tensor2D;
    return { loss: tiedSoftmaxCrossEntropy(f, this.head, Int32Array.from(targets), -1), count: targets.length };
  }

  /** Prompt tokens of example e (titles and, counted alike, ID tokens): what balances the shards. */
  private exampleLength(e: number): number {
    const ex = this.example(e);
    let n = 0;
    for (const list of [ex.history, ex.candidates]) for (const item of list) n += this.tokens.titles[item].length + 2;
    return n;
  }

  shardLoss(step: number, shard: number, shards: number, rng: Rng): ShardLoss | null {
    if (this.order.length === 0) throw new Error(`${MODEL}: step ${step} before beginEpoch`);
    const members = shardMembers(batchMembers(this.order, this.config.batchSize, step), (e) => this.exampleLength(e), shard, shards);
    return members.length ? this.examplesLoss(Array.from(members, (e) => this.example(e)), this.isHybridStep(step), rng) : null;
  }

  stepLoss(step: number, rng: Rng): tf.Scalar {
    return this.shardLoss(step, 0, 1, rng)!.loss;
  }

  /** The candidates a ranking prompt lists for `history`: drawn from the seed and the history alone, outside the history. */
  scoringCandidates(history: Int32Array): Int32Array {
    return candidateList(null, this.numItems, new Set(history), this.config.candidates, historyRng(this.config.seed, SCORE_SALT, history));
  }

  /** LLaRA's evaluation candidates: `target` and items outside the history, in an order drawn from the seed and the history. */
  evalCandidates(history: Int32Array, target: number): Int32Array {
    return candidateList(target, this.numItems, new Set(history), this.config.candidates, historyRng(this.config.seed, CANDIDATE_EVAL_SALT, history));
  }

  /** The hybrid prompt's input embeddings [1, T, d_m] (the caller disposes them). */
  private promptEmbeds(history: Int32Array, candidates: ArrayLike<number>): tf.Tensor3D {
    return this.embedPieces([this.promptPieces(history, candidates, true)]).embeds;
  }

  /** scoreBatch's computation, its reads left to the driver (tensor/read-steps.ts). */
  private *scoreSteps(histories: Int32Array[]): ReadSteps<Float32Array> {
    this.trie ??= new TitleTrie(this.tokens.titles.slice(1));
    const width = this.numItems + 1;
    const out = new Float32Array(histories.length * width);
    for (const [b, h] of histories.entries()) {
      const embeds = this.promptEmbeds(h, this.scoringCandidates(h));
      try {
        const { scores } = yield* trieScoreSteps(this.llava, { inputsEmbeds: embeds }, this.trie, { endTokenId: this.tokens.separator });
        out[b * width] = -Infinity;
        for (let i = 1; i < width; i++) out[b * width + i] = scores[i - 1];
      } finally {
        embeds.dispose();
      }
    }
    return out;
  }

  /** Eval mode: every item scored by log P(title ; | hybrid prompt), the prompt encoded once per history. */
  scoreBatch(histories: Int32Array[]): Float32Array {
    return runReadsSync(this.scoreSteps(histories));
  }

  /** scoreBatch read asynchronously (every backend, webgpu included). */
  scoreBatchAsync(histories: Int32Array[]): Promise<Float32Array> {
    return runReadsAsync(this.scoreSteps(histories));
  }

  /** answer's computation, its reads left to the driver. */
  private *answerSteps(history: Int32Array, candidates: ArrayLike<number>): ReadSteps<LlaraAnswer> {
    const embeds = this.promptEmbeds(history, candidates);
    let tokens: number[];
    let stopped: boolean;
    try {
      ({ tokens, stoppedAtEos: stopped } = yield* greedySteps(this.llava, { inputsEmbeds: embeds }, { maxNewTokens: this.config.maxTitleTokens + 1, eosTokenId: this.tokens.separator }));
    } finally {
      embeds.dispose();
    }
    const text = this.tokenizer.decode(stopped ? tokens.slice(0, -1) : tokens);
    return { tokens, text, matched: matchCandidate(text, Array.from(candidates, (i) => this.titleText(i))) };
  }

  /** Greedy answer to the hybrid prompt of `history` and `candidates`: at most maxTitleTokens + 1 tokens, stopping at ";". */
  answer(history: Int32Array, candidates: ArrayLike<number>): LlaraAnswer {
    return runReadsSync(this.answerSteps(history, candidates));
  }

  /** answer read asynchronously (every backend, webgpu included). */
  answerAsync(history: Int32Array, candidates: ArrayLike<number>): Promise<LlaraAnswer> {
    return runReadsAsync(this.answerSteps(history, candidates));
  }

  /** caseStudy's computation, its reads left to the driver. */
  private *caseSteps(history: Int32Array, target: number, itemLabel: (item: number) => string): ReadSteps<LlaraCase> {
    const candidates = this.evalCandidates(history, target);
    const a = yield* this.answerSteps(history, candidates);
    return {
      prompt: renderPieces(this.promptPieces(history, candidates, true), this.tokenizer, itemLabel),
      generated: a.text,
      matched: a.matched,
      candidates: Array.from(candidates),
      target,
      hit: a.matched !== null && candidates[a.matched] === target
    };
  }

  /** One history and its held-out target as a case for a report: the prompt LLaRA's evaluation reads and what the model answers. */
  caseStudy(history: Int32Array, target: number, itemLabel: (item: number) => string = String): LlaraCase {
    return runReadsSync(this.caseSteps(history, target, itemLabel));
  }

  /** caseStudy read asynchronously (every backend, webgpu included). */
  caseStudyAsync(history: Int32Array, target: number, itemLabel: (item: number) => string = String): Promise<LlaraCase> {
    return runReadsAsync(this.caseSteps(history, target, itemLabel));
  }

  dispose(): void {
    this.llava.dispose();
    this.lora.dispose();
    tf.dispose([...this.projector, this.itemTable]);
    this.projector.length = 0;
    this.params.clear();
  }
}

export const llaraSpec: ModelSpec<LlaraConfig> = {
  kind: 'llara',
  needsBackbone: true,
  paramShapes: llaraParamShapes,
  init: initLlara,
  build: (config, ctx, values) => new LlaraModel(config, ctx, values),
  optimizer: llmOptimizer,
  exportArtifacts: exportLlara,
  ownEvaluation: (model, data, dir, opts) => llaraOwnEvaluation(model as LlaraModel, data, dir, opts)
};
