// VIP5 on the tiny random backbone of almostrec-fixture.ts (odd items have one visual token): its prompt
// (golden string with image marks), its parameters (LoRA only: the backbone stays bit-identical), its loss
// against a plain full forward whose input embeddings are built here by hand, the layout's causality (an
// item's image never reaches the prediction of its own ID), full ranking against per-item full forwards,
// constrained decoding, learning the synthetic walk, and its PEFT causal-LM adapter with the manifest.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { parseModelConfig } from '../../src/shared/api';
import { readPeftAdapter } from '../../src/core/backbone/peft-adapter';
import type { Piece } from '../../src/core/models/almostrec-prompt';
import { VIP5_MANIFEST_FILE, Vip5Model, vip5Spec, type Vip5Config } from '../../src/core/models/vip5';
import { VIP5_END, VIP5_ID_FORMAT, VIP5_TASK } from '../../src/core/models/vip5-prompt';
import { tf } from '../../src/core/tensor/backend';
import { Rng } from '../../src/core/tensor/rng';
import { readSafetensors } from '../../src/core/tensor/safetensors';
import { CHECKPOINT_FILE, trainModel } from '../../src/core/train/train-model';
import type { BackboneInputs, ModelContext } from '../../src/core/train/model-spec';
import { D_MODEL, syntheticData, tokenizer, tinyBackboneSuite } from './almostrec-fixture';

const config = (over: Partial<Vip5Config> = {}): Vip5Config =>
  parseModelConfig('vip5', { backboneId: 1, epochs: 1, batchSize: 8, learningRate: 1e-2, warmupSteps: 0, historyLength: 4, seed: 7, ...over }) as unknown as Vip5Config;

const data = syntheticData();
/** A user whose training part fills a window of historyLength + 1 = 5 items. */
const USER = data.users.findIndex((u) => u.items.length - 2 >= 5);
const suite = tinyBackboneSuite(data, 'vip5-unit-', (i) => ({ ...i, itemTable: null }));

/** The context with other visual tokens for `item` (a copy; the weights are shared). */
function withImage(item: number, tokens: Float32Array): ModelContext {
  const visual = suite.ctx.backbone!.visual!;
  return { data, backbone: { ...suite.ctx.backbone!, visual: { ...visual, tokens: visual.tokens.map((t, i) => (i === item ? tokens : t)) } } };
}

/** LoRA values whose B factors are non-zero (so LoRA takes part in every check), from seed `seed`. */
function loraValues(c: Vip5Config, seed = 3): Map<string, Float32Array> {
  const values = vip5Spec.init(c, suite.ctx, new Rng(seed));
  const rng = new Rng(seed + 1);
  for (const [name, v] of values) if (name.endsWith('.B')) for (let i = 0; i < v.length; i++) v[i] = rng.normal() * 0.05;
  return values;
}

function build(c: Vip5Config, on: ModelContext = suite.ctx, seed = 3): Vip5Model {
  return vip5Spec.build(c, on, loraValues(c, seed)) as Vip5Model;
}

/**
 * log P(token at pos | everything before it) for each of `picks`, from the backbone's own logits (with the
 * model's LoRA, eval mode) over one whole sequence of pieces whose input embeddings are built here: a text
 * token's row of the embedding table, an image piece's row of the item's cached visual tokens.
 */
function fullLogProbs(model: Vip5Model, pieces: readonly Piece[], visual: BackboneInputs['visual'], picks: readonly { pos: number; token: number }[]): number[] {
  const llava = (model as unknown as { llava: { forward(i: object): { hidden: tf.Tensor; logits?: tf.Tensor } } }).llava;
  const table = suite.inputs.backbone.weights.get('text.embed_tokens.weight')!.dataSync();
  const rows = pieces.map((p) => {
    if (p.kind === 'text') return Array.from(table.subarray(p.token * D_MODEL, (p.token + 1) * D_MODEL));
    if (p.kind === 'image') return Array.from(visual!.tokens[p.item]!.subarray(p.index * D_MODEL, (p.index + 1) * D_MODEL));
    throw new Error('VIP5 prompts hold no ID-embedding tokens');
  });
  const vocab = suite.inputs.backbone.config.text.vocabSize;
  return tf.tidy(() => {
    const { logits } = llava.forward({ inputsEmbeds: tf.tensor3d([rows]), logits: 'all' });
    const lp = tf.reshape(tf.logSoftmax(tf.squeeze(logits!, [0])), [-1]);
    return Array.from(tf.gather(lp, tf.tensor1d(picks.map(({ pos, token }) => (pos - 1) * vocab + token), 'int32')).dataSync());
  });
}

