// Decoding on top of LlavaModel with the KV cache: greedy generation, generation constrained to a list of
// token sequences (a prefix trie masks every other token at each step), and likelihood scoring of candidate
// continuations that share one encoding of the prompt. One prompt (batch 1) at a time. Each step's logits
// are read back before the next: the decoders are written once as read steps (tensor/read-steps.ts), run
// with dataSync (generateGreedy, generateConstrained) or by a model's own asynchronous reads (webgpu).
import * as tf from '@tensorflow/tfjs-core';
import { runReadsSync, type ReadSteps } from '../tensor/read-steps';
import type { KvCache } from './llama-decoder';
import type { LlavaForwardInput, LlavaModel } from './llava-model';

/** A single prompt: ids (with expanded image tokens (<image>) and their images) or ready embeddings, batch 1. */
export type LlavaPrompt = Pick<LlavaForwardInput, 'inputIds' | 'inputsEmbeds' | 'pixelValues' | 'imageEmbeds'>;

/** The next-token logits of a forward's last position, read back; the forward's outputs are freed. */
function* lastLogits(out: { hidden: tf.Tensor; logits?: tf.Tensor }): ReadSteps<Float32Array> {
  try {
    const [values] = yield [out.logits!];
    return values as Float32Array;
  } finally {
    tf.dispose([out.hidden, out.logits!]);
  }
}

/** Runs the prompt into `cache` and returns the next-token logits. */
function* encodePrompt(model: LlavaModel, prompt: LlavaPrompt, cache: KvCache): ReadSteps<Float32Array> {
  const rows = prompt.inputsEmbeds ? prompt.inputsEmbeds.shape[0] : Array.isArray(prompt.inputIds) ? prompt.inputIds.length : prompt.inputIds?.shape[0];
  if (rows !== 1) throw new Error(`generation takes one prompt (batch 1), got batch ${rows}`);
  return yield* lastLogits(model.forward({ ...prompt, cache, logits: 'last' }));
}

/** Feeds one token after the cached positions and returns the next-token logits. */
function* step(model: LlavaModel, token: number, cache: KvCache): ReadSteps<Float32Array> {
  return yield* lastLogits(model.forward({ inputIds: [[token]], cache, logits: 'last' }));
}

/** log softmax of one row, in float64. */
function logSoftmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(logits, (v) => v - lse);
}

function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

export interface GreedyOptions {
  maxNewTokens: number;
  /** Stops after generating this token (included in the output). Default: the config's eos; null: never. */
  eosTokenId?: number | null;
}

export interface GreedyResult {
  tokens: number[];
  stoppedAtEos: boolean;
}

/** generateGreedy's computation, its reads left to the driver. */
export function* greedySteps(model: LlavaModel, prompt: LlavaPrompt, opts: GreedyOptions): ReadSteps<GreedyResult> {
  const eos = opts.eosTokenId === undefined ? model.config.text.eosTokenId : opts.eosTokenId;
  const cache = model.newCache();
  try {
    const tokens: number[] = [];
    if (opts.maxNewTokens <= 0) return { tokens, stoppedAtEos: false };
    let logits = yield* encodePrompt(model, prompt, cache);
    for (;;) {
      const next = argmax(logits);
      tokens.push(next);
      if (next === eos) return { tokens, stoppedAtEos: true };
      if (tokens.length >= opts.maxNewTokens) return { tokens, stoppedAtEos: false };
      logits = yield* step(model, next, cache);
    }
  } finally {
    cache.dispose();
  }
}

/** Greedy decoding: the argmax token at each step until eos or maxNewTokens. */
export function generateGreedy(model: LlavaModel, prompt: LlavaPrompt, opts: GreedyOptions): GreedyResult {
  return runReadsSync(greedySteps(model, prompt, opts));
}

interface TrieNode {
  children: Map<number, TrieNode>;
  /** Index of the candidate ending here (the first, for duplicates), or −1. */
  end: number;
}

function buildTrie(candidates: number[][]): TrieNode {
  const root: TrieNode = { children: new Map(), end: -1 };
  candidates.forEach((seq, i) => {
    if (seq.length === 0) throw new Error(`candidate ${i} is empty`);
    let node = root;
    for (const t of seq) {
      let child = node.children.get(t);
      if (!child) node.children.set(t, (child = { children: new Map(), end: -1 }));
      node = child;
    }
    if (node.end < 0) node.end = i;
  });
  return root;
}

export interface ConstrainedResult {
  /** Index into the candidates of the sequence generated. */
  index: number;
  tokens: number[];
  /** Sum of the chosen tokens' log-probabilities under the full (unmasked) next-token distribution. */
  logProb: number;
}

