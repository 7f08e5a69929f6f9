// LLaVA decoding on small random configs: the KV cache against full forwards, greedy and constrained
// generation, candidate scoring, LoRA gradients (only the adapter's variables get any), and tensor hygiene.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { initBackend, tf } from '../../src/core/tensor/backend';
import { Rng } from '../../src/core/tensor/rng';
import type { LlavaConfig } from '../../src/core/backbone/config';
import { expectedTensors } from '../../src/core/backbone/weight-names';
import { LlavaModel } from '../../src/core/backbone/llava-model';
import { LoraAdapter, Linears } from '../../src/core/backbone/lora';
import { generateConstrained, generateGreedy, scoreSequences } from '../../src/core/backbone/generate';

const IMAGE = 39;
const EOS = 2;

function smallConfig(overrides: { tie?: boolean; mobilenet?: boolean } = {}): LlavaConfig {
  return {
    vision: overrides.mobilenet
      ? { kind: 'mobilenet_v2', hiddenSize: 24, gridSize: 2, encoderId: 'test' }
      : { kind: 'clip', hiddenSize: 16, intermediateSize: 32, numLayers: 2, numHeads: 2, imageSize: 8, patchSize: 4, numChannels: 3, layerNormEps: 1e-5, hiddenAct: 'quick_gelu' },
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
      tieWordEmbeddings: overrides.tie ?? false,
      bosTokenId: 1,
      eosTokenId: EOS,
      padTokenId: 0
    },
    projectorHiddenAct: 'gelu',
    projectorBias: true,
    imageTokenIndex: IMAGE,
    // The last layer with the CLS token kept: the other branches of what the fixture (−2, default) covers.
    visionFeatureLayer: -1,
    visionFeatureSelectStrategy: 'full'
  };
}

function randomWeights(cfg: LlavaConfig, seed: number): Map<string, tf.Tensor> {
  const rng = new Rng(seed);
  const weights = new Map<string, tf.Tensor>();
  for (const [name, shape] of expectedTensors(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const isNorm = /norm|layrnorm/.test(name) && name.endsWith('.weight');
    // Large enough logits that argmax decisions are clear-cut, not ties decided by rounding.
    const scale = name === 'lm_head.weight' || name === 'text.embed_tokens.weight' ? 1 : isNorm ? 0.1 : 0.3;
    const data = Float32Array.from({ length: n }, () => (isNorm ? 1 : 0) + rng.normal() * scale);
    weights.set(name, tf.tensor(data, shape));
  }
  return weights;
}

function randomTensor(shape: number[], rng: Rng, scale = 1): tf.Tensor {
  return tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal() * scale), shape);
}

