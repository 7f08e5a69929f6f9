// ALMOSTREC on a tiny random compact backbone and a synthetic dataset: parameter shapes, what trains and
// what stays frozen through the generic loop, the input layout and its ablation switches, padding-invariant
// scoring, bit-exact resume with LoRA dropout, and the exported PEFT adapter + tensors + manifest.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseModelConfig } from '../../src/shared/api';
import { LORA_TARGET_BITS } from '../../src/shared/models';
import { COMPACT_IMAGE_TOKEN } from '../../src/core/backbone/compact';
import { saveHfCheckpoint } from '../../src/core/backbone/hf-checkpoint';
import { LlavaModel } from '../../src/core/backbone/llava-model';
import { TEXT_LORA_TARGETS } from '../../src/core/backbone/lora';
import { readPeftAdapter } from '../../src/core/backbone/peft-adapter';
import { trainPart } from '../../src/core/data/types';
import { CancelledError } from '../../src/core/progress';
import { AlmostrecModel, almostrecSpec } from '../../src/core/models/almostrec';
import type { AlmostrecConfig } from '../../src/core/models/almostrec-config';
import { ALMOSTREC_MANIFEST_FILE, ALMOSTREC_TENSORS_FILE, exportAlmostrec, type AlmostrecManifest } from '../../src/core/models/almostrec-export';
import { itemTableValues } from '../../src/core/models/almostrec-params';
import { PROMPT_TASK, promptTokens, sequencePieces, sharedPrefix, titleText, tokenizeTitles, type Piece } from '../../src/core/models/almostrec-prompt';
import { trainingWindows } from '../../src/core/models/seq/batches';
import { initBackend, tf } from '../../src/core/tensor/backend';
import { Rng } from '../../src/core/tensor/rng';
import { readSafetensors, readSafetensorsHeader } from '../../src/core/tensor/safetensors';
import { CHECKPOINT_FILE, trainModel } from '../../src/core/train/train-model';
import { defaultReplicaScript } from '../../src/core/train/replicas';
import type { ModelContext } from '../../src/core/train/model-spec';

import { D_MODEL, ITEM_DIM, NUM_ITEMS, TITLES, backboneInputs, syntheticData, tokenizer } from './almostrec-fixture';

const config = (over: Partial<AlmostrecConfig> = {}): AlmostrecConfig =>
  parseModelConfig('almostrec', {
    backboneId: 1,
    seqRunId: 2,
    epochs: 2,
    batchSize: 8,
    learningRate: 1e-2,
    warmupSteps: 0,
    samplesPerUser: 3,
    historyLength: 5,
    loraDropout: 0.1,
    seed: 7,
    ...over
  }) as unknown as AlmostrecConfig;

const data = syntheticData();
let inputs: ReturnType<typeof backboneInputs>;
let ctx: ModelContext;
let dir: string;

beforeAll(async () => {
  await initBackend('wasm');
  // Two-thread training runs the built replica worker; `npm test` builds first, this covers a bare vitest run.
  if (!defaultReplicaScript()) execFileSync('npx', ['electron-vite', 'build'], { cwd: join(__dirname, '..', '..'), stdio: 'ignore' });
  inputs = backboneInputs();
  ctx = { data, backbone: inputs };
  dir = mkdtempSync(join(tmpdir(), 'almostrec-unit-'));
});
afterAll(() => {
  inputs.dispose();
  rmSync(dir, { recursive: true, force: true });
});

function withModel<T>(c: AlmostrecConfig, f: (m: AlmostrecModel) => T, context: ModelContext = ctx): T {
  const model = new AlmostrecModel(c, context, almostrecSpec.init(c, context, new Rng(c.seed)));
  try {
    return f(model);
  } finally {
    model.dispose();
  }
}

const kinds = (pieces: Piece[]): string => pieces.map((p) => (p.kind === 'text' ? 't' : p.kind === 'image' ? 'v' : 's')).join('');

