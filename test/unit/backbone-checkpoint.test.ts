// Hugging Face llava-hf checkpoint folders: the transformers-made fixture (test/fixtures/hf-llava-tiny) opens
// and loads; the same tensors in the other key layout, in f16/bf16 and in shards load to the same values;
// mismatches, memory shortfalls and damaged files fail with errors that say what and where; saving is
// atomic and round-trips.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { initBackend, tf } from '../../src/core/tensor/backend';
import { f32ToBf16, f32ToF16, readSafetensors, writeSafetensorsStream, type StreamedTensor } from '../../src/core/tensor/safetensors';
import { parseLlavaConfig, type LlavaConfig } from '../../src/core/backbone/config';
import { canonicalName, expectedTensors, hfKey, type KeyLayout } from '../../src/core/backbone/weight-names';
import { CheckpointError, loadHfCheckpoint, openHfCheckpoint, saveHfCheckpoint } from '../../src/core/backbone/hf-checkpoint';

const FIXTURE = resolve(__dirname, '../fixtures/hf-llava-tiny/model');
const CONFIG_TEXT = readFileSync(join(FIXTURE, 'config.json'), 'utf8');

/** The fixture's tensors by internal name, decoded independently of the loader (whole-file reader). */
const REFERENCE = new Map<string, { shape: number[]; data: Float32Array }>();
for (const [key, t] of readSafetensors(join(FIXTURE, 'model.safetensors')).tensors) {
  REFERENCE.set(canonicalName(key)!, { shape: t.shape, data: t.data as Float32Array });
}

