// Full ranking over a title prefix tree on a small random LLaVA: scoreTrie against per-candidate full forwards
// and scoreSequences (shared prefixes, a candidate that prefixes another, duplicates, single tokens, an end
// token, LoRA), its cost (one fed row per internal node), KvCache.fromLayers, the decoder's shared prefix
// with a per-row cache, errors, and tensor hygiene.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { initBackend, tf } from '../../src/core/tensor/backend';
import { Rng } from '../../src/core/tensor/rng';
import type { LlavaConfig } from '../../src/core/backbone/config';
import { expectedTensors } from '../../src/core/backbone/weight-names';
import { LlavaModel } from '../../src/core/backbone/llava-model';
import { LoraAdapter } from '../../src/core/backbone/lora';
import { KvCache } from '../../src/core/backbone/llama-decoder';
import { scoreSequences, type LlavaPrompt } from '../../src/core/backbone/generate';
import { scoreTrie, scoreTrieWithStats, TitleTrie } from '../../src/core/backbone/title-trie';

const IMAGE = 39;
const END = 2;

const cfg: LlavaConfig = {
  vision: { kind: 'clip', hiddenSize: 16, intermediateSize: 32, numLayers: 2, numHeads: 2, imageSize: 8, patchSize: 4, numChannels: 3, layerNormEps: 1e-5, hiddenAct: 'quick_gelu' },
  text: {
    vocabSize: 40,
    hiddenSize: 32,
    intermediateSize: 48,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 8,
    rmsNormEps: 1e-6,
    ropeTheta: 10000,
    maxPositionEmbeddings: 128,
    tieWordEmbeddings: false,
    bosTokenId: 1,
    eosTokenId: END,
    padTokenId: 0
  },
  projectorHiddenAct: 'gelu',
  projectorBias: true,
  imageTokenIndex: IMAGE,
  visionFeatureLayer: -1,
  visionFeatureSelectStrategy: 'full'
};

/** Shared prefixes, a candidate that prefixes others, duplicates, single tokens, uneven lengths. */
const CANDIDATES = [[5], [5, 6], [5, 6, 7], [7, 8, 9], [7, 8, 20], [7, 8, 9], [10, 11, 12, 13], [10, 11, 3], [30], [30], [14, 15, 16, 17, 18], [5, 6, 21], [22, 2]];

function randomTensor(shape: number[], rng: Rng, scale = 1): tf.Tensor {
  return tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal() * scale), shape);
}

function randomWeights(seed: number): Map<string, tf.Tensor> {
  const rng = new Rng(seed);
  const weights = new Map<string, tf.Tensor>();
  for (const [name, shape] of expectedTensors(cfg)) {
    const isNorm = /norm/.test(name) && name.endsWith('.weight');
    const scale = name === 'lm_head.weight' || name === 'text.embed_tokens.weight' ? 1 : isNorm ? 0.1 : 0.3;
    const t = randomTensor(shape, rng, scale);
    weights.set(name, isNorm ? tf.tidy(() => tf.add(t, 1)) : t);
    if (isNorm) t.dispose();
  }
  return weights;
}

/** log P(candidate [+ end] | prompt) from one uncached forward over prompt + candidate (+ end). */
function fullForwardScore(m: LlavaModel, promptIds: number[], pixels: tf.Tensor4D, candidate: number[], end: number | null = null): number {
  const seq = end === null ? candidate : [...candidate, end];
  const { hidden, logits } = m.forward({ inputIds: [[...promptIds, ...seq]], pixelValues: pixels });
  const rows = (logits!.arraySync() as number[][][])[0];
  tf.dispose([hidden, logits!]);
  let total = 0;
  seq.forEach((tok, j) => {
    const row = rows[promptIds.length - 1 + j];
    const max = Math.max(...row);
    total += row[tok] - (max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0)));
  });
  return total;
}

/** Distinct non-empty prefixes, counted directly from the candidates. */
function distinctPrefixes(candidates: number[][], proper: boolean): number {
  const set = new Set<string>();
  for (const c of candidates) for (let k = 1; k <= c.length - (proper ? 1 : 0); k++) set.add(c.slice(0, k).join());
  return set.size;
}