describe('parameters', () => {
  test('W^B is d_i × d_m, W^T d_m × (|I| + 1), LoRA on q and v of every layer; useLora = 0 and the target mask change the set', () => {
    expect(almostrecSpec.paramShapes(config(), ctx)).toEqual([
      ['w_b', [ITEM_DIM, D_MODEL]],
      ['w_t', [D_MODEL, NUM_ITEMS + 1]],
      ['lora.text.layers.0.self_attn.q_proj.A', [8, D_MODEL]],
      ['lora.text.layers.0.self_attn.q_proj.B', [D_MODEL, 8]],
      // One KV head of 16: v_proj is 32 → 16.
      ['lora.text.layers.0.self_attn.v_proj.A', [8, D_MODEL]],
      ['lora.text.layers.0.self_attn.v_proj.B', [16, 8]]
    ]);
    expect(almostrecSpec.paramShapes(config({ useLora: 0 }), ctx).map(([n]) => n)).toEqual(['w_b', 'w_t']);
    expect(almostrecSpec.paramShapes(config({ loraTargets: 1 + 64, loraRank: 2 }), ctx).slice(2)).toEqual([
      ['lora.text.layers.0.self_attn.q_proj.A', [2, D_MODEL]],
      ['lora.text.layers.0.self_attn.q_proj.B', [D_MODEL, 2]],
      ['lora.text.layers.0.mlp.down_proj.A', [2, 64]],
      ['lora.text.layers.0.mlp.down_proj.B', [D_MODEL, 2]]
    ]);
    const c = config();
    withModel(c, (m) => expect([...m.params.keys()]).toEqual(almostrecSpec.paramShapes(c, ctx).map(([n]) => n)));
    expect(() => almostrecSpec.paramShapes(config(), { data })).toThrow('ALMOSTREC needs a backbone');
    expect(() => parseModelConfig('almostrec', { visualTokens: 3 })).toThrow('must be one of 0, 1, 4, 9');
    // The catalogue's bitmask names the backbone's own target list, bit i = entry i.
    expect([...LORA_TARGET_BITS]).toEqual([...TEXT_LORA_TARGETS]);
  });
});

test('initOutputFromIds = 1 (default) starts W^T as (M·W^B)ᵀ at the default init’s spread; 0 leaves the nn.Linear init', () => {
  const plain = almostrecSpec.init(config({ initOutputFromIds: 0 }), ctx, new Rng(3));
  const warm = almostrecSpec.init(config(), ctx, new Rng(3)); // the default
  const wb = warm.get('w_b')!;
  expect(wb).toEqual(plain.get('w_b')); // same draws; only W^T differs
  const wt = warm.get('w_t')!;
  const m = itemTableValues(config(), ctx);
  const items = NUM_ITEMS + 1;
  // Column j ∝ (M·W^B)[j]: compare two items' columns through the ratio of one coordinate pair.
  const s = (j: number, c: number) => {
    let v = 0;
    for (let k = 0; k < ITEM_DIM; k++) v += m[j * ITEM_DIM + k] * wb[k * D_MODEL + c];
    return v;
  };
  const scale = wt[0 * items + 3] / s(3, 0);
  for (const [j, c] of [[3, 5], [7, 0], [NUM_ITEMS, D_MODEL - 1]]) expect(wt[c * items + j]).toBeCloseTo(scale * s(j, c), 6);
  const std = Math.sqrt(wt.reduce((a, x) => a + x * x, 0) / wt.length);
  expect(std).toBeCloseTo(1 / Math.sqrt(3 * D_MODEL), 6);
  expect(plain.get('w_t')).not.toEqual(wt);
});