/** generateConstrained's computation, its reads left to the driver. */
export function* constrainedSteps(model: LlavaModel, prompt: LlavaPrompt, candidates: number[][], eosTokenId = model.config.text.eosTokenId): ReadSteps<ConstrainedResult> {
  if (candidates.length === 0) throw new Error('constrained generation needs at least one candidate');
  let node = buildTrie(candidates);
  const cache = model.newCache();
  try {
    let logProbs = logSoftmax(yield* encodePrompt(model, prompt, cache));
    const tokens: number[] = [];
    let total = 0;
    for (;;) {
      const canStop = node.end >= 0;
      if (canStop && node.children.has(eosTokenId)) {
        throw new Error(`candidate ${node.end} is a prefix of another that continues with the eos token ${eosTokenId}: stopping there is ambiguous`);
      }
      let best = -1;
      for (const t of node.children.keys()) if (best < 0 || logProbs[t] > logProbs[best]) best = t;
      if (canStop && logProbs[eosTokenId] > logProbs[best]) return { index: node.end, tokens, logProb: total + logProbs[eosTokenId] };
      tokens.push(best);
      total += logProbs[best];
      node = node.children.get(best)!;
      if (node.children.size === 0) return { index: node.end, tokens, logProb: total };
      logProbs = logSoftmax(yield* step(model, best, cache));
    }
  } finally {
    cache.dispose();
  }
}

/**
 * Greedy decoding restricted to `candidates`: at each step only tokens continuing some candidate may be
 * chosen (all others are −∞). When a candidate is a proper prefix of another, stopping there is the eos
 * token's choice (its log-probability then counts too).
 */
export function generateConstrained(model: LlavaModel, prompt: LlavaPrompt, candidates: number[][], eosTokenId = model.config.text.eosTokenId): ConstrainedResult {
  return runReadsSync(constrainedSteps(model, prompt, candidates, eosTokenId));
}

export interface ScoreOptions {
  /** Candidates per batched forward (default 16). */
  batchSize?: number;
}

/**
 * log P(candidate | prompt) for every candidate (sum of its tokens' log-probabilities). The prompt runs
 * once; its KV cache is repeated across each batch of candidates, which run right-padded.
 */
export function scoreSequences(model: LlavaModel, prompt: LlavaPrompt, candidates: number[][], opts: ScoreOptions = {}): number[] {
  const batchSize = Math.max(1, opts.batchSize ?? 16);
  candidates.forEach((c, i) => {
    if (c.length === 0) throw new Error(`candidate ${i} is empty`);
  });
  const vocab = model.config.text.vocabSize;
  const pad = Math.min(Math.max(0, model.config.text.padTokenId), vocab - 1);
  const cache = model.newCache();
  try {
    // Synchronous only: no model scores this way on webgpu (they walk a prefix tree, title-trie.ts).
    const first = logSoftmax(runReadsSync(encodePrompt(model, prompt, cache)));
    const scores = candidates.map((c) => first[c[0]]);
    const longer = candidates.map((_, i) => i).filter((i) => candidates[i].length > 1);
    const past = cache.length;
    for (let start = 0; start < longer.length; start += batchSize) {
      const batch = longer.slice(start, start + batchSize);
      // Feed tokens 1…n−1 of each candidate; position j then predicts token j + 1.
      const steps = Math.max(...batch.map((i) => candidates[i].length)) - 1;
      const ids = batch.map((i) => Array.from({ length: steps }, (_, j) => (j < candidates[i].length - 1 ? candidates[i][j] : pad)));
      const mask = batch.map((i) => Array.from({ length: past + steps }, (_, j) => (j < past + candidates[i].length - 1 ? 1 : 0)));
      const flatTargets = new Int32Array(batch.length * steps);
      batch.forEach((i, r) => {
        for (let j = 0; j + 1 < candidates[i].length; j++) flatTargets[r * steps + j] = r * steps * vocab + j * vocab + candidates[i][j + 1];
        for (let j = candidates[i].length - 1; j < steps; j++) flatTargets[r * steps + j] = r * steps * vocab + j * vocab;
      });
      const branch = cache.expandBatch(batch.length);
      let picked: Float32Array;
      try {
        const { hidden, logits } = model.forward({ inputIds: ids, attentionMask: mask, cache: branch, logits: 'all' });
        const tokenLogProbs = tf.tidy(() => {
          const lse = tf.reshape(tf.logSumExp(logits!, -1), [-1]);
          const chosen = tf.gather(tf.reshape(logits!, [-1]), tf.tensor1d(flatTargets, 'int32'));
          return tf.sub(chosen, lse);
        });
        picked = tokenLogProbs.dataSync() as Float32Array;
        tf.dispose([hidden, logits!, tokenLogProbs]);
      } finally {
        branch.dispose();
      }
      batch.forEach((i, r) => {
        for (let j = 0; j + 1 < candidates[i].length; j++) scores[i] += picked[r * steps + j];
      });
    }
    return scores;
  } finally {
    cache.dispose();
  }
}