/** Per item of a training window after the first, its answer tokens' log-probabilities in a full forward over the window. */
function answerLogProbs(model: Vip5Model, items: Int32Array, visual: BackboneInputs['visual']): number[][] {
  const pieces: Piece[] = model.prefixTokens.map((token) => ({ kind: 'text', token }));
  const picks: { pos: number; token: number }[] = [];
  const owner: number[] = [];
  items.forEach((item, t) => {
    const own = model.itemPieces([item]);
    const answer = [...model.tokens.ids[item], model.tokens.end];
    expect(own.slice(0, answer.length)).toEqual(answer.map((token) => ({ kind: 'text', token })));
    if (t > 0) answer.forEach((token, k) => (picks.push({ pos: pieces.length + k, token }), owner.push(t - 1)));
    pieces.push(...own);
  });
  const lp = fullLogProbs(model, pieces, visual, picks);
  return Array.from({ length: items.length - 1 }, (_, t) => lp.filter((_, i) => owner[i] === t));
}

test('golden prompt: <s>, the task, then each item as its ID, ";" and its visual tokens (none without an image)', () => {
  const m = build(config({ historyLength: 3 }));
  const blind = build(config({ historyLength: 3, useImages: 0 }), { data, backbone: { ...suite.ctx.backbone!, visual: null } });
  try {
    // Items 1, 3 (odd: one visual token each) and 4 (even: none); external ids 101, 103, 104.
    const history = Int32Array.from([2, 1, 3, 4]);
    expect(VIP5_ID_FORMAT).toBe('item_{itemId}');
    expect(m.renderPrompt(history)).toBe(`<s> ${VIP5_TASK} item_101 ${VIP5_END} <image×1:101> item_103 ${VIP5_END} <image×1:103> item_104 ${VIP5_END}`);
    expect(blind.renderPrompt(history)).toBe(`<s> ${VIP5_TASK} item_101 ${VIP5_END} item_103 ${VIP5_END} item_104 ${VIP5_END}`);
    // The ID as the backbone tokenizer writes it: "▁item", "_", then one token per digit.
    const ids = m.tokens.ids[3];
    expect(ids).toEqual(tokenizer.encode('item_103', { addBos: false }));
    expect(ids.map((t) => tokenizer.decode([t]))).toEqual(['item', '_', '1', '0', '3']);
    expect(m.promptPieces(history)[0]).toEqual({ kind: 'text', token: tokenizer.bosId });
    expect(() => build(config(), { data, backbone: { ...suite.ctx.backbone!, visual: null } })).toThrow(/no visual tokens/);
  } finally {
    m.dispose();
    blind.dispose();
  }
});

test('only LoRA (q, v) trains: the backbone stays bit-identical; the adapter exports as a PEFT causal-LM adapter with vip5.json', async () => {
  const c = config();
  expect(vip5Spec.paramShapes(c, suite.ctx).map(([n]) => n)).toEqual([
    'lora.text.layers.0.self_attn.q_proj.A',
    'lora.text.layers.0.self_attn.q_proj.B',
    'lora.text.layers.0.self_attn.v_proj.A',
    'lora.text.layers.0.self_attn.v_proj.B'
  ]);
  const frozen = new Map([...suite.inputs.backbone.weights].map(([n, t]) => [n, t.dataSync().slice()]));
  const before = tf.memory().numTensors;
  const out = join(suite.dir, 'train');
  const r = await trainModel(vip5Spec, suite.ctx, c, { checkpointDir: out });
  expect(tf.memory().numTensors).toBe(before);
  expect(r.history[0].loss).toBeGreaterThan(0);
  for (const [n, t] of suite.inputs.backbone.weights) expect(t.dataSync(), n).toEqual(frozen.get(n));
  const trained = readSafetensors(join(out, CHECKPOINT_FILE)).tensors;
  expect([...trained.keys()].filter((k) => k.startsWith('param.')).sort()).toEqual(vip5Spec.paramShapes(c, suite.ctx).map(([n]) => `param.${n}`).sort());
  expect(trained.get('param.lora.text.layers.0.self_attn.q_proj.B')!.data.some((v) => v !== 0)).toBe(true);

  const artifacts = vip5Spec.exportArtifacts!(join(out, CHECKPOINT_FILE), suite.ctx);
  expect(artifacts.map((a) => a.kind)).toEqual(['lora_adapter', 'lora_adapter_config', 'vip5_manifest']);
  const adapter = readPeftAdapter(join(out, 'lora'));
  expect(adapter.config).toMatchObject({ r: 8, taskType: 'CAUSAL_LM', targetModules: ['q_proj', 'v_proj'] });
  const manifest = JSON.parse(readFileSync(join(out, VIP5_MANIFEST_FILE), 'utf8')) as Record<string, unknown>;
  expect(manifest).toMatchObject({
    model: 'vip5',
    prompt: { task: VIP5_TASK, idFormat: 'item_{itemId}', end: VIP5_END, historyLength: 4 },
    visual: { visualTokens: 1, tokensPerImage: 1, cache: 'backbone:1/k1' },
    loraAdapter: 'lora'
  });
});

