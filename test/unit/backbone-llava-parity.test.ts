// Numerical parity of our LLaVA forward with Hugging Face transformers on the tiny fixture
// (test/fixtures/hf-llava-tiny, see its README): base logits, logits with the fixture's PEFT LoRA adapter
// (in both towers), every checkpoint key layout, and LoRA merged into the weights.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { initBackend, tf } from '../../src/core/tensor/backend';
import { readSafetensors } from '../../src/core/tensor/safetensors';
import { parseLlavaConfig, type LlavaConfig } from '../../src/core/backbone/config';
import { canonicalName, hfKey } from '../../src/core/backbone/weight-names';
import { LlavaModel } from '../../src/core/backbone/llava-model';
import { LoraAdapter, loraConfigFromPeft, type PeftLoraModule } from '../../src/core/backbone/lora';

const FIXTURE = path.resolve(__dirname, '../fixtures/hf-llava-tiny');

/** The checkpoint as the loader will hand it over: internal name → tensor. */
function readFixtureModel(): { config: LlavaConfig; weights: Map<string, tf.Tensor> } {
  const configPath = path.join(FIXTURE, 'model/config.json');
  const config = parseLlavaConfig(JSON.parse(readFileSync(configPath, 'utf8')), configPath);
  const weights = new Map<string, tf.Tensor>();
  for (const [key, entry] of readSafetensors(path.join(FIXTURE, 'model/model.safetensors')).tensors) {
    const name = canonicalName(key);
    if (!name) throw new Error(`fixture key ${key} has no internal name`);
    weights.set(name, tf.tensor(entry.data as Float32Array, entry.shape));
  }
  return { config, weights };
}

/** The PEFT adapter as the adapter reader will hand it over: internal module path → A, B. */
function readFixtureAdapter(): { settings: { r: number; alpha: number; dropout: number }; modules: Map<string, PeftLoraModule> } {
  const cfg = JSON.parse(readFileSync(path.join(FIXTURE, 'lora/adapter_config.json'), 'utf8')) as { r: number; lora_alpha: number; lora_dropout: number };
  const modules = new Map<string, PeftLoraModule>();
  for (const [key, entry] of readSafetensors(path.join(FIXTURE, 'lora/adapter_model.safetensors')).tensors) {
    const m = /^base_model\.model\.(.+)\.lora_([AB])\.weight$/.exec(key);
    if (!m) throw new Error(`unexpected adapter key ${key}`);
    const modulePath = canonicalName(m[1]);
    if (!modulePath) throw new Error(`adapter key ${key} has no internal name`);
    const factor = { data: entry.data as Float32Array, shape: entry.shape as [number, number] };
    const mod = modules.get(modulePath) ?? ({} as PeftLoraModule);
    if (m[2] === 'A') mod.a = factor;
    else mod.b = factor;
    modules.set(modulePath, mod);
  }
  return { settings: { r: cfg.r, alpha: cfg.lora_alpha, dropout: cfg.lora_dropout }, modules };
}

