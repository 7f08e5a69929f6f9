// Full ranking of every item by log P(title tokens | prompt) (TALLRec / LLaRA evaluation) over a prefix tree
// of the titles. scoreSequences feeds each candidate's tokens separately (cost ∝ items × tokens); here the
// prompt runs once into a KV cache, then the trie is walked breadth-first: the nodes of one depth that
// have children run as one batch of single-token steps, each row continuing the K/V of its parent's row,
// so each distinct prefix is fed once. A leaf is never fed: its token's log-probability comes from its
// parent's next-token distribution. The prompt's K/V are attended to as a shared batch-1 prefix, never
// copied per row (on the wasm backend such copies cost more than the rows' own compute). Each level's
// distributions are read back before the next level runs: one implementation (trieScoreSteps) read with
// dataSync (scoreTrie) or, inside a model's asynchronous scoring, await data() (webgpu; tensor/read-steps.ts).
import * as tf from '@tensorflow/tfjs-core';
import { runReadsSync, type ReadSteps } from '../tensor/read-steps';
import { KvCache, type PrefixKv } from './llama-decoder';
import type { LlavaModel } from './llava-model';
import type { LlavaPrompt } from './generate';

/**
 * The prefix tree of a candidate list, in flat arrays reusable across prompts. Node 0 is the root (the empty
 * prefix); nodes are numbered breadth-first, so depth d's nodes are levelStart[d] … levelStart[d + 1] − 1 and
 * each node's children are consecutive (firstChild … firstChild + childCount − 1).
 */
export class TitleTrie {
  readonly candidateCount: number;
  readonly parent: Int32Array;
  /** The token that ends each node's prefix (−1 at the root). */
  readonly token: Int32Array;
  readonly depth: Int32Array;
  readonly firstChild: Int32Array;
  readonly childCount: Int32Array;
  readonly levelStart: Int32Array;
  /** The node each candidate ends at (equal candidates share it). */
  readonly endNode: Int32Array;
  /** Whether some candidate ends at the node. */
  readonly endsHere: Uint8Array;
  /** The largest token id in any candidate (−1 without candidates). */
  readonly maxToken: number;
  /** Per depth ≥ 1, its nodes that have children: what scoring feeds. */
  private readonly internalByDepth: Int32Array[];
  private fedWithEndByDepth: Int32Array[] | null = null;

  constructor(candidates: readonly (readonly number[])[]) {
    interface Building {
      children: Map<number, Building>;
      id: number;
    }
    const root: Building = { children: new Map(), id: 0 };
    const ends: Building[] = [];
    let maxToken = -1;
    candidates.forEach((seq, i) => {
      if (seq.length === 0) throw new Error(`TitleTrie: candidate ${i} is empty`);
      let node = root;
      for (const t of seq) {
        if (!Number.isInteger(t) || t < 0) throw new Error(`TitleTrie: candidate ${i} holds ${t}, not a token id`);
        maxToken = Math.max(maxToken, t);
        let child = node.children.get(t);
        if (!child) node.children.set(t, (child = { children: new Map(), id: -1 }));
        node = child;
      }
      ends.push(node);
    });
    // Breadth-first numbering: a node's children are appended together, levels stay contiguous.
    const order: Building[] = [root];
    const parent: number[] = [-1];
    const token: number[] = [-1];
    const depth: number[] = [0];
    const firstChild: number[] = [];
    const levelStart: number[] = [0];
    for (let at = 0; at < order.length; at++) {
      const node = order[at];
      if (at > 0 && depth[at] !== depth[at - 1]) levelStart.push(at);
      firstChild.push(order.length);
      for (const [t, child] of node.children) {
        child.id = order.length;
        order.push(child);
        parent.push(at);
        token.push(t);
        depth.push(depth[at] + 1);
      }
    }
    levelStart.push(order.length);
    this.candidateCount = candidates.length;
    this.parent = Int32Array.from(parent);
    this.token = Int32Array.from(token);
    this.depth = Int32Array.from(depth);
    this.firstChild = Int32Array.from(firstChild);
    this.childCount = Int32Array.from(order, (n) => n.children.size);
    this.levelStart = Int32Array.from(levelStart);
    this.endNode = Int32Array.from(ends, (n) => n.id);
    this.endsHere = new Uint8Array(order.length);
    for (const n of this.endNode) this.endsHere[n] = 1;
    this.maxToken = maxToken;
    this.internalByDepth = this.nodesByDepth((n) => this.childCount[n] > 0);
  }

  /** Nodes including the root. */
  get nodeCount(): number {
    return this.parent.length;
  }

  /** Distinct non-empty prefixes of the candidates (nodes without the root). */
  get prefixCount(): number {
    return this.parent.length - 1;
  }