test('the loss is the mean cross-entropy of every answer token (ID and ";") of a plain full forward over the whole window', () => {
  const c = config({ loraDropout: 0 });
  const m = build(c);
  try {
    const seq = data.users[USER].items.subarray(0, data.users[USER].items.length - 2); // its training part
    const windows = [{ seq: USER, end: seq.length, first: 1 }];
    const got = tf.tidy(() => m.windowsLoss(windows, new Rng(1)).loss.dataSync()[0]);
    // The window reads the last historyLength + 1 items; each item after the first is an answer.
    const items = seq.subarray(Math.max(0, seq.length - 1 - c.historyLength));
    expect(items.length).toBe(c.historyLength + 1);
    const lp = answerLogProbs(m, items, suite.ctx.backbone!.visual).flat();
    expect(got).toBeCloseTo(-lp.reduce((a, v) => a + v, 0) / lp.length, 4);
  } finally {
    m.dispose();
  }
});

test('causality: an item\'s image reaches the answers after it, never its own ID nor earlier ones', () => {
  const c = config({ loraDropout: 0 });
  // A user whose training part ends with an item that has an image (odd): its last window of 5 items then
  // alternates odd, even, odd, even, odd.
  const user = data.users.findIndex((u) => u.items.length - 2 >= 5 && u.items[u.items.length - 3] % 2 === 1);
  expect(user).toBeGreaterThanOrEqual(0);
  const seq = data.users[user].items.subarray(0, data.users[user].items.length - 2);
  const items = seq.subarray(seq.length - 1 - c.historyLength);
  const [j, last] = [2, items[items.length - 1]];
  expect([items[j] % 2, last % 2]).toEqual([1, 1]);
  const other = (item: number): Float32Array => Float32Array.from(suite.ctx.backbone!.visual!.tokens[item]!, (v) => -2 * v + 0.5);
  const m = build(c);
  const changed = build(c, withImage(items[j], other(items[j])));
  const lastChanged = build(c, withImage(last, other(last)));
  try {
    const base = answerLogProbs(m, items, suite.ctx.backbone!.visual);
    const moved = answerLogProbs(changed, items, withImage(items[j], other(items[j])).backbone!.visual);
    // answers[t − 1] is item t's: items up to j (its own ID included) read nothing of item j's image.
    for (let t = 1; t < items.length; t++) {
      if (t <= j) expect(moved[t - 1], `item ${t}`).toEqual(base[t - 1]);
      else expect(moved[t - 1], `item ${t}`).not.toEqual(base[t - 1]);
    }
    // The model's own loss: item j's image counts (for the answers after it), the last item's image never.
    const windows = [{ seq: user, end: seq.length, first: 1 }];
    const loss = (model: Vip5Model): number => tf.tidy(() => model.windowsLoss(windows, new Rng(1)).loss.dataSync()[0]);
    expect(loss(changed)).not.toBeCloseTo(loss(m), 4);
    expect(loss(lastChanged)).toBe(loss(m));
  } finally {
    m.dispose();
    changed.dispose();
    lastChanged.dispose();
  }
});

