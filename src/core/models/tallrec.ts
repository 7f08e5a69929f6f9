// TALLRec (Bao et al. 2023, "TALLRec: An Effective and Efficient Tuning Framework to Align Large Language
// Model with Recommendation"), amended for sequential recommendation as the ALMOSTREC paper does (DESIGN §6):
// instruction tuning with LoRA on prompts made of the history's titles, the target being the next item's
// title. The backbone's own language-model head is kept (frozen); only LoRA trains.
//
//   <s> task  t(i1) ;  t(i2) ;  …  t(iL) ;   → the next title, ended by ";"
//
// Training reads a window of L + 1 items and, as SASRec trains every position, learns every title after the
// first from the titles before it (a title's tokens and the ";" that ends it, causal attention hiding what
// follows). Scoring ranks every item by log P(title ; | prompt) over a prefix tree of all titles
// (backbone/title-trie.ts: the prompt runs once, each distinct title prefix once) — the full ranking Table 2
// needs, where TALLRec's original yes/no answer cannot rank. The ";" closes a title so that a short title is
// not favoured over a longer one that starts with it.
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { TrainingConfig } from '../../shared/api';
import { LlavaModel } from '../backbone/llava-model';
import { LoraAdapter, loraModuleShapes, type LoraConfig, type PeftLoraModule } from '../backbone/lora';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, writeAtomically, writePeftAdapter, type LoraPair } from '../backbone/peft-adapter';
import { TitleTrie, trieScoreSteps } from '../backbone/title-trie';
import { trainPart } from '../data/types';
import { tiedSoftmaxCrossEntropy } from '../tensor/ops';
import { runReadsAsync, runReadsSync, type ReadSteps } from '../tensor/read-steps';
import type { Rng } from '../tensor/rng';
import { readModelWeights } from '../train/checkpoint';
import type { BackboneInputs, ModelContext, ModelSpec, ShardLoss, TrainableModel } from '../train/model-spec';
import { loraTargetsOf, llmOptimizer } from './almostrec-config';
import { loraName } from './almostrec-params';
import { uniformValues } from './cf/tables';
import { batchMembers, shardMembers, shuffledBatches, trainingWindows, type TrainingWindow } from './seq/batches';
import { singleToken } from './almostrec-prompt';

const MODEL = 'TALLRec';

export interface TallrecConfig extends TrainingConfig {
  warmupSteps: number;
  gradAccum: number;
  lrSchedule: number;
  backboneId: number;
  historyLength: number;
  maxTitleTokens: number;
  loraRank: number;
  loraAlpha: number;
  loraDropout: number;
  loraTargets: number;
}

export const TALLREC_TASK = 'Given the titles of the items a user interacted with, in order, name the next one. History:';
/** Ends every title in the prompt and in the answer. */
export const TALLREC_SEPARATOR = ';';
export const TALLREC_MANIFEST_FILE = 'tallrec.json';
export const TALLREC_LORA_DIR = 'lora';

function backboneOf(ctx: ModelContext): BackboneInputs {
  if (!ctx.backbone) throw new Error(`${MODEL} needs a backbone (ModelContext.backbone)`);
  return ctx.backbone;
}

/** The LoRA settings of a model that adapts the language model under its own head (TALLRec, LLaRA). */
export type TextLoraSettings = Pick<TallrecConfig, 'loraRank' | 'loraAlpha' | 'loraDropout' | 'loraTargets' | 'seed'>;

export function textLoraOf(config: TextLoraSettings): LoraConfig {
  return { r: config.loraRank, alpha: config.loraAlpha, dropout: config.loraDropout, targets: loraTargetsOf(config.loraTargets), towers: ['text'] };
}

/** LoRA's A [r, in] and B [out, r] of every adapted module, in a fixed order. */
export function textLoraShapes(config: TextLoraSettings, inputs: BackboneInputs): [string, number[]][] {
  const out: [string, number[]][] = [];
  for (const [path, [outDim, inDim]] of loraModuleShapes(inputs.backbone.config, textLoraOf(config))) {
    out.push([loraName(path, 'A'), [config.loraRank, inDim]], [loraName(path, 'B'), [outDim, config.loraRank]]);
  }
  return out;
}