let root: string;
beforeAll(async () => {
  await initBackend('cpu');
  root = mkdtempSync(join(tmpdir(), 'hf-ckpt-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function freshDir(name: string): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

type Tensors = Map<string, { shape: number[]; data: Float32Array }>;

/** Writes `tensors` as a checkpoint folder: chosen layout and dtype, optionally split into shards by name. */
function writeCheckpoint(dir: string, tensors: Tensors, opts: { layout: KeyLayout; dtype?: StreamedTensor['dtype']; shards?: number; extraKeys?: Record<string, number[]> }): void {
  writeFileSync(join(dir, 'config.json'), CONFIG_TEXT);
  const all: StreamedTensor[] = [...tensors].map(([name, t]) => ({ name: hfKey(name, opts.layout), dtype: opts.dtype ?? 'F32', shape: t.shape, data: () => t.data }));
  for (const [key, shape] of Object.entries(opts.extraKeys ?? {})) {
    all.push({ name: key, dtype: 'F32', shape, data: () => new Float32Array(shape.reduce((a, b) => a * b, 1)) });
  }
  const n = opts.shards ?? 1;
  if (n === 1) {
    writeSafetensorsStream(join(dir, 'model.safetensors'), all, { format: 'pt' });
    return;
  }
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < n; s++) {
    const file = `model-0000${s + 1}-of-0000${n}.safetensors`;
    const part = all.filter((_, i) => i % n === s);
    writeSafetensorsStream(join(dir, file), part, { format: 'pt' });
    for (const t of part) weightMap[t.name] = file;
  }
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
}

/** Largest |a − b| relative to max(|a|, tiny) over every tensor of `weights` against the reference. */
function compare(weights: Map<string, tf.Tensor>, tolerance: (x: number) => number): void {
  expect(weights.size).toBe(REFERENCE.size);
  for (const [name, ref] of REFERENCE) {
    const t = weights.get(name)!;
    expect(t.shape, name).toEqual(ref.shape);
    const got = t.dataSync();
    for (let i = 0; i < ref.data.length; i++) {
      if (Math.abs(got[i] - ref.data[i]) > tolerance(ref.data[i])) throw new Error(`${name}[${i}]: ${got[i]} vs ${ref.data[i]}`);
    }
  }
}

function disposeAll(weights: Map<string, tf.Tensor>): void {
  for (const t of weights.values()) t.dispose();
}

describe('openHfCheckpoint / loadHfCheckpoint on the transformers fixture', () => {
  test('headers: every expected tensor with its shape, transformers 5.x keys read as the legacy layout', () => {
    const ckpt = openHfCheckpoint(FIXTURE);
    expect(ckpt.files).toEqual(['model.safetensors']);
    expect(ckpt.layout).toBe('legacy');
    expect(ckpt.unknownKeys).toEqual([]);
    const expected = expectedTensors(ckpt.config);
    expect(new Set(ckpt.entries.keys())).toEqual(new Set(expected.keys()));
    for (const [name, shape] of expected) expect(ckpt.entries.get(name)!.shape, name).toEqual(shape);
    expect(ckpt.entries.get('vision.encoder.layers.0.self_attn.q_proj.weight')!.key).toBe('vision_tower.encoder.layers.0.self_attn.q_proj.weight');
    expect(ckpt.entries.get('lm_head.weight')!.key).toBe('language_model.lm_head.weight');
  });

  test('loads every tensor as float32, or all but the vision tensors the feature layer never reads', () => {
    const all = loadHfCheckpoint(FIXTURE, { loadUnused: true });
    expect(all.layout).toBe('legacy');
    expect(all.skipped).toEqual([]);
    compare(all.weights, () => 0);
    disposeAll(all.weights);

    // vision_feature_layer −2 of 2 layers: hidden state 1 = after layer 0, so layer 1 and post_layernorm go.
    const used = loadHfCheckpoint(FIXTURE, { skip: (n) => n === 'lm_head.weight' });
    const unused = [...REFERENCE.keys()].filter((n) => n.startsWith('vision.encoder.layers.1.') || n.startsWith('vision.post_layernorm.'));
    expect(unused.length).toBe(18);
    expect(new Set(used.skipped)).toEqual(new Set([...unused, 'lm_head.weight']));
    expect(used.weights.size).toBe(REFERENCE.size - unused.length - 1);
    disposeAll(used.weights);
  });
});

describe('other layouts, dtypes and shards load to the same values', () => {
  test('the f16/bf16 encoders used to write them round to nearest even (IEEE bit patterns)', () => {
    expect([1, -2, 65504, 65519, 65520, 2 ** -14, 2 ** -24, 2 ** -25, 3 * 2 ** -25, 1 + 2 ** -11, 1 + 3 * 2 ** -11, NaN].map(f32ToF16)).toEqual([
      0x3c00, 0xc000, 0x7bff, 0x7bff, 0x7c00, 0x0400, 0x0001, 0x0000, 0x0002, 0x3c00, 0x3c02, 0x7e00
    ]);
    expect([1, -0.5, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -Infinity].map(f32ToBf16)).toEqual([0x3f80, 0xbf00, 0x3f80, 0x3f82, 0xff80]);
  });

  test('current layout, f32', () => {
    const dir = freshDir('current-f32');
    writeCheckpoint(dir, REFERENCE, { layout: 'current' });
    const ckpt = openHfCheckpoint(dir);
    expect(ckpt.layout).toBe('current');
    expect(ckpt.entries.get('text.layers.0.self_attn.q_proj.weight')!.key).toBe('model.language_model.layers.0.self_attn.q_proj.weight');
    const { weights, layout } = loadHfCheckpoint(dir, { loadUnused: true });
    expect(layout).toBe('current');
    compare(weights, () => 0);
    disposeAll(weights);
  });

  test('f16 within half-precision rounding (current layout)', () => {
    const dir = freshDir('current-f16');
    writeCheckpoint(dir, REFERENCE, { layout: 'current', dtype: 'F16' });
    expect(openHfCheckpoint(dir).entries.get('text.norm.weight')!.dtype).toBe('F16');
    const { weights } = loadHfCheckpoint(dir, { loadUnused: true });
    // 10 mantissa bits: round to nearest is within 2^-11 relative (plus the subnormal step near zero).
    compare(weights, (x) => Math.abs(x) * 2 ** -11 + 2 ** -25);
    disposeAll(weights);
  });

  test('bf16 within bfloat16 rounding (legacy layout)', () => {
    const dir = freshDir('legacy-bf16');
    writeCheckpoint(dir, REFERENCE, { layout: 'legacy', dtype: 'BF16' });
    const { weights } = loadHfCheckpoint(dir, { loadUnused: true });
    compare(weights, (x) => Math.abs(x) * 2 ** -8);
    disposeAll(weights);
  });

  test('three shards with model.safetensors.index.json', () => {
    const dir = freshDir('sharded');
    writeCheckpoint(dir, REFERENCE, { layout: 'current', shards: 3 });
    const ckpt = openHfCheckpoint(dir);
    expect(ckpt.files).toEqual(['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors']);
    expect(new Set([...ckpt.entries.values()].map((e) => e.file)).size).toBe(3);
    const { weights } = loadHfCheckpoint(dir, { loadUnused: true });
    compare(weights, () => 0);
    disposeAll(weights);
  });

  test('known harmless buffers (rotary inv_freq, CLIP position_ids) are ignored', () => {
    const dir = freshDir('buffers');
    writeCheckpoint(dir, REFERENCE, {
      layout: 'legacy',
      extraKeys: { 'language_model.model.layers.0.self_attn.rotary_emb.inv_freq': [8], 'vision_tower.vision_model.embeddings.position_ids': [1, 5] }
    });
    expect(openHfCheckpoint(dir).unknownKeys).toEqual([]);
    const { weights } = loadHfCheckpoint(dir, { loadUnused: true });
    compare(weights, () => 0);
    disposeAll(weights);
  });
});

describe('errors say what and where', () => {
  test('a missing, an unexpected and a mis-shaped tensor: one CheckpointError naming all, before any data is read', () => {
    const dir = freshDir('mismatch');
    const tensors: Tensors = new Map(REFERENCE);
    tensors.delete('text.norm.weight');
    tensors.set('projector.linear_1.bias', { shape: [65], data: new Float32Array(65) });
    writeCheckpoint(dir, tensors, { layout: 'legacy', extraKeys: { 'language_model.model.layers.7.mlp.up_proj.weight': [2, 2], 'some_head.weight': [3] } });
    let error: unknown;
    try {
      // availableBytes 0 would refuse a valid checkpoint: validation must come first.
      loadHfCheckpoint(dir, { availableBytes: 0 });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CheckpointError);
    const e = error as CheckpointError;
    expect(e.dir).toBe(dir);
    expect(e.missing).toEqual([{ name: 'text.norm.weight', key: 'language_model.model.norm.weight', shape: [64] }]);
    expect(e.unexpected).toEqual([
      { name: null, key: 'some_head.weight', file: 'model.safetensors' },
      { name: 'text.layers.7.mlp.up_proj.weight', key: 'language_model.model.layers.7.mlp.up_proj.weight', file: 'model.safetensors' }
    ]);
    expect(e.misshaped).toEqual([{ name: 'projector.linear_1.bias', key: 'multi_modal_projector.linear_1.bias', expected: [64], actual: [65] }]);
    expect(e.message).toContain('1 missing, 2 unexpected, 1 mis-shaped');
    expect(e.message).toContain('missing: text.norm.weight (language_model.model.norm.weight) [64]');
    expect(e.message).toContain('unexpected: some_head.weight in model.safetensors');
    expect(e.message).toContain('unexpected: language_model.model.layers.7.mlp.up_proj.weight (text.layers.7.mlp.up_proj.weight) in model.safetensors');
    expect(e.message).toContain('mis-shaped: projector.linear_1.bias (multi_modal_projector.linear_1.bias): expected [64], found [65]');
  });

  test('refuses a model that does not fit in memory, stating the need in GB', () => {
    expect(() => loadHfCheckpoint(FIXTURE, { availableBytes: 1000 })).toThrow(/needs 0\.6 MB of memory .* but only 0\.0 MB is available/);
    // A LLaVA-1.5-7B-shaped checkpoint as a sparse file: only its header is ever read, since the memory
    // check refuses before any data (the fp16 file would be 14 GB; sparse, it takes no disk).
    const dir = freshDir('llava-7b');
    const cfg7b = {
      model_type: 'llava',
      image_token_index: 32000,
      vision_feature_layer: -2,
      vision_config: { model_type: 'clip_vision_model', hidden_size: 1024, intermediate_size: 4096, num_hidden_layers: 24, num_attention_heads: 16, image_size: 336, patch_size: 14 },
      text_config: { model_type: 'llama', vocab_size: 32064, hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32 }
    };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg7b));
    const config: LlavaConfig = parseLlavaConfig(cfg7b, 'config.json');
    const header: Record<string, unknown> = {};
    let offset = 0;
    for (const [name, shape] of expectedTensors(config)) {
      const size = shape.reduce((a, b) => a * b, 1) * 2;
      header[hfKey(name, 'legacy')] = { dtype: 'F16', shape, data_offsets: [offset, offset + size] };
      offset += size;
    }
    const json = Buffer.from(JSON.stringify(header));
    const lead = Buffer.alloc(8);
    lead.writeBigUInt64LE(BigInt(json.length));
    const path = join(dir, 'model.safetensors');
    writeFileSync(path, Buffer.concat([lead, json]));
    truncateSync(path, 8 + json.length + offset);
    expect(() => loadHfCheckpoint(dir, { availableBytes: 16e9 })).toThrow(/needs 28\.\d GB of memory for 7\.\d\d billion float32 parameters .* only 16\.0 GB is available/);
  });

  test('missing config, corrupt header, truncated file and a broken index name the file', () => {
    const noConfig = freshDir('no-config');
    expect(() => openHfCheckpoint(noConfig)).toThrow(`${join(noConfig, 'config.json')}: missing`);

    const noWeights = freshDir('no-weights');
    writeFileSync(join(noWeights, 'config.json'), CONFIG_TEXT);
    expect(() => openHfCheckpoint(noWeights)).toThrow(`${noWeights}: no model.safetensors or model.safetensors.index.json`);

    const badConfig = freshDir('bad-config');
    writeFileSync(join(badConfig, 'config.json'), '{"model_type": "llava", ');
    expect(() => openHfCheckpoint(badConfig)).toThrow(`${join(badConfig, 'config.json')}: not valid JSON`);

    const corrupt = freshDir('corrupt');
    writeCheckpoint(corrupt, REFERENCE, { layout: 'legacy' });
    const file = join(corrupt, 'model.safetensors');
    const bytes = readFileSync(file);
    bytes.write('#', 8); // the JSON header's opening brace
    writeFileSync(file, bytes);
    expect(() => loadHfCheckpoint(corrupt)).toThrow(`${file}: corrupt JSON header`);
    bytes.writeBigUInt64LE(1n << 40n, 0);
    writeFileSync(file, bytes);
    expect(() => loadHfCheckpoint(corrupt)).toThrow(`${file}: corrupt header length`);

    const truncated = freshDir('truncated');
    writeCheckpoint(truncated, REFERENCE, { layout: 'legacy' });
    const tfile = join(truncated, 'model.safetensors');
    truncateSync(tfile, readFileSync(tfile).length - 100);
    expect(() => loadHfCheckpoint(truncated)).toThrow(new RegExp(`^${tfile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: tensor ".*" has offsets`));

    const badIndex = freshDir('bad-index');
    writeCheckpoint(badIndex, REFERENCE, { layout: 'current', shards: 2 });
    rmSync(join(badIndex, 'model-00002-of-00002.safetensors'));
    expect(() => openHfCheckpoint(badIndex)).toThrow(`${join(badIndex, 'model-00002-of-00002.safetensors')}: cannot read (ENOENT)`);
    writeFileSync(join(badIndex, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { 'lm_head.weight': '../elsewhere.safetensors' } }));
    expect(() => openHfCheckpoint(badIndex)).toThrow('is not a file name in the folder');
  });
});