test('scores are log P(ID ";" | prompt) of a full forward, for every item; column 0 is −∞; no tensor leaks', () => {
  const m = build(config());
  try {
    const history = Int32Array.from([4, 5, 6, 7, 8]);
    const before = tf.memory().numTensors;
    const scores = m.scoreBatch([history, Int32Array.from([1])]);
    expect(tf.memory().numTensors).toBe(before);
    const width = data.numItems + 1;
    expect(scores.length).toBe(2 * width);
    expect(scores[0]).toBe(-Infinity);
    expect(scores[width]).toBe(-Infinity);
    const prompt = m.promptPieces(history);
    expect(prompt.length).toBe(m.prefixTokens.length + 4 * 6 + 2); // items 5…8: 5 ID tokens and ";" each, 5 and 7 an image
    for (const item of [1, 8, 10, 17, data.numItems]) {
      const answer = [...m.tokens.ids[item], m.tokens.end];
      const pieces = [...prompt, ...answer.map((token): Piece => ({ kind: 'text', token }))];
      const lp = fullLogProbs(m, pieces, suite.ctx.backbone!.visual, answer.map((token, k) => ({ pos: prompt.length + k, token })));
      const want = lp.reduce((a, v) => a + v, 0);
      expect(scores[item], `item ${item}`).toBeCloseTo(want, 3);
    }
  } finally {
    m.dispose();
  }
});

test('recommend is the top k of the scores; constrained greedy decoding picks a valid ID with its score, the argmax here', () => {
  const m = build(config());
  try {
    const before = tf.memory().numTensors;
    for (const history of [Int32Array.from([4, 5, 6, 7, 8]), Int32Array.from([20, 21]), Int32Array.from([29])]) {
      const scores = m.scoreBatch([history]);
      const top = m.recommend(history, 3);
      const sorted = Array.from({ length: data.numItems }, (_, i) => i + 1).sort((a, b) => scores[b] - scores[a]);
      expect(top.map((p) => p.item)).toEqual(sorted.slice(0, 3));
      expect(top[0].logProb).toBeCloseTo(scores[sorted[0]], 5);
      const greedy = m.decodeGreedy(history);
      expect(greedy.logProb).toBeCloseTo(scores[greedy.item], 3);
      // Greedy need not find the likeliest ID in general (recommend is exact); on these prompts it does.
      expect(greedy.item).toBe(top[0].item);
    }
    expect(tf.memory().numTensors).toBe(before);
  } finally {
    m.dispose();
  }
});

test('it learns the synthetic walk (the next ID follows from the last ones)', async () => {
  // As in tallrec.test.ts: a random tied head of N(0, 0.02) rows cannot move a logit far whatever LoRA does;
  // the tiny backbone gets an untied head of a pretrained one's range instead.
  const text = suite.inputs.backbone.config.text;
  const config0 = { ...suite.inputs.backbone.config, text: { ...text, tieWordEmbeddings: false } };
  const scaled = tf.randomNormal([text.vocabSize, text.hiddenSize], 0, 0.5, 'float32', 11);
  const weights = new Map(suite.inputs.backbone.weights);
  weights.set('lm_head.weight', scaled);
  const learnCtx: ModelContext = { data, backbone: { ...suite.ctx.backbone!, backbone: { ...suite.inputs.backbone, config: config0, weights } } };
  try {
    const c = config({ epochs: 25, evalEvery: 25, learningRate: 3e-2, historyLength: 2, loraDropout: 0, loraTargets: 127 });
    const r = await trainModel(vip5Spec, learnCtx, c, { checkpointDir: join(suite.dir, 'learn') });
    console.log(`VIP5 synthetic walk: loss ${r.history[0].loss.toFixed(3)} → ${r.history.at(-1)!.loss.toFixed(3)}, valid MRR ${r.valid.mrr.toFixed(3)}, NDCG@10 ${r.valid.ndcg10.toFixed(3)}`);
    expect(r.history.at(-1)!.loss).toBeLessThan(r.history[0].loss);
    // Chance MRR over ≥ 23 unseen candidates is below 0.17; 0.27 measured (the walk asks a random 1-layer
    // model, through LoRA alone, to add 1 to the previous ID's digits; odd items' images help).
    expect(r.valid.mrr).toBeGreaterThan(0.22);
  } finally {
    scaled.dispose();
  }
});