/** LoRA as PEFT initialises it: A U(±1/√in), B = 0 — training starts from the backbone's own language model. */
export function initTextLora(shapes: [string, number[]][], rng: Rng, into = new Map<string, Float32Array>()): Map<string, Float32Array> {
  for (const [name, shape] of shapes) {
    if (!name.startsWith('lora.')) continue;
    const size = shape[0] * shape[1];
    into.set(name, name.endsWith('.B') ? new Float32Array(size) : uniformValues(size, 1 / Math.sqrt(shape[1]), rng));
  }
  return into;
}

/** The adapter over `values` (textLoraShapes' names); its factors are entered in `params` under those names. */
export function textLoraAdapter(config: TextLoraSettings, inputs: BackboneInputs, values: Map<string, Float32Array>, params: Map<string, tf.Variable>, model: string): LoraAdapter {
  const modules = new Map<string, PeftLoraModule>();
  for (const [path, [outDim, inDim]] of loraModuleShapes(inputs.backbone.config, textLoraOf(config))) {
    const factor = (name: string, shape: [number, number]): PeftLoraModule['a'] => {
      const v = values.get(name);
      if (!v || v.length !== shape[0] * shape[1]) throw new Error(`${model}: parameter "${name}" is missing or not [${shape}]`);
      return { data: v, shape };
    };
    modules.set(path, { a: factor(loraName(path, 'A'), [config.loraRank, inDim]), b: factor(loraName(path, 'B'), [outDim, config.loraRank]) });
  }
  const lora = LoraAdapter.fromPeft(modules, textLoraOf(config), config.seed);
  for (const path of modules.keys()) {
    const f = lora.factors(path)!;
    params.set(loraName(path, 'A'), f.a);
    params.set(loraName(path, 'B'), f.b);
  }
  return lora;
}

/**
 * Writes the LoRA factors of `params` as a Hugging Face PEFT causal-LM adapter (the backbone's own head reads
 * the adapted model) in `dir`, and returns its run artifacts.
 */
export function exportTextLora(dir: string, config: TextLoraSettings, inputs: BackboneInputs, params: Map<string, Float32Array>): { kind: string; path: string }[] {
  const lora = textLoraOf(config);
  const modules = new Map<string, LoraPair>();
  for (const [path, [outDim, inDim]] of loraModuleShapes(inputs.backbone.config, lora)) {
    modules.set(path, { a: { data: params.get(loraName(path, 'A'))!, shape: [lora.r, inDim] }, b: { data: params.get(loraName(path, 'B'))!, shape: [outDim, lora.r] } });
  }
  writePeftAdapter(dir, { r: lora.r, alpha: lora.alpha, dropout: lora.dropout, targetModules: [...lora.targets], baseModel: inputs.backbone.path, taskType: 'CAUSAL_LM' }, modules);
  return [
    { kind: 'lora_adapter', path: join(dir, ADAPTER_WEIGHTS_FILE) },
    { kind: 'lora_adapter_config', path: join(dir, ADAPTER_CONFIG_FILE) }
  ];
}

/**
 * Writes the manifest of a causal-LM recommender's export (TALLRec, VIP5) atomically, its common part (format,
 * model, dataset, backbone, best epoch, validation, config, adapter folder) followed by the model's own fields.
 */
export function writeLmManifest(
  path: string,
  model: string,
  ctx: ModelContext,
  inputs: BackboneInputs,
  w: { epoch: number; valid: unknown; config: Record<string, number> },
  loraDir: string,
  own: Record<string, unknown>
): { kind: string; path: string } {
  const manifest = {
    format: `${model}-export/1`,
    model,
    dataset: { id: ctx.data.datasetId, name: inputs.datasetName, numItems: ctx.data.numItems },
    backbone: { id: inputs.backbone.id, name: inputs.backbone.name, path: inputs.backbone.path, tokenizer: inputs.tokenizer.id },
    epoch: w.epoch,
    valid: w.valid,
    config: w.config,
    ...own,
    loraAdapter: loraDir
  };
  writeAtomically(path, JSON.stringify(manifest, null, 2) + '\n');
  return { kind: `${model}_manifest`, path };
}

/** TALLRec's parameters: LoRA only. */
function tallrecParamShapes(config: TallrecConfig, ctx: ModelContext): [string, number[]][] {
  return textLoraShapes(config, backboneOf(ctx));
}

/** The frozen language-model head [vocab, d] (the embedding table when tied). */
export function lmHead(inputs: BackboneInputs, model = MODEL): tf.Tensor2D {
  const text = inputs.backbone.config.text;
  const head = inputs.backbone.weights.get(text.tieWordEmbeddings ? 'text.embed_tokens.weight' : 'lm_head.weight');
  if (!head || head.rank !== 2) throw new Error(`${model}: backbone ${inputs.backbone.name} has no language-model head`);
  return head as tf.Tensor2D;
}