describe('input layout', () => {
  const tokens = promptTokens(tokenizer, tokenizeTitles(tokenizer, TITLES), 8);
  const base = { interleaved: false, useImages: true, useText: true, promptTitles: 20, imageTokens: (i: number) => (i % 2 ? 2 : 0) };
  const task = tokenizer.encode(PROMPT_TASK, { addBos: false });
  const title = (i: number) => tokenizer.encode(titleText(TITLES[i]), { addBos: false });
  const sep = tokenizer.encode(';', { addBos: false });
  const history = Int32Array.from([3, 4, 5]);

  test('titles lose the year and get their article back', () => {
    expect(titleText('Matrix, The (1999)')).toBe('The Matrix');
    expect(titleText('Heat (1995)')).toBe('Heat');
    expect(titleText('A <image> trick (2001)')).toBe('A trick');
  });

  test('concat: <s>, V of the items with an image, the task and the titles, then one ID token per item', () => {
    const pieces = sequencePieces(history, tokens, base);
    const text = [...task, ...title(3), ...sep, ...title(4), ...sep, ...title(5)];
    expect(pieces).toEqual([
      { kind: 'text', token: 1 },
      // Item 4 has no image: no visual tokens.
      { kind: 'image', item: 3, index: 0 },
      { kind: 'image', item: 3, index: 1 },
      { kind: 'image', item: 5, index: 0 },
      { kind: 'image', item: 5, index: 1 },
      ...text.map((token) => ({ kind: 'text', token })),
      { kind: 'id', item: 3 },
      { kind: 'id', item: 4 },
      { kind: 'id', item: 5 }
    ]);
  });

  test('interleaved: per item its image tokens, its title tokens, its ID token', () => {
    const pieces = sequencePieces(history, tokens, { ...base, interleaved: true });
    const t = (ids: number[]) => ids.map((token) => ({ kind: 'text', token }));
    expect(pieces).toEqual([
      { kind: 'text', token: 1 },
      ...t(task),
      { kind: 'image', item: 3, index: 0 },
      { kind: 'image', item: 3, index: 1 },
      ...t(title(3)),
      { kind: 'id', item: 3 },
      ...t(title(4)),
      { kind: 'id', item: 4 },
      { kind: 'image', item: 5, index: 0 },
      { kind: 'image', item: 5, index: 1 },
      ...t(title(5)),
      { kind: 'id', item: 5 }
    ]);
  });

  test('useImages = 0 drops V, useText = 0 drops the prompt (only <s> is left), promptTitles keeps the newest titles', () => {
    expect(kinds(sequencePieces(history, tokens, { ...base, useImages: false }))).toBe('t'.repeat(1 + task.length + title(3).length + title(4).length + title(5).length + 2 * sep.length) + 'sss');
    expect(sequencePieces(history, tokens, { ...base, useText: false })).toEqual([
      { kind: 'text', token: 1 },
      { kind: 'image', item: 3, index: 0 },
      { kind: 'image', item: 3, index: 1 },
      { kind: 'image', item: 5, index: 0 },
      { kind: 'image', item: 5, index: 1 },
      { kind: 'id', item: 3 },
      { kind: 'id', item: 4 },
      { kind: 'id', item: 5 }
    ]);
    const newest = sequencePieces(history, tokens, { ...base, useImages: false, promptTitles: 1 });
    expect(newest.slice(1 + task.length, -3).map((p) => (p as { token: number }).token)).toEqual(title(5));
    // Titles are cut to maxTitleTokens.
    const cut = promptTokens(tokenizer, tokenizeTitles(tokenizer, TITLES), 2);
    expect(cut.titles[3]).toEqual(title(3).slice(0, 2));
  });

  test('the model lays out the last historyLength items with the cached tokens of the items that have one', () => {
    const c = config({ historyLength: 2, useText: 0, layout: 0 });
    withModel(c, (m) => {
      // Items 6 and 7: only 7 has an image (odd), one token each.
      expect(kinds(m.pieces(Int32Array.from([1, 2, 6, 7])))).toBe('tvss');
      const { embeds, mask } = tf.tidy(() => {
        const r = m.inputs([Int32Array.from([6, 7]), Int32Array.from([7])]);
        return { embeds: tf.keep(r.embeds), mask: r.mask };
      });
      // <s> is the shared prefix (encoded once per batch): the embeddings start after it, the mask covers it.
      expect(embeds.shape).toEqual([2, 3, D_MODEL]);
      expect(mask).toEqual([
        [1, 1, 1, 1],
        [1, 1, 1, 0]
      ]);
      const rows = embeds.arraySync() as number[][][];
      embeds.dispose();
      // The image row is the cached token itself; the padding row is zeros.
      expect(Float32Array.from(rows[0][0])).toEqual(inputs.visual!.tokens[7]);
      expect(rows[1][2].every((v) => v === 0)).toBe(true);
      // ID tokens are M(item) · W^B.
      const wb = m.params.get('w_b')!.arraySync() as number[][];
      const m7 = inputs.itemTable.values.subarray(7 * ITEM_DIM, 8 * ITEM_DIM);
      const s7 = Array.from({ length: D_MODEL }, (_, j) => m7.reduce((acc, v, k) => acc + v * wb[k][j], 0));
      rows[0][2].forEach((v, j) => expect(v).toBeCloseTo(s7[j], 4));
    });
    // promptTitles 0 lists every one of the L titles.
    const texts = (c: AlmostrecConfig) => withModel(c, (m) => m.pieces(Int32Array.from([1, 2, 3])).filter((p) => p.kind === 'text').length);
    expect(texts(config({ historyLength: 3, promptTitles: 0 }))).toBe(texts(config({ historyLength: 3, promptTitles: 3 })));
    expect(texts(config({ historyLength: 3, promptTitles: 1 }))).toBeLessThan(texts(config({ historyLength: 3, promptTitles: 2 })));
  });

  test('visualTokens k > 1 puts k tokens per image; pretrainedIds = 0 swaps M for a seeded N(0, 0.02) table', () => {
    const four = backboneInputs(4);
    try {
      withModel(config({ visualTokens: 4, useText: 0 }), (m) => expect(kinds(m.pieces(Int32Array.from([1, 2])))).toBe('tvvvvss'), { data, backbone: four });
    } finally {
      four.dispose();
    }
    const random = itemTableValues(config({ pretrainedIds: 0 }), ctx);
    expect(random).not.toEqual(inputs.itemTable.values);
    expect(random).toEqual(itemTableValues(config({ pretrainedIds: 0 }), ctx));
    expect([...random.subarray(0, ITEM_DIM)]).toEqual(new Array(ITEM_DIM).fill(0));
    const rest = random.subarray(ITEM_DIM);
    const std = Math.sqrt(rest.reduce((a, v) => a + v * v, 0) / rest.length);
    expect(std).toBeGreaterThan(0.015);
    expect(std).toBeLessThan(0.025);
    expect(itemTableValues(config(), ctx)).toBe(inputs.itemTable.values);
    // Same trainable weights, other M: other scores.
    const h = [Int32Array.from([1, 2, 3])];
    const a = withModel(config(), (m) => m.scoreBatch(h));
    const b = withModel(config({ pretrainedIds: 0 }), (m) => m.scoreBatch(h));
    expect(b).not.toEqual(a);
  });
});

