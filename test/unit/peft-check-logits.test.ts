// Our side of tools/peft_check.py (issue 14 item 3): a text-tower LoRA adapter as ALMOSTREC exports it
// (writePeftAdapter, current key layout, task_type null) for the tiny Hugging Face fixture model, and our
// logits with it for the fixture's fixed input. Written to test-results/peft-check/ for the Python check, which
// loads the same folder with PeftModel.from_pretrained and compares. Here: peft's own module matching rule
// (list: name or ".name" suffix; string: full regex match) applied to the model's modules selects exactly the
// adapter's modules — the "no missing, no unexpected keys" the Python check asserts with the real library.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { parseLlavaConfig, type LlavaConfig } from '../../src/core/backbone/config';
import { LlavaModel } from '../../src/core/backbone/llava-model';
import { LoraAdapter, loraConfigFromPeft, loraModuleShapes, type LoraConfig } from '../../src/core/backbone/lora';
import { readPeftAdapter, writePeftAdapter, type LoraPair } from '../../src/core/backbone/peft-adapter';
import { canonicalName, expectedTensors, hfKey } from '../../src/core/backbone/weight-names';
import { initBackend, tf } from '../../src/core/tensor/backend';
import { Rng } from '../../src/core/tensor/rng';
import { readSafetensors } from '../../src/core/tensor/safetensors';

const ROOT = resolve(__dirname, '../..');
const FIXTURE = join(ROOT, 'test/fixtures/hf-llava-tiny');
const OUT = join(ROOT, 'test-results/peft-check');
/** ALMOSTREC's default LoRA: rank 8, α 16 on q and v of the decoder's attention (text tower only). */
const LORA: LoraConfig = { r: 8, alpha: 16, dropout: 0.05, targets: ['q_proj', 'v_proj'], towers: ['text'] };

let config: LlavaConfig;
let weights: Map<string, tf.Tensor>;
let io: Map<string, { data: Float32Array | Int32Array | BigInt64Array; shape: number[] }>;

beforeAll(async () => {
  await initBackend('wasm');
  const configPath = join(FIXTURE, 'model/config.json');
  config = parseLlavaConfig(JSON.parse(readFileSync(configPath, 'utf8')), configPath);
  weights = new Map();
  for (const [key, entry] of readSafetensors(join(FIXTURE, 'model/model.safetensors')).tensors) weights.set(canonicalName(key)!, tf.tensor(entry.data as Float32Array, entry.shape));
  io = readSafetensors(join(FIXTURE, 'io.safetensors')).tensors;
});
afterAll(() => tf.dispose([...weights.values()]));

/** peft's rule for which modules a target_modules value wraps (peft.tuners.tuners_utils.check_target_module_exists). */
function peftWraps(target: string[] | string, moduleName: string): boolean {
  if (typeof target === 'string') return new RegExp(`^(?:${target})$`).test(moduleName);
  return target.some((t) => moduleName === t || moduleName.endsWith(`.${t}`));
}

function logits(lora: LoraAdapter | undefined): Float32Array {
  const rows = (k: string) => {
    const t = io.get(k)!;
    return Array.from({ length: t.shape[0] }, (_, r) => Array.from((t.data as BigInt64Array).subarray(r * t.shape[1], (r + 1) * t.shape[1]), Number));
  };
  const pv = io.get('pixel_values')!;
  const pixelValues = tf.tensor4d(pv.data as Float32Array, pv.shape as [number, number, number, number]);
  const model = new LlavaModel(config, weights, lora);
  const { hidden, logits: out } = model.forward({ inputIds: rows('input_ids'), attentionMask: rows('attention_mask'), pixelValues });
  const values = out!.dataSync() as Float32Array;
  tf.dispose([hidden, out!, pixelValues]);
  return values;
}

test('writes an ALMOSTREC-style text LoRA for the HF fixture and our logits with it (test-results/peft-check)', () => {
  const rng = new Rng(14);
  const modules = new Map<string, LoraPair>();
  // Large random A and B (a trained B starts at zero and stays small after a few steps): a PEFT that ignored the
  // adapter would then be far off, not within 1e-4.
  for (const [path, [outDim, inDim]] of loraModuleShapes(config, LORA)) {
    modules.set(path, {
      a: { data: Float32Array.from({ length: LORA.r * inDim }, () => rng.normal() * 0.2), shape: [LORA.r, inDim] },
      b: { data: Float32Array.from({ length: outDim * LORA.r }, () => rng.normal() * 0.2), shape: [outDim, LORA.r] }
    });
  }
  rmSync(OUT, { recursive: true, force: true });
  const adapterDir = join(OUT, 'adapter');
  mkdirSync(OUT, { recursive: true });
  writePeftAdapter(adapterDir, { r: LORA.r, alpha: LORA.alpha, dropout: LORA.dropout, targetModules: [...LORA.targets], baseModel: join(FIXTURE, 'model'), taskType: null }, modules);

  // peft's matching over the model's Linear modules (transformers ≥ 4.52 names) selects exactly the adapter's.
  const target = (JSON.parse(readFileSync(join(adapterDir, 'adapter_config.json'), 'utf8')) as { target_modules: string[] | string }).target_modules;
  const linear = [...expectedTensors(config).entries()].filter(([n, s]) => n.endsWith('.weight') && s.length === 2 && !n.includes('embed')).map(([n]) => n.slice(0, -'.weight'.length));
  const wrapped = linear.filter((path) => peftWraps(target, hfKey(`${path}.weight`, 'current').slice(0, -'.weight'.length))).sort();
  expect(wrapped).toEqual([...modules.keys()].sort());
  // A list (what the writer wrote before) would also wrap the vision tower's q_proj and v_proj: missing keys in peft.
  expect(linear.filter((path) => peftWraps(['q_proj', 'v_proj'], hfKey(`${path}.weight`, 'current').slice(0, -'.weight'.length)))).toHaveLength(modules.size * 2);

  const read = readPeftAdapter(adapterDir);
  const adapter = LoraAdapter.fromPeft(read.modules, loraConfigFromPeft(read.config, read.modules));
  const base = logits(undefined);
  const ours = logits(adapter);
  adapter.dispose();
  let moved = 0;
  for (let i = 0; i < ours.length; i++) moved = Math.max(moved, Math.abs(ours[i] - base[i]));
  console.log(`peft-check: ${modules.size} modules, LoRA moves our logits by up to ${moved.toFixed(4)}; wrote ${OUT}`);
  expect(moved).toBeGreaterThan(1e-2);
  writeFileSync(
    join(OUT, 'ours.json'),
    JSON.stringify({ input: 'test/fixtures/hf-llava-tiny/io.safetensors', model: 'test/fixtures/hf-llava-tiny/model', shape: [1, ours.length / 256, 256], maxAbsLoraDelta: moved, logits: Array.from(ours) }) + '\n'
  );
});