/** Variable.assign shares the value's data but leaves its tensor object alive: free it. */
function assignAndFree(v: tf.Variable, value: tf.Tensor): void {
  v.assign(value);
  value.dispose();
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** logits [1, T, V] of a full forward, as plain rows. */
function fullLogits(model: LlavaModel, ids: number[][], pixelValues?: tf.Tensor4D, attentionMask?: number[][]): number[][][] {
  const { hidden, logits } = model.forward({ inputIds: ids, pixelValues, attentionMask });
  const out = logits!.arraySync() as number[][][];
  tf.dispose([hidden, logits!]);
  return out;
}

function logSoftmax(row: number[]): number[] {
  const max = Math.max(...row);
  const lse = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
  return row.map((v) => v - lse);
}

const argmax = (row: number[]): number => row.indexOf(Math.max(...row));

let cfg: LlavaConfig;
let weights: Map<string, tf.Tensor>;
let model: LlavaModel;
let pixels: tf.Tensor4D;
let prompt: number[][];

beforeAll(async () => {
  await initBackend('wasm');
  cfg = smallConfig();
  weights = randomWeights(cfg, 3);
  model = new LlavaModel(cfg, weights);
  pixels = randomTensor([1, 3, 8, 8], new Rng(5)) as tf.Tensor4D;
  prompt = model.expandImageTokens([[1, 7, IMAGE, 12, 30, 4]]);
});

afterAll(() => {
  model.dispose();
  tf.dispose([...weights.values(), pixels]);
});

describe('KV cache', () => {
  test('incremental forward (prompt with an image, single tokens, a chunk) equals the full forward', () => {
    expect(model.tokensPerImage).toBe(5); // 2×2 patches + CLS ('full')
    const continuation = [9, 21, 3, 33, 17];
    const all = [[...prompt[0], ...continuation]];
    const before = tf.memory().numTensors;
    const full = fullLogits(model, all, pixels)[0];
    const cache = model.newCache();
    const chunks = [prompt[0], [9], [21], [3, 33], [17]];
    let at = 0;
    for (const [i, chunk] of chunks.entries()) {
      const { hidden, logits } = model.forward({ inputIds: [chunk], pixelValues: i === 0 ? pixels : undefined, cache });
      const rows = (logits!.arraySync() as number[][][])[0];
      rows.forEach((row, j) => expect(maxAbsDiff(row, full[at + j])).toBeLessThanOrEqual(1e-5));
      tf.dispose([hidden, logits!]);
      at += chunk.length;
      expect(cache.length).toBe(at);
    }
    cache.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  test('with left padding in a batch, the cache and the padding mask agree with the full forward', () => {
    const rows = [
      [0, 0, 5, 6, 7, 8],
      [11, 12, 13, 14, 15, 16]
    ];
    const mask = [
      [0, 0, 1, 1, 1, 1],
      [1, 1, 1, 1, 1, 1]
    ];
    const full = fullLogits(model, rows, undefined, mask);
    const cache = model.newCache();
    const first = model.forward({ inputIds: rows.map((r) => r.slice(0, 4)), attentionMask: mask.map((m) => m.slice(0, 4)), cache, logits: 'none' });
    tf.dispose(first.hidden);
    const { hidden, logits } = model.forward({ inputIds: rows.map((r) => r.slice(4)), attentionMask: mask, cache });
    const inc = logits!.arraySync() as number[][][];
    for (let b = 0; b < 2; b++) for (let j = 0; j < 2; j++) expect(maxAbsDiff(inc[b][j], full[b][4 + j])).toBeLessThanOrEqual(1e-5);
    // A padded row's real positions do not see the padding: same as the unpadded row alone.
    const alone = fullLogits(model, [[5, 6, 7, 8]])[0];
    expect(maxAbsDiff(full[0][5], alone[3])).toBeLessThan(1e-3);
    tf.dispose([hidden, logits!]);
    cache.dispose();
  });

  test("lastHidden and 'last' logits take each row's last real position", () => {
    const rows = [
      [5, 6, 7, 0],
      [11, 12, 13, 14]
    ];
    const mask = [
      [1, 1, 1, 0],
      [1, 1, 1, 1]
    ];
    const { hidden, logits } = model.forward({ inputIds: rows, attentionMask: mask, logits: 'last' });
    const last = model.lastHidden({ inputIds: rows, attentionMask: mask });
    const h = hidden.arraySync();
    const l = last.arraySync();
    expect(l[0]).toEqual(h[0][2]);
    expect(l[1]).toEqual(h[1][3]);
    expect(logits!.shape).toEqual([2, cfg.text.vocabSize]);
    const full = fullLogits(model, rows, undefined, mask);
    expect(maxAbsDiff((logits!.arraySync() as number[][])[0], full[0][2])).toBeLessThanOrEqual(1e-6);
    tf.dispose([hidden, logits!, last]);
  });
});

describe('generation', () => {
  test('greedy generation equals repeated argmax of full forwards, and stops at eos', () => {
    const before = tf.memory().numTensors;
    const steps = 6;
    const { tokens, stoppedAtEos } = generateGreedy(model, { inputIds: prompt, pixelValues: pixels }, { maxNewTokens: steps, eosTokenId: null });
    expect(stoppedAtEos).toBe(false);
    const seq = [...prompt[0]];
    const reference: number[] = [];
    for (let i = 0; i < steps; i++) {
      const rows = fullLogits(model, [seq], pixels)[0];
      const next = argmax(rows[rows.length - 1]);
      reference.push(next);
      seq.push(next);
    }
    expect(tokens).toEqual(reference);
    // Make the third generated token the eos: generation stops there, eos included.
    const withEos = generateGreedy(model, { inputIds: prompt, pixelValues: pixels }, { maxNewTokens: steps, eosTokenId: reference[2] });
    expect(withEos.tokens).toEqual(reference.slice(0, reference.indexOf(reference[2]) + 1));
    expect(withEos.stoppedAtEos).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
  });

  test('scoreSequences equals the log-likelihood from full forwards, whatever the batch size', () => {
    const candidates = [[5], [5, 6], [7, 8, 9], [10, 11, 12, 13], [7, 8, 20]];
    const before = tf.memory().numTensors;
    const scores = scoreSequences(model, { inputIds: prompt, pixelValues: pixels }, candidates, { batchSize: 2 });
    expect(tf.memory().numTensors).toBe(before);
    const scoresOneBatch = scoreSequences(model, { inputIds: prompt, pixelValues: pixels }, candidates);
    candidates.forEach((c, i) => {
      const rows = fullLogits(model, [[...prompt[0], ...c]], pixels)[0];
      let expected = 0;
      c.forEach((tok, j) => (expected += logSoftmax(rows[prompt[0].length - 1 + j])[tok]));
      expect(Math.abs(scores[i] - expected)).toBeLessThanOrEqual(1e-4);
      expect(Math.abs(scoresOneBatch[i] - scores[i])).toBeLessThanOrEqual(1e-5);
    });
  });

  test('constrained generation returns only allowed sequences, the max-likelihood one where greedy is exact', () => {
    const p = { inputIds: prompt, pixelValues: pixels };
    const before = tf.memory().numTensors;
    // Single tokens: the constrained choice is the most likely candidate.
    const singles = [[3], [8], [15], [22], [31]];
    const s = generateConstrained(model, p, singles);
    const singleScores = scoreSequences(model, p, singles);
    expect(s.index).toBe(argmax(singleScores));
    expect(s.tokens).toEqual(singles[s.index]);
    expect(Math.abs(s.logProb - singleScores[s.index])).toBeLessThanOrEqual(1e-4);
    // A shared prefix then a choice among equally long endings: again exactly the most likely.
    const forked = [
      [14, 3],
      [14, 8],
      [14, 15],
      [14, 22]
    ];
    const f = generateConstrained(model, p, forked);
    const forkedScores = scoreSequences(model, p, forked);
    expect(f.index).toBe(argmax(forkedScores));
    expect(f.tokens).toEqual(forked[f.index]);
    expect(Math.abs(f.logProb - forkedScores[f.index])).toBeLessThanOrEqual(1e-4);
    // General lists: always one of them, its log-probability consistent with scoreSequences.
    const mixed = [[5], [5, 6], [7, 8, 9], [10, 11, 12, 13], [7, 8, 20], [30, 1]];
    const m = generateConstrained(model, p, mixed);
    expect(mixed.some((c) => c.join() === m.tokens.join())).toBe(true);
    expect(m.tokens).toEqual(mixed[m.index]);
    const stoppedAtPrefix = m.index === 0 && mixed[0].length < mixed[1].length;
    const eosTerm = stoppedAtPrefix ? logSoftmax(fullLogits(model, [[...prompt[0], 5]], pixels)[0].at(-1)!)[EOS] : 0;
    expect(Math.abs(m.logProb - (scoreSequences(model, p, [mixed[m.index]])[0] + eosTerm))).toBeLessThanOrEqual(1e-4);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('LoRA', () => {
  test('the frozen linear passes stock gradients to its input and LoRA factors', () => {
    const rng = new Rng(9);
    const w = randomTensor([6, 5], rng);
    const bias = randomTensor([6], rng);
    const x = randomTensor([3, 4, 5], rng);
    const r = randomTensor([3, 4, 6], rng);
    const linears = new Linears();
    linears.add('m', w, bias);
    const ours = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(linears.apply('m', v), r)))(x);
    const stock = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.add(tf.matMul(tf.reshape(v, [12, 5]) as tf.Tensor2D, w as tf.Tensor2D, false, true), bias), tf.reshape(r, [12, 6]))))(x);
    expect(maxAbsDiff(ours.dataSync(), stock.dataSync())).toBeLessThanOrEqual(1e-5);
    linears.dispose();
    tf.dispose([w, bias, x, r, ours, stock]);
  });

  test('one variableGrads step: only the LoRA variables get gradients, base weights untouched, no leaks', () => {
    const lora = LoraAdapter.create(cfg, { r: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'v_proj', 'fc1'], towers: ['text', 'vision'] }, 1);
    const paths = lora.paths().sort();
    expect(paths).toContain('text.layers.1.self_attn.v_proj');
    expect(paths).toContain('vision.encoder.layers.1.mlp.fc1');
    expect(paths.some((p) => p.endsWith('k_proj') || p.endsWith('o_proj'))).toBe(false);
    // Vision layers after the one LLaVA reads get no adapter: it could never train.
    const upToFirst = LoraAdapter.create({ ...cfg, visionFeatureLayer: -2 }, lora.config, 1);
    expect(upToFirst.paths().filter((p) => p.startsWith('vision.')).sort()).toEqual(paths.filter((p) => p.startsWith('vision.encoder.layers.0.')));
    upToFirst.dispose();
    const loraModel = new LlavaModel(cfg, weights, lora);
    const snapshot = new Map([...weights].map(([n, t]) => [n, t.dataSync().slice()]));
    const targets = tf.tensor1d([6, 17], 'int32');
    const before = tf.memory().numTensors;
    const loss = (): tf.Scalar =>
      tf.tidy(() => {
        const { hidden, logits } = loraModel.forward({ inputIds: [prompt[0], prompt[0].map((t) => (t === IMAGE ? t : (t + 3) % 30))], pixelValues: tf.concat([pixels, pixels]) as tf.Tensor4D, logits: 'last', training: true });
        hidden.dispose();
        return tf.losses.softmaxCrossEntropy(tf.oneHot(targets, cfg.text.vocabSize), logits!) as tf.Scalar;
      });
    const { value, grads } = tf.variableGrads(loss);
    const loraNames = lora.trainableVariables().map((v) => v.name).sort();
    expect(Object.keys(grads).sort()).toEqual(loraNames);
    // B starts at zero, so A's gradient is zero too; B's is not.
    const bGrad = lora.trainableVariables().find((v) => v.name.endsWith('text.layers.0.self_attn.q_proj/B'))!;
    expect(Math.max(...Array.from(grads[bGrad.name].dataSync(), Math.abs))).toBeGreaterThan(0);
    // An SGD step on the adapter lowers the loss; the base weights never change.
    const lr = 0.5;
    for (const v of lora.trainableVariables()) assignAndFree(v, tf.tidy(() => tf.sub(v, tf.mul(grads[v.name], lr))));
    const after = loss();
    expect(after.dataSync()[0]).toBeLessThan(value.dataSync()[0]);
    for (const [n, t] of weights) expect(t.dataSync()).toEqual(snapshot.get(n));
    tf.dispose([value, after, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(before);
    targets.dispose();
    loraModel.dispose();
    lora.dispose();
  });

  test('LoRA gradients agree with finite differences', () => {
    const lora = LoraAdapter.create(cfg, { r: 2, alpha: 4, dropout: 0, targets: ['v_proj', 'down_proj'], towers: ['text'] }, 2);
    // Non-zero B so that A's gradient is exercised too.
    const rng = new Rng(4);
    for (const v of lora.trainableVariables()) if (v.name.endsWith('/B')) assignAndFree(v, randomTensor(v.shape, rng, 0.3));
    const loraModel = new LlavaModel(cfg, weights, lora);
    const embeds = randomTensor([1, 5, cfg.text.hiddenSize], rng) as tf.Tensor3D;
    const probe = randomTensor([1, cfg.text.hiddenSize], rng);
    const loss = (): tf.Scalar => tf.tidy(() => tf.sum(tf.mul(loraModel.lastHidden({ inputsEmbeds: embeds }), probe)) as tf.Scalar);
    const { value, grads } = tf.variableGrads(loss);
    for (const name of ['text.layers.0.self_attn.v_proj/A', 'text.layers.1.mlp.down_proj/B']) {
      const v = lora.trainableVariables().find((x) => x.name.endsWith(name))!;
      const base = v.dataSync().slice();
      const eps = 1e-2;
      const at = (delta: number): number => {
        const w = base.slice();
        w[1] += delta;
        assignAndFree(v, tf.tensor(w, v.shape));
        const l = loss();
        const out = l.dataSync()[0];
        l.dispose();
        return out;
      };
      const numeric = (at(eps) - at(-eps)) / (2 * eps);
      assignAndFree(v, tf.tensor(base, v.shape));
      const analytic = grads[v.name].dataSync()[1];
      expect(Math.abs(numeric - analytic)).toBeLessThanOrEqual(2e-2 * Math.max(1, Math.abs(analytic)));
    }
    tf.dispose([value, embeds, probe, ...Object.values(grads)]);
    loraModel.dispose();
    lora.dispose();
  });

  test('dropout is active only when training', () => {
    const lora = LoraAdapter.create(cfg, { r: 4, alpha: 8, dropout: 0.5, targets: ['q_proj'], towers: ['text'] }, 3);
    const rng = new Rng(6);
    for (const v of lora.trainableVariables()) if (v.name.endsWith('/B')) assignAndFree(v, randomTensor(v.shape, rng, 0.5));
    const loraModel = new LlavaModel(cfg, weights, lora);
    const run = (training: boolean): Float32Array => {
      const h = loraModel.lastHidden({ inputIds: [[5, 6, 7]], training });
      const out = h.dataSync() as Float32Array;
      h.dispose();
      return out;
    };
    expect(run(false)).toEqual(run(false));
    expect(maxAbsDiff(run(true), run(true))).toBeGreaterThan(0);
    loraModel.dispose();
    lora.dispose();
  });
});

describe('other configurations', () => {
  test('tied embeddings: logits are hidden · embed_tokensᵀ', () => {
    const tied = smallConfig({ tie: true });
    const w = randomWeights(tied, 8);
    expect(w.has('lm_head.weight')).toBe(false);
    const m = new LlavaModel(tied, w);
    const { hidden, logits } = m.forward({ inputIds: [[3, 4, 5]] });
    const ref = tf.matMul(tf.reshape(hidden, [3, -1]) as tf.Tensor2D, w.get('text.embed_tokens.weight') as tf.Tensor2D, false, true);
    expect(maxAbsDiff(logits!.dataSync(), ref.dataSync())).toBeLessThanOrEqual(1e-5);
    tf.dispose([hidden, logits!, ref, ...w.values()]);
    m.dispose();
  });

  test('mobilenet_v2 tower: precomputed features go through the projector into the image tokens', () => {
    const mob = smallConfig({ mobilenet: true });
    const w = randomWeights(mob, 10);
    const m = new LlavaModel(mob, w);
    expect(m.tokensPerImage).toBe(4);
    const feats = randomTensor([2, 4, 24], new Rng(12));
    const embeds = m.projectVisionFeatures(feats);
    expect(embeds.shape).toEqual([2, 4, mob.text.hiddenSize]);
    expect(() => m.encodeImages(tf.zeros([1, 3, 8, 8]) as tf.Tensor4D)).toThrow(/projectVisionFeatures/);
    const ids = m.expandImageTokens([[1, IMAGE, 5, IMAGE, 6]]);
    expect(ids[0]).toHaveLength(11);
    const { hidden, logits } = m.forward({ inputIds: ids, imageEmbeds: embeds });
    // The merged sequence equals feeding the embeddings directly.
    const text = m.embedTokens([[1]]);
    const direct = tf.concat([text, tf.slice(embeds, [0, 0, 0], [1, -1, -1]), m.embedTokens([[5]]), tf.slice(embeds, [1, 0, 0], [1, -1, -1]), m.embedTokens([[6]])], 1);
    const viaEmbeds = m.forward({ inputsEmbeds: direct });
    expect(maxAbsDiff(viaEmbeds.logits!.dataSync(), logits!.dataSync())).toBeLessThanOrEqual(1e-6);
    expect(() => m.forward({ inputIds: ids, imageEmbeds: tf.slice(embeds, [0, 0, 0], [1, -1, -1]) })).toThrow(/image tokens do not match: 8 image tokens/);
    tf.dispose([feats, embeds, hidden, logits!, text, direct, viaEmbeds.hidden, viaEmbeds.logits!, ...w.values()]);
    m.dispose();
  });

  test('an adapter module that is no linear of the model is refused', () => {
    const lora = LoraAdapter.fromPeft(new Map([['text.layers.0.self_attn.qproj', { a: { data: new Float32Array(64), shape: [2, 32] }, b: { data: new Float32Array(64), shape: [32, 2] } }]]), { r: 2, alpha: 4, dropout: 0, targets: ['q_proj'], towers: ['text'] });
    expect(() => new LlavaModel(cfg, weights, lora)).toThrow(/LoRA module text\.layers\.0\.self_attn\.qproj is not a linear layer of this model/);
    lora.dispose();
  });

  test('missing or misshapen weights are named', () => {
    const w = new Map(weights);
    w.delete('text.layers.1.mlp.up_proj.weight');
    expect(() => new LlavaModel(cfg, w)).toThrow(/missing text\.layers\.1\.mlp\.up_proj\.weight/);
    const bad = tf.zeros([3, 3]);
    w.set('text.layers.1.mlp.up_proj.weight', bad);
    expect(() => new LlavaModel(cfg, w)).toThrow(/up_proj\.weight is \[3,3\], expected \[48,32\]/);
    bad.dispose();
  });
});