let weights: Map<string, tf.Tensor>;
let model: LlavaModel;
let pixels: tf.Tensor4D;
let promptIds: number[];
let prompt: LlavaPrompt;

beforeAll(async () => {
  await initBackend('wasm');
  weights = randomWeights(3);
  model = new LlavaModel(cfg, weights);
  pixels = randomTensor([1, 3, 8, 8], new Rng(5)) as tf.Tensor4D;
  promptIds = model.expandImageTokens([[1, 7, IMAGE, 12, 30, 4]])[0];
  prompt = { inputIds: [promptIds], pixelValues: pixels };
});

afterAll(() => {
  model.dispose();
  tf.dispose([...weights.values(), pixels]);
});

describe('TitleTrie', () => {
  test('one node per distinct prefix, breadth-first, each candidate readable back from its end node', () => {
    const trie = new TitleTrie(CANDIDATES);
    expect(trie.candidateCount).toBe(CANDIDATES.length);
    expect(trie.prefixCount).toBe(distinctPrefixes(CANDIDATES, false));
    expect(trie.nodeCount).toBe(trie.prefixCount + 1);
    expect(trie.internalPrefixCount).toBe(distinctPrefixes(CANDIDATES, true));
    expect(trie.maxDepth).toBe(5);
    expect(trie.maxToken).toBe(30);
    for (let n = 1; n < trie.nodeCount; n++) {
      expect(trie.depth[n]).toBe(trie.depth[trie.parent[n]] + 1);
      expect(n).toBeGreaterThanOrEqual(trie.levelStart[trie.depth[n]]);
      expect(n).toBeLessThan(trie.levelStart[trie.depth[n] + 1]);
      const p = trie.parent[n];
      expect(n >= trie.firstChild[p] && n < trie.firstChild[p] + trie.childCount[p]).toBe(true);
    }
    CANDIDATES.forEach((c, i) => {
      const back: number[] = [];
      for (let n = trie.endNode[i]; n !== 0; n = trie.parent[n]) back.unshift(trie.token[n]);
      expect(back).toEqual(c);
      expect(trie.endsHere[trie.endNode[i]]).toBe(1);
    });
    // Duplicates share their node; a candidate that prefixes another ends at an internal node.
    expect(trie.endNode[3]).toBe(trie.endNode[5]);
    expect(trie.endNode[8]).toBe(trie.endNode[9]);
    expect(trie.childCount[trie.endNode[1]]).toBe(2);
    // Fed rows: nodes with children; with an end token also every node where a candidate ends.
    const fed = (withEnd: boolean): number => Array.from({ length: trie.maxDepth }, (_, d) => trie.fedAt(d + 1, withEnd).length).reduce((a, b) => a + b, 0);
    expect(fed(false)).toBe(trie.internalPrefixCount);
    expect(fed(true)).toBe(trie.prefixCount);
    expect(trie.fedAt(0).length + trie.fedAt(trie.maxDepth + 1).length).toBe(0);
  });

  test('an empty candidate or a non-token is refused, naming the candidate', () => {
    expect(() => new TitleTrie([[3, 4], [5], []])).toThrow(/candidate 2 is empty/);
    expect(() => new TitleTrie([[3, 4], [5, -1]])).toThrow(/candidate 1 holds -1/);
    expect(() => new TitleTrie([[3, 4.5]])).toThrow(/candidate 0 holds 4\.5/);
  });
});