describe('training and scoring', () => {
  test('a few steps change W^B, W^T and LoRA only: backbone weights and M stay bit-identical; no tensor leaks', async () => {
    const c = config({ epochs: 1 });
    const frozen = new Map([...inputs.backbone.weights].map(([n, t]) => [n, t.dataSync().slice()]));
    const m = inputs.itemTable.values.slice();
    const before = tf.memory().numTensors;
    const out = join(dir, 'frozen');
    const r = await trainModel(almostrecSpec, ctx, c, { checkpointDir: out });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.history[0].loss).toBeGreaterThan(0);
    for (const [n, t] of inputs.backbone.weights) expect(t.dataSync(), n).toEqual(frozen.get(n));
    expect(inputs.itemTable.values).toEqual(m);
    const init = almostrecSpec.init(c, ctx, new Rng(c.seed));
    const trained = readSafetensors(join(out, CHECKPOINT_FILE)).tensors;
    expect([...trained.keys()].filter((k) => k.startsWith('param.')).sort()).toEqual([...init.keys()].map((k) => `param.${k}`).sort());
    for (const [name, v] of init) expect(trained.get(`param.${name}`)!.data, name).not.toEqual(v);
  });

  test('it learns the synthetic walk; scores are (B, |I| + 1) with the padding column −∞ and do not depend on the batch', async () => {
    const c = config({ epochs: 6, samplesPerUser: 5, useLora: 0, learningRate: 2e-2 });
    const r = await trainModel(almostrecSpec, ctx, c, { checkpointDir: join(dir, 'learn') });
    expect(r.history.at(-1)!.loss).toBeLessThan(r.history[0].loss);
    // At least 23 unseen candidates per user: chance MRR is below 0.2.
    console.log(`synthetic walk: valid MRR ${r.valid.mrr.toFixed(3)}, NDCG@10 ${r.valid.ndcg10.toFixed(3)}`);
    expect(r.valid.mrr).toBeGreaterThan(0.5);
    withModel(config(), (m) => {
      const hs = [Int32Array.from([1, 2, 3, 4, 5, 6, 7]), Int32Array.from([2]), Int32Array.from([29, 30, 1])];
      const together = m.scoreBatch(hs);
      expect(together.length).toBe(3 * (NUM_ITEMS + 1));
      hs.forEach((h, b) => {
        const alone = m.scoreBatch([h]);
        expect(alone[0]).toBe(-Infinity);
        for (let i = 1; i <= NUM_ITEMS; i++) expect(together[b * (NUM_ITEMS + 1) + i]).toBeCloseTo(alone[i], 4);
      });
    });
  });

  test('cancelled mid-epoch and resumed, it ends bit for bit where an uninterrupted run does (LoRA and ID-token dropout, random window phases)', async () => {
    const c = config({ epochs: 2, gradAccum: 2, warmupSteps: 3, idDropout: 0.2, windowPhase: 1, layout: 1 });
    const straight = join(dir, 'straight');
    await trainModel(almostrecSpec, ctx, c, { checkpointDir: straight });
    const cut = join(dir, 'cut');
    const signal = { aborted: false };
    await expect(
      trainModel(almostrecSpec, ctx, c, {
        checkpointDir: cut,
        signal,
        onProgress: (p) => {
          if (p.phase === 'train' && p.metrics!.epoch === 2 && p.metrics!.step === 1) signal.aborted = true;
        }
      })
    ).rejects.toBeInstanceOf(CancelledError);
    await trainModel(almostrecSpec, ctx, c, { checkpointDir: cut, resume: true });
    const a = readSafetensors(join(straight, CHECKPOINT_FILE));
    const b = readSafetensors(join(cut, CHECKPOINT_FILE));
    for (const [name, t] of a.tensors) expect(b.tensors.get(name)!.data, name).toEqual(t.data);
    expect(b.metadata.rng).toBe(a.metadata.rng);
  });
});