  /** Distinct non-empty prefixes some candidate continues: the rows scoring feeds (without an end token). */
  get internalPrefixCount(): number {
    return this.internalByDepth.reduce((s, level) => s + level.length, 0);
  }

  /** The longest candidate's length. */
  get maxDepth(): number {
    return this.levelStart.length - 2;
  }

  /**
   * The nodes of depth d ≥ 1 whose next-token distribution scoring needs: those with children, and with an
   * end token also those where a candidate ends.
   */
  fedAt(d: number, withEnd = false): Int32Array {
    if (d < 1 || d > this.maxDepth) return new Int32Array(0);
    if (!withEnd) return this.internalByDepth[d - 1];
    this.fedWithEndByDepth ??= this.nodesByDepth((n) => this.childCount[n] > 0 || this.endsHere[n] === 1);
    return this.fedWithEndByDepth[d - 1];
  }

  private nodesByDepth(keep: (node: number) => boolean): Int32Array[] {
    const out: Int32Array[] = [];
    for (let d = 1; d <= this.maxDepth; d++) {
      const level: number[] = [];
      for (let n = this.levelStart[d]; n < this.levelStart[d + 1]; n++) if (keep(n)) level.push(n);
      out.push(Int32Array.from(level));
    }
    return out;
  }
}

export interface TrieScoreOptions {
  /** Rows per batched forward (default 64). */
  batchSize?: number;
  /** Also add log P(this token) after each candidate's last token (e.g. a title separator). Default none. */
  endTokenId?: number | null;
}

export interface TrieScoreStats {
  /** Single-token rows fed after the prompt: one per distinct prefix that needs a distribution. */
  rowsFed: number;
  /** Batched forwards after the prompt's. */
  forwards: number;
  /** Positions the prompt encoded to. */
  promptLength: number;
}

type LayerKv = { k: tf.Tensor; v: tf.Tensor }[];

/**
 * A cache of one row per parent: each row's own K/V past the prompt ([B, kvHeads, d − 1, headDim] per layer),
 * gathered from the previous level's rows. The prompt's K/V stay shared (the decoder's prefix), never copied
 * per row, so a level costs memory and copying ∝ rows × depth, not rows × prompt length.
 */
function parentRows(previous: LayerKv, parents: Int32Array, length: number): KvCache {
  const layers = tf.tidy(() => {
    const index = tf.tensor1d(parents, 'int32');
    return previous.map(({ k, v }) => ({ k: tf.gather(k, index), v: tf.gather(v, index) }));
  });
  return KvCache.fromLayers(layers, length);
}

/**
 * For rows [B, V] of logits (row r is node nodes[r]'s next-token distribution), adds each child's token
 * log-probability to logP[child] (= logP[node] + log p) and the end token's to endLogP[node]. The log-softmax
 * normaliser (logSumExp over the full vocabulary) is computed once per row; only the needed entries download.
 */
function* readDistributions(trie: TitleTrie, logits: tf.Tensor, nodes: ArrayLike<number>, logP: Float64Array, endTokenId: number | null, endLogP: Float64Array | null): ReadSteps<void> {
  const vocab = logits.shape[1] as number;
  const flat: number[] = [];
  for (let r = 0; r < nodes.length; r++) {
    const n = nodes[r];
    for (let c = trie.firstChild[n]; c < trie.firstChild[n] + trie.childCount[n]; c++) flat.push(r * vocab + trie.token[c]);
    if (endTokenId !== null && trie.endsHere[n]) flat.push(r * vocab + endTokenId);
  }
  const [lseT, chosenT] = tf.tidy(() => [tf.logSumExp(logits, 1), tf.gather(tf.reshape(logits, [-1]), tf.tensor1d(flat, 'int32'))]);
  let lse: tf.TypedArray, chosen: tf.TypedArray;
  try {
    [lse, chosen] = yield [lseT, chosenT];
  } finally {
    tf.dispose([lseT, chosenT]);
  }
  let at = 0;
  for (let r = 0; r < nodes.length; r++) {
    const n = nodes[r];
    for (let c = trie.firstChild[n]; c < trie.firstChild[n] + trie.childCount[n]; c++) logP[c] = logP[n] + (chosen[at++] - lse[r]);
    if (endTokenId !== null && trie.endsHere[n]) endLogP![n] = chosen[at++] - lse[r];
  }
}

export interface TrieScores {
  scores: Float64Array;
  stats: TrieScoreStats;
}