describe('KvCache.fromLayers', () => {
  test('a cache rebuilt from copies of another cache continues it identically; it owns and frees its tensors', () => {
    const before = tf.memory().numTensors;
    const original = model.newCache();
    tf.dispose(model.forward({ inputIds: [[4, 9, 13]], cache: original, logits: 'none' }).hidden);
    const copies = Array.from({ length: original.numLayers }, (_, i) => ({ k: tf.clone(original.layer(i)!.k), v: tf.clone(original.layer(i)!.v) }));
    const rebuilt = KvCache.fromLayers(copies, original.length);
    expect(rebuilt.length).toBe(3);
    expect(rebuilt.batch).toBe(1);
    const a = model.forward({ inputIds: [[17]], cache: original, logits: 'last' });
    const b = model.forward({ inputIds: [[17]], cache: rebuilt, logits: 'last' });
    expect(b.logits!.dataSync()).toEqual(a.logits!.dataSync());
    expect(rebuilt.length).toBe(4);
    tf.dispose([a.hidden, a.logits!, b.hidden, b.logits!]);
    original.dispose();
    rebuilt.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  test('layers that disagree with each other or with the length are refused', () => {
    const k = tf.zeros([2, 2, 3, 8]);
    const short = tf.zeros([2, 2, 2, 8]);
    const otherBatch = tf.zeros([1, 2, 3, 8]);
    expect(() => KvCache.fromLayers([{ k, v: k }], 4)).toThrow(/expected batch 2 and 4 positions/);
    expect(() => KvCache.fromLayers([{ k, v: short }], 3)).toThrow(/layer 0 has K \[2,2,3,8\] and V \[2,2,2,8\]/);
    expect(() => KvCache.fromLayers([{ k, v: k }, { k: otherBatch, v: otherBatch }], 3)).toThrow(/layer 1 is \[1,2,3,8\], expected batch 2/);
    tf.dispose([k, short, otherBatch]);
  });
});

describe('shared prefix + per-row cache in the decoder', () => {
  test('rows continuing a batch-1 prompt prefix, each with its own cache, match full forwards step by step', () => {
    const before = tf.memory().numTensors;
    const promptCache = model.newCache();
    tf.dispose(model.forward({ inputIds: [promptIds], pixelValues: pixels, cache: promptCache, logits: 'none' }).hidden);
    const shared = { kv: Array.from({ length: promptCache.numLayers }, (_, i) => promptCache.layer(i)!), length: promptCache.length };
    const rows = [
      [9, 21, 3],
      [17, 4, 33],
      [9, 30, 8]
    ];
    const own = model.newCache();
    // Two steps: one token per row (empty own cache), then two tokens (the cache holds only the rows' own K/V).
    for (const [from, to] of [
      [0, 1],
      [1, 3]
    ]) {
      const { hidden, logits } = model.forward({ inputIds: rows.map((r) => r.slice(from, to)), cache: own, prefix: shared });
      const got = logits!.arraySync() as number[][][];
      tf.dispose([hidden, logits!]);
      rows.forEach((r, b) => {
        const full = model.forward({ inputIds: [[...promptIds, ...r.slice(0, to)]], pixelValues: pixels });
        const ref = (full.logits!.arraySync() as number[][][])[0];
        tf.dispose([full.hidden, full.logits!]);
        for (let j = from; j < to; j++) {
          const want = ref[promptIds.length + j];
          expect(Math.max(...got[b][j - from].map((v, x) => Math.abs(v - want[x])))).toBeLessThanOrEqual(1e-4);
        }
      });
      expect(own.length).toBe(to);
      expect(own.layer(0)!.k.shape).toEqual([3, cfg.text.numKvHeads, to, cfg.text.headDim]);
    }
    own.dispose();
    promptCache.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('scoreTrie', () => {
  test('equals per-candidate full forwards and scoreSequences, whatever the batch size', () => {
    const trie = new TitleTrie(CANDIDATES);
    const reference = CANDIDATES.map((c) => fullForwardScore(model, promptIds, pixels, c));
    const sequences = scoreSequences(model, prompt, CANDIDATES);
    for (const batchSize of [1, 2, 64]) {
      const scores = scoreTrie(model, prompt, trie, { batchSize });
      expect(scores).toHaveLength(CANDIDATES.length);
      CANDIDATES.forEach((_, i) => {
        expect(Math.abs(scores[i] - reference[i])).toBeLessThanOrEqual(1e-4);
        expect(Math.abs(scores[i] - sequences[i])).toBeLessThanOrEqual(1e-4);
      });
      // Equal candidates get equal scores.
      expect(scores[3]).toBe(scores[5]);
      expect(scores[8]).toBe(scores[9]);
    }
  });

  test('with an end token, adds log P(end) after each candidate, leaves included', () => {
    const trie = new TitleTrie(CANDIDATES);
    const scores = scoreTrie(model, prompt, trie, { endTokenId: END, batchSize: 3 });
    const without = scoreTrie(model, prompt, trie);
    CANDIDATES.forEach((c, i) => {
      expect(Math.abs(scores[i] - fullForwardScore(model, promptIds, pixels, c, END))).toBeLessThanOrEqual(1e-4);
      expect(scores[i]).toBeLessThan(without[i]);
    });
  });

  test('feeds one row per internal node (distinct proper prefix), level by level; leaves are never fed', () => {
    const trie = new TitleTrie(CANDIDATES);
    const { stats } = scoreTrieWithStats(model, prompt, trie, { batchSize: 2 });
    expect(stats.rowsFed).toBe(distinctPrefixes(CANDIDATES, true));
    expect(stats.rowsFed).toBe(trie.internalPrefixCount);
    expect(stats.promptLength).toBe(promptIds.length);
    // Per depth ⌈internal nodes / batch⌉ forwards.
    const forwards = Array.from({ length: trie.maxDepth }, (_, d) => Math.ceil(trie.fedAt(d + 1).length / 2)).reduce((a, b) => a + b, 0);
    expect(stats.forwards).toBe(forwards);
    // Far fewer rows than scoreSequences' tokens past the first (what it feeds).
    expect(stats.rowsFed).toBeLessThan(CANDIDATES.reduce((s, c) => s + c.length - 1, 0));
    // With an end token every distinct prefix needs its distribution.
    expect(scoreTrieWithStats(model, prompt, trie, { endTokenId: END }).stats.rowsFed).toBe(trie.prefixCount);
    // All single tokens: only the prompt runs.
    const singles = scoreTrieWithStats(model, prompt, new TitleTrie([[3], [8], [3]]));
    expect(singles.stats).toMatchObject({ rowsFed: 0, forwards: 0 });
    expect(Math.abs(singles.scores[1] - fullForwardScore(model, promptIds, pixels, [8]))).toBeLessThanOrEqual(1e-4);
  });

  test('an empty list scores nothing; out-of-vocabulary tokens and batched prompts are refused', () => {
    expect(scoreTrie(model, prompt, new TitleTrie([]))).toHaveLength(0);
    expect(() => scoreTrie(model, prompt, new TitleTrie([[3, 40]]))).toThrow(/token 40, outside the vocabulary \[0, 40\)/);
    expect(() => scoreTrie(model, prompt, new TitleTrie([[3]]), { endTokenId: 41 })).toThrow(/end token 41/);
    expect(() => scoreTrie(model, { inputIds: [[1, 2], [3, 4]] }, new TitleTrie([[3]]))).toThrow(/batch 2/);
  });

  test('frees every tensor it makes', () => {
    const trie = new TitleTrie(CANDIDATES);
    scoreTrie(model, prompt, trie, { batchSize: 2 }); // warm-up (lazy kernels, caches)
    const before = tf.memory().numTensors;
    scoreTrie(model, prompt, trie, { batchSize: 2 });
    scoreTrie(model, prompt, trie, { endTokenId: END });
    expect(tf.memory().numTensors).toBe(before);
  });

  test('with a LoRA adapter, still equals the full forward', () => {
    const lora = LoraAdapter.create(cfg, { r: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'down_proj'], towers: ['text'] }, 1);
    // B starts at zero (the adapter would be a no-op): make it matter.
    const rng = new Rng(7);
    for (const v of lora.trainableVariables()) {
      if (!v.name.endsWith('/B')) continue;
      const value = randomTensor(v.shape, rng, 0.3);
      v.assign(value);
      value.dispose();
    }
    const loraModel = new LlavaModel(cfg, weights, lora);
    try {
      const trie = new TitleTrie(CANDIDATES);
      const scores = scoreTrie(loraModel, prompt, trie, { batchSize: 4 });
      let moved = 0;
      CANDIDATES.forEach((c, i) => {
        expect(Math.abs(scores[i] - fullForwardScore(loraModel, promptIds, pixels, c))).toBeLessThanOrEqual(1e-4);
        moved = Math.max(moved, Math.abs(scores[i] - fullForwardScore(model, promptIds, pixels, c)));
      });
      expect(moved).toBeGreaterThan(1e-2);
    } finally {
      loraModel.dispose();
      lora.dispose();
    }
  });
});