describe('every-position training (interleaved layout)', () => {
  const seqs = data.users.map(trainPart);
  /** Cross-entropy over all items (the padding column included, as the training loss) of one target. */
  const targetLoss = (logits: tf.Tensor2D, target: number): tf.Scalar => tf.neg(tf.gather(tf.reshape(tf.logSoftmax(logits), [-1]), [target])) as tf.Scalar;

  // Exact when every item of the window has its title (promptTitles 0 or ≥ L): with fewer, a window's older
  // ID tokens are trained without the titles a single-target input would list (see the next test).
  test('one forward over a window gives the mean of the single-target losses of its targets (values and gradients)', () => {
    const c = config({ layout: 1, historyLength: 4, loraDropout: 0, idDropout: 0, promptTitles: 0 });
    withModel(c, (m) => {
      const windows = trainingWindows(seqs, 4).slice(0, 6);
      const vars = [...m.params.values()];
      // LoRA's B starts at zero (so A gets no gradient): give every factor a value to compare gradients on.
      const rng = new Rng(3);
      for (const [name, v] of m.params) if (name.endsWith('.B')) v.assign(tf.tensor(Float32Array.from({ length: v.size }, () => rng.normal() * 0.1), v.shape));
      const every = tf.variableGrads(() => m.windowsLoss(windows, new Rng(1)).loss, vars);
      let count = 0;
      const single = tf.variableGrads(() => {
        const losses: tf.Scalar[] = [];
        for (const w of windows) {
          const seq = seqs[w.seq];
          const start = Math.max(0, w.end - 1 - 4);
          // Target seq[t] read as the last position of its own input: the items before it in the window.
          for (let t = Math.max(w.first, start + 1); t < w.end; t++) losses.push(targetLoss(m.logits([seq.subarray(start, t)], true), seq[t]));
        }
        count = losses.length;
        return tf.mean(tf.stack(losses)) as tf.Scalar;
      }, vars);
      expect(count).toBeGreaterThan(windows.length * 2);
      expect(m.windowsLoss(windows, new Rng(1)).count).toBe(count);
      expect(every.value.dataSync()[0]).toBeCloseTo(single.value.dataSync()[0], 5);
      for (const v of vars) {
        const a = every.grads[v.name].dataSync();
        const b = single.grads[v.name].dataSync();
        const scale = Math.max(...Array.from(b, Math.abs));
        expect(scale, v.name).toBeGreaterThan(0);
        a.forEach((x, i) => expect(Math.abs(x - b[i]) / scale, `${v.name}[${i}]`).toBeLessThan(1e-4));
      }
      tf.dispose([every.value, single.value, ...Object.values(every.grads), ...Object.values(single.grads)]);
    });
  });

  test('promptTitles < L: only the window’s newest items carry titles, so its loss is not the single-target mean', () => {
    const c = config({ layout: 1, historyLength: 4, loraDropout: 0, idDropout: 0, promptTitles: 1 });
    withModel(c, (m) => {
      const windows = trainingWindows(seqs, 4).slice(0, 6);
      const every = m.windowsLoss(windows, new Rng(1)).loss;
      const losses: tf.Scalar[] = [];
      for (const w of windows) {
        const seq = seqs[w.seq];
        const start = Math.max(0, w.end - 1 - 4);
        for (let t = Math.max(w.first, start + 1); t < w.end; t++) losses.push(targetLoss(m.logits([seq.subarray(start, t)], false), seq[t]));
      }
      const single = tf.mean(tf.stack(losses));
      expect(Math.abs(every.dataSync()[0] - single.dataSync()[0])).toBeGreaterThan(1e-4);
      tf.dispose([every, single, ...losses]);
    });
  });

  test('random window phases: every target of every sequence still trained exactly once, the newest window trains the last `phase` of them', () => {
    const rng = new Rng(5);
    const phases = Int32Array.from(seqs, () => rng.int(4));
    const windows = trainingWindows(seqs, 4, 4, phases);
    seqs.forEach((s, i) => {
      const mine = windows.filter((w) => w.seq === i);
      const targets = mine.flatMap((w) => Array.from({ length: w.end - w.first }, (_, k) => w.first + k)).sort((a, b) => a - b);
      expect(targets, `sequence ${i}`).toEqual(Array.from({ length: s.length - 1 }, (_, k) => k + 1));
      expect(mine[0].end).toBe(s.length);
      if (s.length > 1) expect(mine[0].end - mine[0].first).toBe(Math.min(phases[i] || 4, s.length - 1));
      for (const w of mine) expect(w.end - w.first).toBeLessThanOrEqual(4);
    });
    expect(trainingWindows(seqs, 4, 4, new Int32Array(seqs.length))).toEqual(trainingWindows(seqs, 4));
    expect(() => trainingWindows(seqs, 4, 4, new Int32Array(seqs.length).fill(4))).toThrow(/phase 4 of sequence 0/);
  });

  test('ID-token dropout changes the training loss only: the same Rng gives the same loss, eval scores ignore it', () => {
    const windows = trainingWindows(seqs, 4).slice(0, 6);
    const hs = [Int32Array.from([1, 2, 3, 4, 5])];
    const plain = withModel(config({ layout: 1, historyLength: 4, loraDropout: 0, idDropout: 0 }), (m) => ({ loss: m.windowsLoss(windows, new Rng(1)).loss.dataSync()[0], scores: m.scoreBatch(hs) }));
    withModel(config({ layout: 1, historyLength: 4, loraDropout: 0, idDropout: 0.5 }), (m) => {
      const a = m.windowsLoss(windows, new Rng(1)).loss.dataSync()[0];
      expect(m.windowsLoss(windows, new Rng(1)).loss.dataSync()[0]).toBe(a);
      expect(Math.abs(a - plain.loss)).toBeGreaterThan(1e-4);
      expect(m.windowsLoss(windows, new Rng(2)).loss.dataSync()[0]).not.toBe(a);
      expect(m.scoreBatch(hs)).toEqual(plain.scores);
    });
  });

  test('no leakage: an ID token’s logits do not change when later items (images, titles, IDs) change', () => {
    const h = Int32Array.from([3, 4, 5, 6, 7]);
    const later = Int32Array.from([3, 4, 5, 20, 9]);
    withModel(config({ layout: 1 }), (m) => {
      const a = m.idTokenLogits(h).arraySync();
      const b = m.idTokenLogits(later).arraySync();
      for (let j = 0; j < 3; j++) a[j].forEach((x, i) => expect(b[j][i], `position ${j}`).toBeCloseTo(x, 5));
      expect(b[3]).not.toEqual(a[3]);
    });
    // The concat layout puts every image and title before the first ID token: earlier positions see later
    // items, which is why only its last position may be trained.
    withModel(config({ layout: 0 }), (m) => {
      expect(m.idTokenLogits(later).arraySync()[0]).not.toEqual(m.idTokenLogits(h).arraySync()[0]);
    });
  });

  test('the shared prefix K/V gives the scores of the full forward over <s> + task + the rest', () => {
    const c = config({ layout: 1, useLora: 0 });
    const hs = [Int32Array.from([1, 2, 3, 4, 5, 6, 7]), Int32Array.from([2]), Int32Array.from([29, 30, 1])];
    withModel(c, (m) => {
      const prefix = sharedPrefix(m.prompt, m.layoutOptions);
      expect(prefix.length).toBe(1 + m.prompt.task.length);
      const full = new LlavaModel(inputs.backbone.config, inputs.backbone.weights);
      try {
        const expected = tf.tidy(() => {
          const b = m.inputs(hs);
          const head = tf.tile(full.embedTokens([prefix]), [hs.length, 1, 1]);
          const f = full.lastHidden({ inputsEmbeds: tf.concat([head, b.embeds], 1), attentionMask: b.mask });
          return tf.matMul(f, m.params.get('w_t')!).arraySync() as number[][];
        });
        const scores = m.scoreBatch(hs);
        expected.forEach((row, b) => row.forEach((x, i) => i > 0 && expect(scores[b * (NUM_ITEMS + 1) + i]).toBeCloseTo(x, 4)));
      } finally {
        full.dispose();
      }
    });
  });

  test('one thread and two (a replica that loads the backbone from its folder) give the same run bit for bit', async () => {
    const folder = join(dir, 'tiny-backbone');
    saveHfCheckpoint(folder, inputs.backbone.config, inputs.backbone.weights, {
      extraFiles: { 'tokenizer_config.json': JSON.stringify({ almostrec_tokenizer: `llama-2+image:${COMPACT_IMAGE_TOKEN}` }) }
    });
    const onDisk: ModelContext = { data, backbone: { ...inputs, backbone: { ...inputs.backbone, path: folder } } };
    const c = config({ layout: 1, epochs: 1, historyLength: 4, idDropout: 0.2, windowPhase: 1 });
    const one = await trainModel(almostrecSpec, onDisk, c, { checkpointDir: join(dir, 'one-thread'), threads: 1 });
    const logs: string[] = [];
    const two = await trainModel(almostrecSpec, onDisk, c, { checkpointDir: join(dir, 'two-threads'), threads: 2, onLog: (m) => logs.push(m) });
    expect(logs).toEqual([]);
    expect([one.threads, two.threads]).toEqual([1, 2]);
    const a = readSafetensors(join(dir, 'one-thread', CHECKPOINT_FILE));
    const b = readSafetensors(join(dir, 'two-threads', CHECKPOINT_FILE));
    for (const [name, t] of a.tensors) expect(b.tensors.get(name)!.data, name).toEqual(t.data);
    expect(two.valid).toEqual(one.valid);
  });
});