describe('saveHfCheckpoint', () => {
  test('save → load round trip, legacy keys, extra files, nothing left beside it', () => {
    const { config, weights } = loadHfCheckpoint(FIXTURE, { loadUnused: true });
    const parent = freshDir('save');
    const dir = join(parent, 'out');
    saveHfCheckpoint(dir, config, weights, { extraFiles: { 'tokenizer.json': '{"x": 1}' } });
    expect(readdirSync(parent)).toEqual(['out']);
    expect(readdirSync(dir).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json']);
    const file = readSafetensors(join(dir, 'model.safetensors'));
    expect(file.metadata).toEqual({ format: 'pt' });
    expect(file.tensors.has('vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight')).toBe(true);
    expect(file.tensors.has('language_model.lm_head.weight')).toBe(true);
    const again = loadHfCheckpoint(dir, { loadUnused: true });
    expect(again.config).toEqual(config);
    compare(again.weights, () => 0);
    disposeAll(again.weights);

    // Over an existing checkpoint, sharded and in the current layout: the old files are gone.
    saveHfCheckpoint(dir, config, weights, { layout: 'current', maxShardBytes: 200_000 });
    expect(readdirSync(parent)).toEqual(['out']);
    const files = readdirSync(dir).sort();
    expect(files).toContain('model.safetensors.index.json');
    expect(files).not.toContain('model.safetensors');
    expect(files).not.toContain('tokenizer.json');
    const shards = files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f));
    expect(shards.length).toBeGreaterThan(1);
    const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8')) as { metadata: { total_size: number }; weight_map: Record<string, string> };
    expect(index.metadata.total_size).toBe([...REFERENCE.values()].reduce((n, t) => n + t.data.length * 4, 0));
    expect(Object.keys(index.weight_map).length).toBe(REFERENCE.size);
    expect(index.weight_map['lm_head.weight']).toMatch(/^model-\d{5}-of-\d{5}\.safetensors$/);
    const sharded = loadHfCheckpoint(dir, { loadUnused: true });
    expect(sharded.layout).toBe('current');
    compare(sharded.weights, () => 0);
    disposeAll(sharded.weights);

    // Invalid weights: refused before anything is written; the saved checkpoint is untouched.
    const partial = new Map(weights);
    partial.delete('text.norm.weight');
    expect(() => saveHfCheckpoint(dir, config, partial)).toThrow(CheckpointError);
    expect(() => saveHfCheckpoint(dir, config, weights, { extraFiles: { '../x': 'no' } })).toThrow('plain file name');
    expect(readdirSync(dir).sort()).toEqual(files);
    expect(existsSync(join(dir, 'model.safetensors.index.json'))).toBe(true);
    expect(readdirSync(parent)).toEqual(['out']);
    disposeAll(weights);
  });
});