/** Title tokens per item index, cut to `max` tokens; an item without a title is named by its id. */
export function answerTitles(inputs: BackboneInputs, itemIds: Int32Array, max: number): number[][] {
  return inputs.titleTokens.map((t, i) => (i === 0 ? [] : (t.length ? t : inputs.tokenizer.encode(`Item ${itemIds[i]}`, { addBos: false })).slice(0, max)));
}

export class TallrecModel implements TrainableModel {
  readonly params = new Map<string, tf.Variable>();
  private readonly lora: LoraAdapter;
  private readonly llava: LlavaModel;
  private readonly head: tf.Tensor2D;
  private readonly titles: number[][];
  private readonly separator: number;
  /** <s> and the task: every input starts with them (encoded once per batch as a shared prefix). */
  readonly prefixTokens: number[];
  private readonly pad: number;
  private readonly seqs: Int32Array[];
  private readonly numItems: number;
  private trie: TitleTrie | null = null;
  private windows: TrainingWindow[] = [];
  private order: Int32Array = new Int32Array(0);

  constructor(
    readonly config: TallrecConfig,
    ctx: ModelContext,
    values: Map<string, Float32Array>
  ) {
    const inputs = backboneOf(ctx);
    const tok = inputs.tokenizer;
    this.separator = singleToken(tok, TALLREC_SEPARATOR, MODEL);
    this.prefixTokens = [...(tok.bosId >= 0 ? [tok.bosId] : []), ...tok.encode(TALLREC_TASK, { addBos: false })];
    this.pad = Math.max(0, inputs.backbone.config.text.padTokenId);
    this.numItems = ctx.data.numItems;
    this.seqs = ctx.data.users.map(trainPart);
    this.titles = answerTitles(inputs, ctx.data.itemIds, config.maxTitleTokens);
    this.lora = textLoraAdapter(config, inputs, values, this.params, MODEL);
    try {
      this.llava = new LlavaModel(inputs.backbone.config, inputs.backbone.weights, this.lora);
    } catch (e) {
      this.lora.dispose();
      throw e;
    }
    this.head = lmHead(inputs);
  }

  /** The tokens after the prefix for `items` (oldest first): each title, then the separator. */
  historyTokens(items: ArrayLike<number>): number[] {
    const out: number[] = [];
    for (let i = 0; i < items.length; i++) out.push(...this.titles[items[i]], this.separator);
    return out;
  }

  /** The whole prompt that scoring continues for a history (its last historyLength items). */
  promptTokens(history: Int32Array): number[] {
    return [...this.prefixTokens, ...this.historyTokens(history.subarray(Math.max(0, history.length - this.config.historyLength)))];
  }

  beginEpoch(rng: Rng): number {
    this.windows = trainingWindows(this.seqs, this.config.historyLength);
    if (this.windows.length === 0) throw new Error(`${MODEL}: no user has two training interactions`);
    const { order, steps } = shuffledBatches(this.windows.length, this.config.batchSize, rng);
    this.order = order;
    return steps;
  }

  /**
   * Mean cross-entropy over the vocabulary of every answer token of `windows`: the tokens (title and ";") of
   * each target item seq[t], first ≤ t < end, read after the titles of the up to historyLength items before it.
   */
  windowsLoss(windows: readonly TrainingWindow[], rng: Rng): ShardLoss {
    this.lora.setDropoutRng(rng);
    const rows: number[][] = [];
    // Each trained answer token: its row, the position that predicts it, and the token.
    const pickRow: number[] = [];
    const pickPos: number[] = [];
    const targets: number[] = [];
    windows.forEach((w, r) => {
      const seq = this.seqs[w.seq];
      const start = Math.max(0, w.end - 1 - this.config.historyLength);
      const row: number[] = [];
      for (let t = start; t < w.end; t++) {
        const answer = [...this.titles[seq[t]], this.separator];
        if (t >= Math.max(w.first, start + 1)) {
          // Token k of the answer is predicted at the position before it (the previous ";" for k = 0).
          answer.forEach((token, k) => {
            pickRow.push(r);
            pickPos.push(row.length + k - 1);
            targets.push(token);
          });
        }
        row.push(...answer);
      }
      rows.push(row);
    });
    const width = Math.max(...rows.map((r) => r.length));
    const p = this.prefixTokens.length;
    const ids = rows.map((r) => [...r, ...new Array<number>(width - r.length).fill(this.pad)]);
    const mask = rows.map((r) => [...new Array<number>(p).fill(1), ...Array.from({ length: width }, (_, t) => (t < r.length ? 1 : 0))]);
    const at = Int32Array.from(targets, (_, i) => pickRow[i] * width + pickPos[i]);
    const prefix = this.llava.encodePrefix({ inputIds: [this.prefixTokens], training: true });
    const hidden = this.llava.forward({ inputIds: ids, attentionMask: mask, prefix, training: true, logits: 'none' }).hidden;
    const f = tf.gather(tf.reshape(hidden, [rows.length * width, -1]), tf.tensor1d(at, 'int32')) as tf.Tensor2D;
    return { loss: tiedSoftmaxCrossEntropy(f, this.head, Int32Array.from(targets), -1), count: targets.length };
  }