test('export: a PEFT adapter for the backbone, W_B/W_T/M/item_ids in safetensors, and a manifest naming dataset, run and backbone', async () => {
  const c = config({ epochs: 1 });
  const out = join(dir, 'export');
  const r = await trainModel(almostrecSpec, ctx, c, { checkpointDir: out });
  const artifacts = exportAlmostrec(r.checkpointPath, ctx);
  expect(artifacts.map((a) => a.kind)).toEqual(['almostrec_tensors', 'lora_adapter', 'lora_adapter_config', 'almostrec_manifest']);
  const best = readSafetensors(r.checkpointPath).tensors;

  const adapter = readPeftAdapter(join(out, 'lora'));
  expect(adapter.config).toMatchObject({ r: 8, alpha: 16, dropout: 0.1, targetModules: ['q_proj', 'v_proj'], baseModel: '/backbones/tiny' });
  expect([...adapter.modules.keys()]).toEqual(['text.layers.0.self_attn.q_proj', 'text.layers.0.self_attn.v_proj']);
  expect(adapter.modules.get('text.layers.0.self_attn.v_proj')!.b.data).toEqual(best.get('lora.text.layers.0.self_attn.v_proj.B')!.data);
  expect([...readSafetensorsHeader(join(out, 'lora', 'adapter_model.safetensors')).tensors.keys()]).toContain('base_model.model.model.language_model.layers.0.self_attn.q_proj.lora_A.weight');

  const tensors = readSafetensors(join(out, ALMOSTREC_TENSORS_FILE)).tensors;
  expect(tensors.get('W_B')!.shape).toEqual([ITEM_DIM, D_MODEL]);
  expect(tensors.get('W_T')!.shape).toEqual([D_MODEL, NUM_ITEMS + 1]);
  expect(tensors.get('W_T')!.data).toEqual(best.get('w_t')!.data);
  expect(tensors.get('M')!.data).toEqual(inputs.itemTable.values);
  expect(tensors.get('item_ids')!.data).toEqual(data.itemIds);

  const manifest = JSON.parse(readFileSync(join(out, ALMOSTREC_MANIFEST_FILE), 'utf8')) as AlmostrecManifest;
  expect(manifest.dataset).toEqual({ id: 3, name: 'synthetic', numItems: NUM_ITEMS });
  expect(manifest.sequentialRun).toEqual({ id: 2, model: 'sasrec', itemEmbeddings: '/runs/2/item_embeddings.safetensors' });
  expect(manifest.backbone).toMatchObject({ id: 1, name: 'tiny', hiddenSize: D_MODEL, tokenizer: tokenizer.id });
  expect(manifest.prompt).toMatchObject({ task: PROMPT_TASK, titles: true });
  expect(manifest.model).toBe('almostrec');
  expect(manifest.loraAdapter).toBe('lora');

  // Without LoRA there is no adapter to write.
  const noLora = await trainModel(almostrecSpec, ctx, config({ epochs: 1, useLora: 0 }), { checkpointDir: join(dir, 'export-nolora') });
  expect(exportAlmostrec(noLora.checkpointPath, ctx).map((a) => a.kind)).toEqual(['almostrec_tensors', 'almostrec_manifest']);
});