/** scoreTrie's computation, its reads left to the driver (tensor/read-steps.ts). */
export function* trieScoreSteps(model: LlavaModel, prompt: LlavaPrompt, trie: TitleTrie, opts: TrieScoreOptions = {}): ReadSteps<TrieScores> {
  const batchSize = Math.max(1, Math.floor(opts.batchSize ?? 64));
  const endTokenId = opts.endTokenId ?? null;
  const vocab = model.config.text.vocabSize;
  if (trie.maxToken >= vocab) throw new Error(`a candidate holds token ${trie.maxToken}, outside the vocabulary [0, ${vocab})`);
  if (endTokenId !== null && !(Number.isInteger(endTokenId) && endTokenId >= 0 && endTokenId < vocab)) throw new Error(`end token ${endTokenId} is outside the vocabulary [0, ${vocab})`);
  const rows = prompt.inputsEmbeds ? prompt.inputsEmbeds.shape[0] : Array.isArray(prompt.inputIds) ? prompt.inputIds.length : prompt.inputIds?.shape[0];
  if (rows !== 1) throw new Error(`scoring takes one prompt (batch 1), got batch ${rows}`);
  const scores = new Float64Array(trie.candidateCount);
  const stats: TrieScoreStats = { rowsFed: 0, forwards: 0, promptLength: 0 };
  if (trie.candidateCount === 0) return { scores, stats };
  // logP[n] = log P(prefix n | prompt); endLogP[n] = log P(end token | prompt, prefix n).
  const logP = new Float64Array(trie.nodeCount);
  const endLogP = endTokenId !== null ? new Float64Array(trie.nodeCount) : null;
  // A fed node's row in its level's batch (where its children find their K/V).
  const rowOf = new Int32Array(trie.nodeCount);
  const promptCache = model.newCache();
  // The K/V past the prompt of the previous level's fed rows, in row order.
  let previous: LayerKv | null = null;
  try {
    const first = model.forward({ ...prompt, cache: promptCache, logits: 'last' });
    try {
      yield* readDistributions(trie, first.logits!, [0], logP, endTokenId, endLogP);
    } finally {
      tf.dispose([first.hidden, first.logits!]);
    }
    // Every row continues the prompt: the decoder attends to it as a shared batch-1 prefix.
    const shared: PrefixKv = { kv: Array.from({ length: promptCache.numLayers }, (_, i) => promptCache.layer(i)!), length: promptCache.length };
    stats.promptLength = promptCache.length;
    const withEnd = endTokenId !== null;
    for (let d = 1; d <= trie.maxDepth; d++) {
      const fed = trie.fedAt(d, withEnd);
      if (fed.length === 0) break;
      // The next level continues these rows: keep their caches (not needed after the last level).
      const keep = trie.fedAt(d + 1, withEnd).length > 0;
      const chunks: KvCache[] = [];
      try {
        for (let start = 0; start < fed.length; start += batchSize) {
          const nodes = fed.subarray(start, start + batchSize);
          const cache = previous ? parentRows(previous, Int32Array.from(nodes, (n) => rowOf[trie.parent[n]]), d - 1) : model.newCache();
          if (keep) chunks.push(cache);
          try {
            // Positions default to prompt + (d − 1), the token's place in a plain forward; no padding anywhere.
            const out = model.forward({ inputIds: Array.from(nodes, (n) => [trie.token[n]]), cache, prefix: shared, logits: 'last' });
            try {
              yield* readDistributions(trie, out.logits!, nodes, logP, endTokenId, endLogP);
            } finally {
              tf.dispose([out.hidden, out.logits!]);
            }
          } finally {
            if (!keep) cache.dispose();
          }
          nodes.forEach((n, r) => (rowOf[n] = start + r));
          stats.rowsFed += nodes.length;
          stats.forwards++;
        }
        const next = keep ? tf.tidy(() => shared.kv.map((_, i) => ({ k: tf.concat(chunks.map((c) => c.layer(i)!.k), 0), v: tf.concat(chunks.map((c) => c.layer(i)!.v), 0) }))) : null;
        if (previous) tf.dispose(previous);
        previous = next;
      } finally {
        for (const c of chunks) c.dispose();
      }
    }
    trie.endNode.forEach((n, i) => (scores[i] = logP[n] + (endLogP ? endLogP[n] : 0)));
    return { scores, stats };
  } finally {
    promptCache.dispose();
    if (previous) tf.dispose(previous);
  }
}

/** scoreTrie, with what it fed (the cost: rows ∝ distinct prefixes, not items × tokens). */
export function scoreTrieWithStats(model: LlavaModel, prompt: LlavaPrompt, trie: TitleTrie, opts: TrieScoreOptions = {}): TrieScores {
  return runReadsSync(trieScoreSteps(model, prompt, trie, opts));
}

/**
 * log P(candidate | prompt) for every candidate of the trie: the sum of its tokens' log-softmax
 * log-probabilities (as scoreSequences), plus log P(end token) after it when `endTokenId` is given.
 */
export function scoreTrie(model: LlavaModel, prompt: LlavaPrompt, trie: TitleTrie, opts: TrieScoreOptions = {}): Float64Array {
  return scoreTrieWithStats(model, prompt, trie, opts).scores;
}