  shardLoss(step: number, shard: number, shards: number, rng: Rng): ShardLoss | null {
    if (this.order.length === 0) throw new Error(`${MODEL}: step ${step} before beginEpoch`);
    const all = batchMembers(this.order, this.config.batchSize, step);
    const members = shardMembers(all, (e) => this.windows[e].end - Math.max(0, this.windows[e].end - 1 - this.config.historyLength), shard, shards);
    return members.length ? this.windowsLoss(Array.from(members, (e) => this.windows[e]), rng) : null;
  }

  stepLoss(step: number, rng: Rng): tf.Scalar {
    return this.shardLoss(step, 0, 1, rng)!.loss;
  }

  /** scoreBatch's computation, its reads left to the driver (tensor/read-steps.ts). */
  private *scoreSteps(histories: Int32Array[]): ReadSteps<Float32Array> {
    this.trie ??= new TitleTrie(this.titles.slice(1));
    const width = this.numItems + 1;
    const out = new Float32Array(histories.length * width);
    for (const [b, h] of histories.entries()) {
      const { scores } = yield* trieScoreSteps(this.llava, { inputIds: [this.promptTokens(h)] }, this.trie, { endTokenId: this.separator });
      out[b * width] = -Infinity;
      for (let i = 1; i < width; i++) out[b * width + i] = scores[i - 1];
    }
    return out;
  }

  /** Eval mode: every item scored by log P(title ; | prompt), one prompt at a time over the prefix tree of all titles. */
  scoreBatch(histories: Int32Array[]): Float32Array {
    return runReadsSync(this.scoreSteps(histories));
  }

  /** scoreBatch read asynchronously (every backend, webgpu included). */
  scoreBatchAsync(histories: Int32Array[]): Promise<Float32Array> {
    return runReadsAsync(this.scoreSteps(histories));
  }

  dispose(): void {
    this.llava.dispose();
    this.lora.dispose();
    this.params.clear();
  }
}

/** TALLRec's artifacts: the LoRA adapter as Hugging Face PEFT (a causal-LM adapter: the backbone's own head) and a manifest. */
function exportTallrec(checkpointPath: string, ctx: ModelContext): { kind: string; path: string }[] {
  const inputs = backboneOf(ctx);
  const dir = dirname(checkpointPath);
  const { weights: w, config } = readModelWeights<TallrecConfig>(checkpointPath, 'tallrec', ctx.data, (c) => tallrecParamShapes(c, ctx));
  const adapter = exportTextLora(join(dir, TALLREC_LORA_DIR), config, inputs, w.params);
  const manifest = writeLmManifest(join(dir, TALLREC_MANIFEST_FILE), 'tallrec', ctx, inputs, w, TALLREC_LORA_DIR, {
    prompt: { task: TALLREC_TASK, separator: TALLREC_SEPARATOR, maxTitleTokens: config.maxTitleTokens, answer: 'the next title, then the separator' }
  });
  return [...adapter, manifest];
}

export const tallrecSpec: ModelSpec<TallrecConfig> = {
  kind: 'tallrec',
  needsBackbone: true,
  paramShapes: tallrecParamShapes,
  init: (config, ctx, rng) => initTextLora(tallrecParamShapes(config, ctx), rng),
  build: (config, ctx, values) => new TallrecModel(config, ctx, values),
  optimizer: llmOptimizer,
  exportArtifacts: exportTallrec
};