function rowsOf(data: BigInt64Array, shape: number[]): number[][] {
  const [b, t] = shape;
  return Array.from({ length: b }, (_, r) => Array.from(data.subarray(r * t, (r + 1) * t), Number));
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

let config: LlavaConfig;
let weights: Map<string, tf.Tensor>;
let inputIds: number[][];
let attentionMask: number[][];
let pixelValues: tf.Tensor4D;
let expected: Float32Array;
let expectedLora: Float32Array;

beforeAll(async () => {
  await initBackend('wasm');
  ({ config, weights } = readFixtureModel());
  const io = readSafetensors(path.join(FIXTURE, 'io.safetensors')).tensors;
  const get = (k: string) => io.get(k)!;
  inputIds = rowsOf(get('input_ids').data as BigInt64Array, get('input_ids').shape);
  attentionMask = rowsOf(get('attention_mask').data as BigInt64Array, get('attention_mask').shape);
  pixelValues = tf.tensor4d(get('pixel_values').data as Float32Array, get('pixel_values').shape as [number, number, number, number]);
  expected = get('logits').data as Float32Array;
  expectedLora = get('logits_lora').data as Float32Array;
});

afterAll(() => {
  tf.dispose([...weights.values(), pixelValues]);
});

function logitsOf(model: LlavaModel): Float32Array {
  const { hidden, logits } = model.forward({ inputIds, attentionMask, pixelValues });
  expect(logits!.shape).toEqual([1, 17, 256]);
  const out = logits!.dataSync() as Float32Array;
  tf.dispose([hidden, logits!]);
  return out;
}

test('base logits match transformers (max |Δ| ≤ 1e-4), without leaking tensors', () => {
  const model = new LlavaModel(config, weights);
  logitsOf(model); // warm-up (XNNPACK packs the weights on first use)
  const before = tf.memory().numTensors;
  const runs = 10;
  const t0 = performance.now();
  for (let i = 1; i < runs; i++) logitsOf(model);
  const ours = logitsOf(model);
  const ms = (performance.now() - t0) / runs;
  expect(tf.memory().numTensors).toBe(before);
  const diff = maxAbsDiff(ours, expected);
  console.log(`fixture base: max |Δ| = ${diff.toExponential(2)}, one forward ${ms.toFixed(1)} ms (mean of ${runs})`);
  expect(diff).toBeLessThanOrEqual(1e-4);
  model.dispose();
});

test('the fixture input is one <image> token expanded by expandImageTokens', () => {
  const model = new LlavaModel(config, weights);
  const collapsed = inputIds.map((row) => row.filter((id, i) => id !== config.imageTokenIndex || row[i - 1] !== config.imageTokenIndex));
  expect(collapsed[0].filter((id) => id === config.imageTokenIndex)).toHaveLength(1);
  expect(model.expandImageTokens(collapsed)).toEqual(inputIds);
  expect(() => model.forward({ inputIds: collapsed, pixelValues })).toThrow(/1 image tokens in the input ids, 1 image\(s\) × 4 tokens/);
  model.dispose();
});

test('logits with the PEFT LoRA adapter (text and vision towers) match transformers', () => {
  const { settings, modules } = readFixtureAdapter();
  const loraConfig = loraConfigFromPeft(settings, modules);
  expect(loraConfig.towers.sort()).toEqual(['text', 'vision']);
  expect(loraConfig.targets.sort()).toEqual(['q_proj', 'v_proj']);
  const lora = LoraAdapter.fromPeft(modules, loraConfig);
  const model = new LlavaModel(config, weights, lora);
  const ours = logitsOf(model);
  const diff = maxAbsDiff(ours, expectedLora);
  console.log(`fixture LoRA: max |Δ| = ${diff.toExponential(2)} (LoRA moves the logits by up to ${maxAbsDiff(expectedLora, expected).toFixed(3)})`);
  expect(diff).toBeLessThanOrEqual(1e-4);

  // The round trip through toPeft gives back the adapter as read.
  const back = lora.toPeft();
  expect([...back.keys()].sort()).toEqual([...modules.keys()].sort());
  for (const [p, m] of modules) {
    expect(Array.from(back.get(p)!.a.data)).toEqual(Array.from(m.a.data));
    expect(Array.from(back.get(p)!.b.data)).toEqual(Array.from(m.b.data));
  }

  // Merged into the weights (no LoRA branch) the logits are the same.
  const merged = lora.merge(weights);
  const mergedModel = new LlavaModel(config, merged);
  expect(maxAbsDiff(logitsOf(mergedModel), ours)).toBeLessThanOrEqual(1e-5);
  for (const [name, t] of merged) if (weights.get(name) !== t) t.dispose();
  mergedModel.dispose();
  model.dispose();
  lora.dispose();
});

test('the same weights under every checkpoint key layout give identical logits', () => {
  const base = new LlavaModel(config, weights);
  const reference = logitsOf(base);
  base.dispose();
  for (const layout of ['legacy', 'current'] as const) {
    const renamed = new Map<string, tf.Tensor>();
    for (const [name, t] of weights) {
      const key = hfKey(name, layout);
      const back = canonicalName(key);
      expect(back, `${layout} key ${key}`).toBe(name);
      renamed.set(back!, t);
    }
    const model = new LlavaModel(config, renamed);
    expect(Array.from(logitsOf(model))).toEqual(Array.from(reference));
    model.dispose();
  }
});
