// Issue 13, item 6: files from elsewhere. Every hostile safetensors header and config.json is generated here
// in a temp folder and fed to each loader entry point the app and CLI use — registering a llava-hf folder,
// loading its weights, reading a PEFT adapter, resuming a training checkpoint, loading a trained run's
// weights. Each must be refused with the exact error naming the file (and tensor), fast, and without a
// large allocation; weights holding NaN or ±Inf are refused when they are loaded for compute.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { backboneTokenizer } from '../../src/core/backbone/backbone-tokenizer';
import { ConfigError } from '../../src/core/backbone/config';
import { MAX_JSON_BYTES } from '../../src/core/backbone/json-file';
import { CheckpointError, loadHfCheckpoint } from '../../src/core/backbone/hf-checkpoint';
import { readPeftAdapter } from '../../src/core/backbone/peft-adapter';
import { expectedParameterCount, expectedTensors, hfKey } from '../../src/core/backbone/weight-names';
import { parseLlavaConfig } from '../../src/core/backbone/config';
import { COMPACT_IMAGE_TOKEN } from '../../src/core/backbone/compact';
import { pretrainCompact } from '../../src/core/backbone/pretrain';
import { llamaTokenizer } from '../../src/core/backbone/tokenizer';
import { Catalog } from '../../src/core/catalog';
import { readItemTable } from '../../src/core/models/almostrec-context';
import { CancelledError } from '../../src/core/progress';
import type { SequenceData } from '../../src/core/data/types';
import { registerHfBackbone } from '../../src/core/jobs/backbone-jobs';
import { gru4recSpec, type Gru4recConfig } from '../../src/core/models/gru4rec';
import { parseModelConfig } from '../../src/shared/api';
import { readTrainState } from '../../src/core/train/checkpoint';
import { initBackend } from '../../src/core/tensor/backend';
import { Rng } from '../../src/core/tensor/rng';
import { DATA_DIGEST_KEY, readSafetensorsHeader, SafetensorsError } from '../../src/core/tensor/safetensors';
import { createCliCatalog, type CliCatalog } from '../integration/cli-catalog';
import { WorkbenchService } from '../../src/main/services/workbench-service';
import { exportItemEmbeddings, ITEM_EMBEDDINGS_FILE } from '../../src/core/train/item-embeddings';
import { BEST_FILE, CHECKPOINT_FILE, loadScorer, trainModel } from '../../src/core/train/train-model';
import { tinyPretrainParams } from '../setup/tiny-backbone';

const FIXTURE = resolve(__dirname, '../fixtures/hf-llava-tiny');
/** A refusal may not grow ArrayBuffer memory by more than this (the largest hostile file is 1 MiB). */
const MAX_GROWTH = 4 * 2 ** 20;
/** Refusals read a header at most: milliseconds; generous for a loaded 2-core CI machine. */
const MAX_MS = 1500;
/** Sparse files (a huge size costing no disk) need truncate to leave a hole: not so on Windows' NTFS. */
const SPARSE_FILES = process.platform !== 'win32';

let root: string;
let catalog: Catalog;
let trainedDir: string;
let pretrainDir: string;
const data = syntheticData();
const gru4recConfig = { epochs: 1, batchSize: 32, maxLen: 8, embeddingSize: 4, hiddenSize: 4, learningRate: 0.05, seed: 1 };

/** Users walk through items in order, as in the unit tests of the training loop. */
function syntheticData(numUsers = 16, numItems = 12): SequenceData {
  const rng = new Rng(3);
  const users = Array.from({ length: numUsers }, (_, u) => {
    const start = rng.int(numItems);
    const items = Int32Array.from({ length: 6 }, (_, i) => ((start + i) % numItems) + 1);
    return { userId: u + 1, items, timestamps: Float64Array.from(items, (_, i) => i) };
  });
  return { datasetId: 1, numItems, itemIds: Int32Array.from({ length: numItems + 1 }, (_, i) => 100 + i), users };
}

/** A compact backbone small enough to pretrain a few steps in a second (as in the unit tests). */
const pretrainParams = tinyPretrainParams({ maxTokens: 24, batchSize: 2, stage0Steps: 2, stage1Steps: 1, stage2Steps: 1, checkpointEvery: 1, heldOutPercent: 0 });
const PRETRAIN_STATE = 'pretrain.state.safetensors';

function pretrain(dir: string, hooks: Parameters<typeof pretrainCompact>[1]) {
  const captions = [1, 2, 3, 4].map((itemId) => ({ itemId, caption: `Film ${itemId} (1995). Genres: Drama. A story.`, hasImage: itemId % 2 === 1 }));
  const grids = new Map([1, 3].map((id) => [id, new Float32Array(4 * 1280).fill(0.5)]));
  const tokenizer = llamaTokenizer({ imageTokenId: COMPACT_IMAGE_TOKEN });
  return pretrainCompact({ params: pretrainParams, captions, grids, gridEncoderId: 'test-grid', tokenizer, outDir: join(dir, 'out'), statePath: join(dir, PRETRAIN_STATE) }, hooks);
}

let counter = 0;
const fresh = (name: string): string => join(root, `${name}-${++counter}`);

/** A safetensors file from a raw header text (so duplicate keys survive) and a data section. */
function safetensors(header: string | Buffer, data: Uint8Array = new Uint8Array(0), headerLen?: bigint): Buffer {
  const json = typeof header === 'string' ? Buffer.from(header, 'utf8') : header;
  const lead = Buffer.alloc(8);
  lead.writeBigUInt64LE(headerLen ?? BigInt(json.length), 0);
  return Buffer.concat([lead, json, data]);
}

/**
 * Runs `load`, checking it was fast and allocated nothing large: process.memoryUsage().arrayBuffers counts
 * every Buffer and typed array, read before any GC could run. Returns what it returned or threw.
 */
async function bounded(load: () => unknown, maxGrowth: number): Promise<{ value: unknown; error: unknown }> {
  const before = process.memoryUsage().arrayBuffers;
  const start = performance.now();
  let value: unknown = undefined;
  let error: unknown = null;
  try {
    value = await load();
  } catch (e) {
    error = e;
  }
  const ms = performance.now() - start;
  const growth = process.memoryUsage().arrayBuffers - before;
  expect(ms, 'took too long').toBeLessThan(MAX_MS);
  expect(growth, 'allocated too much').toBeLessThan(maxGrowth);
  return { value, error };
}

/** What `load` threw, checking it was refused fast and without a large allocation (see bounded). */
async function refusal(load: () => unknown, maxGrowth = MAX_GROWTH): Promise<Error> {
  const { error } = await bounded(load, maxGrowth);
  expect(error, 'the file was accepted').toBeInstanceOf(Error);
  return error as Error;
}

const f32 = (values: number[]): Uint8Array => new Uint8Array(Float32Array.from(values).buffer);
const entry = (dtype: unknown, shape: unknown, offsets: unknown): string => JSON.stringify({ dtype, shape, data_offsets: offsets });

interface HostileHeader {
  name: string;
  file: () => Buffer;
  /** The message after "<file>: ". */
  message: string;
}

/** One MiB that 64 tensors all claim: decoded naively, 64 MiB of float32 from a 1 MiB file. */
const ALIASED = (() => {
  const parts = Array.from({ length: 64 }, (_, i) => `"t${i}":${entry('F32', [262144], [0, 1048576])}`);
  return safetensors(`{${parts.join(',')}}`, new Uint8Array(1048576));
})();

const HOSTILE_HEADERS: HostileHeader[] = [
  { name: 'header length 2^63', file: () => safetensors('{}', new Uint8Array(8), 2n ** 63n), message: `corrupt header length ${2 ** 63} (file has 18 bytes)` },
  { name: 'header length one past the file', file: () => safetensors('{}', new Uint8Array(0), 3n), message: 'corrupt header length 3 (file has 10 bytes)' },
  { name: 'file shorter than its length field', file: () => Buffer.from([1, 2, 3]), message: 'not a safetensors file (shorter than 8 bytes)' },
  { name: 'header not JSON', file: () => safetensors('{"w": {'), message: `corrupt JSON header (${jsonError('{"w": {')})` },
  { name: 'header not valid UTF-8', file: () => safetensors(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])), message: 'corrupt JSON header (not valid UTF-8)' },
  { name: 'header an array', file: () => safetensors('[1, 2]'), message: 'corrupt JSON header (not an object)' },
  { name: 'header null', file: () => safetensors('null'), message: 'corrupt JSON header (not an object)' },
  { name: 'tensor described by a number', file: () => safetensors('{"w": 5}'), message: 'tensor "w" is not described by an object' },
  { name: 'unknown dtype', file: () => safetensors(`{"w":${entry('F64', [1], [0, 8])}}`, new Uint8Array(8)), message: 'tensor "w" has unsupported dtype F64' },
  { name: 'dtype naming an Object property', file: () => safetensors(`{"w":${entry('constructor', [1], [0, 4])}}`, new Uint8Array(4)), message: 'tensor "w" has unsupported dtype constructor' },
  { name: 'dtype not a string', file: () => safetensors(`{"w":${entry(4, [1], [0, 4])}}`, new Uint8Array(4)), message: 'tensor "w" has unsupported dtype 4' },
  { name: 'negative dimension', file: () => safetensors(`{"w":${entry('F32', [-1], [0, 4])}}`, new Uint8Array(4)), message: 'tensor "w" has an invalid shape [-1] (dimensions must be non-negative integers)' },
  { name: 'fractional dimension', file: () => safetensors(`{"w":${entry('F32', [1.5], [0, 4])}}`, new Uint8Array(4)), message: 'tensor "w" has an invalid shape [1.5] (dimensions must be non-negative integers)' },
  { name: 'dimension a string', file: () => safetensors(`{"w":${entry('F32', ['4'], [0, 4])}}`, new Uint8Array(4)), message: 'tensor "w" has an invalid shape ["4"] (dimensions must be non-negative integers)' },
  { name: 'dimension beyond 2^53', file: () => safetensors(`{"w":${entry('F32', [2 ** 60], [0, 4])}}`, new Uint8Array(4)), message: `tensor "w" has an invalid shape [${2 ** 60}] (dimensions must be non-negative integers)` },
  {
    name: 'shape whose product overflows',
    file: () => safetensors(`{"w":${entry('F32', [2 ** 31, 2 ** 31, 2 ** 31], [0, 16])}}`, new Uint8Array(16)),
    message: `tensor "w" has offsets [0, 16] (16 bytes) but shape [${[2 ** 31, 2 ** 31, 2 ** 31]}] F32 needs more`
  },
  { name: 'offsets smaller than dtype × shape', file: () => safetensors(`{"w":${entry('F32', [4], [0, 8])}}`, new Uint8Array(16)), message: 'tensor "w" has offsets [0, 8] (8 bytes) but shape [4] F32 needs more' },
  { name: 'offsets larger than dtype × shape', file: () => safetensors(`{"w":${entry('F32', [2], [0, 16])}}`, new Uint8Array(16)), message: 'tensor "w" has offsets [0, 16] (16 bytes) but shape [2] F32 needs 8' },
  {
    name: 'offsets past the end of the file (a terabyte tensor)',
    file: () => safetensors(`{"w":${entry('F32', [2 ** 20, 2 ** 20], [0, 4 * 2 ** 40])}}`, new Uint8Array(16)),
    message: `tensor "w" has offsets [0, ${4 * 2 ** 40}] outside the data section (16 bytes; truncated?)`
  },
  { name: 'truncated data section', file: () => safetensors(`{"w":${entry('F32', [4], [0, 16])}}`, new Uint8Array(12)), message: 'tensor "w" has offsets [0, 16] outside the data section (12 bytes; truncated?)' },
  { name: 'reversed offsets', file: () => safetensors(`{"w":${entry('F32', [0], [16, 0])}}`, new Uint8Array(16)), message: 'tensor "w" has offsets [16, 0] outside the data section (16 bytes; truncated?)' },
  { name: 'negative offset', file: () => safetensors(`{"w":${entry('F32', [1], [-4, 0])}}`, new Uint8Array(16)), message: 'tensor "w" has invalid data_offsets [-4,0] (expected [begin, end])' },
  { name: 'offsets not a pair', file: () => safetensors(`{"w":${entry('F32', [1], [0, 4, 8])}}`, new Uint8Array(16)), message: 'tensor "w" has invalid data_offsets [0,4,8] (expected [begin, end])' },
  { name: 'offsets a string', file: () => safetensors(`{"w":${entry('F32', [1], '0-4')}}`, new Uint8Array(16)), message: 'tensor "w" has invalid data_offsets "0-4" (expected [begin, end])' },
  { name: 'offsets missing', file: () => safetensors('{"w":{"dtype":"F32","shape":[1]}}', new Uint8Array(4)), message: 'tensor "w" has invalid data_offsets undefined (expected [begin, end])' },
  {
    name: 'overlapping tensors',
    file: () => safetensors(`{"a":${entry('F32', [4], [0, 16])},"b":${entry('F32', [4], [8, 24])}}`, new Uint8Array(24)),
    message: 'tensors "a" and "b" overlap (bytes 8–16)'
  },
  { name: '64 tensors aliasing one MiB', file: () => ALIASED, message: 'tensors "t0" and "t1" overlap (bytes 0–1048576)' },
  {
    name: 'duplicate tensor names',
    file: () => safetensors(`{"w":${entry('F32', [1], [0, 4])}, "w" :${entry('F32', [1], [4, 8])}}`, f32([1, 2])),
    message: 'tensor "w" appears twice in the header'
  },
  {
    name: 'duplicate names written with escapes',
    file: () => safetensors(`{"w":${entry('F32', [1], [0, 4])},"\\u0077":${entry('F32', [1], [4, 8])}}`, f32([1, 2])),
    message: 'tensor "w" appears twice in the header'
  },
  { name: 'metadata value a number', file: () => safetensors('{"__metadata__":{"format":"pt","epochs":3}}'), message: '"__metadata__" must map strings to strings' },
  { name: 'metadata an array', file: () => safetensors('{"__metadata__":["pt"]}'), message: '"__metadata__" must map strings to strings' }
];

function jsonError(text: string): string {
  try {
    JSON.parse(text);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('valid JSON');
}

/** Each loader entry point: where the hostile weights file goes in a copy of a valid folder, and the call. */
interface EntryPoint {
  name: string;
  /** Copies a valid folder and returns it with the weights file to replace. */
  prepare: () => { dir: string; file: string };
  load: (dir: string) => unknown;
}

const ENTRY_POINTS: EntryPoint[] = [
  {
    name: 'registering a llava-hf folder',
    prepare: () => copyOf(join(FIXTURE, 'model'), 'model.safetensors'),
    load: (dir) => registerHfBackbone(catalog, dir, 'hostile')
  },
  { name: 'loading a llava-hf backbone', prepare: () => copyOf(join(FIXTURE, 'model'), 'model.safetensors'), load: (dir) => loadHfCheckpoint(dir) },
  { name: 'reading a PEFT adapter', prepare: () => copyOf(join(FIXTURE, 'lora'), 'adapter_model.safetensors'), load: (dir) => readPeftAdapter(dir) },
  {
    // The loader trainModel's resume calls; what the loop then does with a refused checkpoint (fail, or skip
    // to an older one) is the training loop's business, not the file reader's.
    name: 'resuming a training checkpoint',
    prepare: () => copyOf(trainedDir, CHECKPOINT_FILE),
    load: (dir) => readTrainState(join(dir, CHECKPOINT_FILE), () => gru4recSpec.paramShapes(parseModelConfig('gru4rec', gru4recConfig) as unknown as Gru4recConfig, { data }))
  },
  { name: "loading a trained run's weights", prepare: () => copyOf(trainedDir, BEST_FILE), load: (dir) => loadScorer(gru4recSpec, { data }, join(dir, BEST_FILE)) },
  { name: "reading a run's item-embeddings artifact (ALMOSTREC's M)", prepare: () => copyOf(trainedDir, ITEM_EMBEDDINGS_FILE), load: (dir) => readItemTable(join(dir, ITEM_EMBEDDINGS_FILE), data) },
  { name: 'resuming backbone pretraining', prepare: () => copyOf(pretrainDir, PRETRAIN_STATE), load: (dir) => pretrain(dir, { resume: true }) }
];

function copyOf(source: string, file: string): { dir: string; file: string } {
  const dir = fresh('copy');
  cpSync(source, dir, { recursive: true });
  return { dir, file: join(dir, file) };
}

/** Sets value `index` of tensor `key` in a safetensors file to `value` (F32/F16/BF16 encodings of NaN/Inf). */
function poison(path: string, key: string, value: number, index = 0): void {
  const header = readSafetensorsHeader(path);
  const info = header.tensors.get(key);
  if (!info) throw new Error(`${path} has no tensor ${key}`);
  const bytes = readFileSync(path);
  const at = header.dataStart + info.begin;
  if (info.dtype === 'F32') bytes.writeFloatLE(value, at + index * 4);
  else {
    const half = Number.isNaN(value) ? (info.dtype === 'F16' ? 0x7e00 : 0x7fc0) : info.dtype === 'F16' ? 0x7c00 : 0x7f80;
    bytes.writeUInt16LE(value < 0 ? half | 0x8000 : half, at + index * 2);
  }
  // Files that record a digest of their data get the poisoned data's digest: anyone can recompute it, so
  // the NaN check must hold on its own.
  const digest = header.metadata[DATA_DIGEST_KEY];
  if (digest !== undefined) {
    const at = bytes.indexOf(digest, 8);
    bytes.write(createHash('sha256').update(bytes.subarray(header.dataStart)).digest('hex'), at, 'latin1');
  }
  writeFileSync(path, bytes);
}

beforeAll(async () => {
  await initBackend('wasm');
  root = mkdtempSync(join(tmpdir(), 'hostile-files-'));
  catalog = Catalog.open(join(root, 'catalog.sqlite'));
  trainedDir = join(root, 'trained');
  await trainModel(gru4recSpec, { data }, gru4recConfig, { checkpointDir: trainedDir });
  exportItemEmbeddings(gru4recSpec, join(trainedDir, BEST_FILE), { data });
  // A pretraining cancelled after its second step leaves a valid state file to resume from.
  pretrainDir = join(root, 'pretrain');
  const signal = { aborted: false };
  await expect(pretrain(pretrainDir, { signal, onStep: (p) => (signal.aborted = p.step >= 2) })).rejects.toBeInstanceOf(CancelledError);
});

afterAll(() => {
  catalog?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe.each(ENTRY_POINTS)('$name', (point) => {
  test.each(HOSTILE_HEADERS)('refuses a safetensors file with $name', async ({ file, message }) => {
    const { dir, file: path } = point.prepare();
    writeFileSync(path, file());
    const backbonesBefore = catalog.listBackbones().length;
    const error = await refusal(() => point.load(dir));
    expect(error).toBeInstanceOf(SafetensorsError);
    expect(error.message).toBe(`${path}: ${message}`);
    expect(catalog.listBackbones()).toHaveLength(backbonesBefore);
  });
});

describe('weights holding NaN or ±Inf are refused when loaded for compute', () => {
  // Registration reads headers only (a 7B folder registers in milliseconds); the values are scanned once
  // per load, tensor by tensor as they are read, which costs far less than reading the bytes.
  const cases: { point: EntryPoint; key: (path: string) => string; value: number; index: number }[] = [
    { point: ENTRY_POINTS[1], key: (p) => firstKey(p, 'embed_tokens'), value: NaN, index: 5 },
    { point: ENTRY_POINTS[1], key: (p) => firstKey(p, 'multi_modal_projector.linear_1.weight'), value: Infinity, index: 0 },
    { point: ENTRY_POINTS[2], key: (p) => firstKey(p, 'lora_B'), value: -Infinity, index: 3 },
    { point: ENTRY_POINTS[3], key: () => 'adam_v.item_emb', value: NaN, index: 1 },
    { point: ENTRY_POINTS[4], key: () => 'item_emb', value: Infinity, index: 2 },
    { point: ENTRY_POINTS[5], key: () => 'item_embeddings', value: NaN, index: 7 },
    { point: ENTRY_POINTS[6], key: (p) => firstKey(p, 'w.text.embed_tokens'), value: -Infinity, index: 0 }
  ];
  test.each(cases)('$point.name: $value', async ({ point, key, value, index }) => {
    const { dir, file } = point.prepare();
    const name = key(file);
    poison(file, name, value, index);
    // Values must be read to be scanned: at most the file and its float32 decoding, nothing beyond.
    const error = await refusal(() => point.load(dir), 2 * statSync(file).size + MAX_GROWTH);
    expect(error).toBeInstanceOf(SafetensorsError);
    expect(error.message).toBe(`${file}: tensor "${name}" holds ${value} at index ${index}; weights must be finite`);
  });

  test('registering does not read the values, so a poisoned folder registers and is refused at load', async () => {
    const { dir, file } = ENTRY_POINTS[0].prepare();
    const name = firstKey(file, 'embed_tokens');
    poison(file, name, NaN);
    const id = registerHfBackbone(catalog, dir, 'poisoned');
    expect(catalog.listBackbones().some((b) => b.id === id)).toBe(true);
    const error = await refusal(() => loadHfCheckpoint(dir), 2 * statSync(file).size + MAX_GROWTH);
    expect(error.message).toBe(`${file}: tensor "${name}" holds NaN at index 0; weights must be finite`);
  });
});

function firstKey(path: string, part: string): string {
  const key = [...readSafetensorsHeader(path).tensors.keys()].sort().find((k) => k.includes(part));
  if (!key) throw new Error(`${path}: no tensor with ${part}`);
  return key;
}

describe('a hostile config.json is refused before anything is allocated', () => {
  const base = JSON.parse(readFileSync(join(FIXTURE, 'model', 'config.json'), 'utf8')) as Record<string, Record<string, unknown>>;
  type Edit = (c: Record<string, Record<string, unknown>>) => void;
  const cases: { name: string; edit: Edit | string; message: string }[] = [
    { name: 'not JSON', edit: '{"model_type": "llava",', message: `not valid JSON (${jsonError('{"model_type": "llava",')})` },
    { name: 'an array', edit: '[]', message: '"<root>" must be an object' },
    { name: 'hidden size of a trillion', edit: (c) => (c.text_config.hidden_size = 1e12), message: '"text_config.hidden_size" is 1000000000000, above the supported maximum 65536' },
    { name: 'a billion layers', edit: (c) => (c.text_config.num_hidden_layers = 1e9), message: '"text_config.num_hidden_layers" is 1000000000, above the supported maximum 1024' },
    { name: 'a vision tower of a billion layers', edit: (c) => (c.vision_config.num_hidden_layers = 1e9), message: '"vision_config.num_hidden_layers" is 1000000000, above the supported maximum 1024' },
    { name: 'an absurd vocabulary', edit: (c) => (c.text_config.vocab_size = 2 ** 40), message: `"text_config.vocab_size" is ${2 ** 40}, above the supported maximum 4194304` },
    { name: 'a negative vocabulary', edit: (c) => (c.text_config.vocab_size = -5), message: '"text_config.vocab_size" must be a positive integer, got -5' },
    { name: 'a fractional hidden size', edit: (c) => (c.text_config.hidden_size = 64.5), message: '"text_config.hidden_size" must be a positive integer, got 64.5' },
    { name: 'a string where a number goes', edit: (c) => (c.text_config.hidden_size = '64'), message: '"text_config.hidden_size" must be a number, got "64"' },
    { name: 'an infinite size (1e999)', edit: '__INFINITE__', message: '"text_config.intermediate_size" must be a number, got Infinity' },
    {
      name: 'heads that do not divide the hidden size',
      edit: (c) => {
        c.text_config.num_attention_heads = 3;
        c.text_config.num_key_value_heads = 3;
        delete c.text_config.head_dim;
      },
      message: '"text_config.hidden_size" 64 is not divisible by num_attention_heads 3 (and no head_dim is given)'
    },
    { name: 'KV heads that do not divide the heads', edit: (c) => (c.text_config.num_key_value_heads = 3), message: '"text_config.num_attention_heads" 4 is not a multiple of num_key_value_heads 3' },
    { name: 'vision heads that do not divide', edit: (c) => (c.vision_config.num_attention_heads = 3), message: '"vision_config.hidden_size" 32 is not divisible by num_attention_heads 3' },
    { name: 'a patch larger than the image', edit: (c) => (c.vision_config.patch_size = 56), message: '"vision_config.patch_size" 56 is larger than image_size 28' },
    { name: 'a negative norm epsilon', edit: (c) => (c.text_config.rms_norm_eps = -1), message: '"text_config.rms_norm_eps" must be positive, got -1' },
    { name: 'a negative image token', edit: (c) => ((c as Record<string, unknown>).image_token_index = -1), message: '"image_token_index" must be a non-negative integer, got -1' },
    {
      name: 'a 140-terabyte model within every per-field bound',
      edit: (c) => Object.assign(c.text_config, { hidden_size: 65536, intermediate_size: 262144, num_hidden_layers: 1024, num_attention_heads: 512, num_key_value_heads: 512, head_dim: 128, vocab_size: 4194304 }),
      message: 'describes 70922.93 billion parameters (at least 141845.9 GB in 16-bit), but the weight files hold only 0.6 MB'
    },
    {
      name: '20 decoder layers where the weights hold 2',
      edit: (c) => (c.text_config.num_hidden_layers = 20),
      message: 'describes 0.82 million parameters (at least 1.6 MB in 16-bit), but the weight files hold only 0.6 MB'
    }
  ];

  test.each(cases)('$name', async ({ edit, message }) => {
    const { dir } = ENTRY_POINTS[0].prepare();
    const configPath = join(dir, 'config.json');
    if (typeof edit === 'function') {
      const config = structuredClone(base);
      edit(config);
      writeFileSync(configPath, JSON.stringify(config));
    } else if (edit === '__INFINITE__') {
      // 1e999 parses to Infinity and JSON.stringify writes it back as null: written by hand.
      writeFileSync(configPath, JSON.stringify(base).replace('"intermediate_size":128', '"intermediate_size":1e999'));
    } else writeFileSync(configPath, edit);
    for (const point of ENTRY_POINTS.slice(0, 2)) {
      const backbonesBefore = catalog.listBackbones().length;
      const error = await refusal(() => point.load(dir));
      // Unparsable JSON is a plain Error naming the file; everything parsed is a ConfigError.
      if (!message.startsWith('not valid JSON')) expect(error).toBeInstanceOf(ConfigError);
      expect(error.message).toBe(`${configPath}: ${message}`);
      expect(catalog.listBackbones()).toHaveLength(backbonesBefore);
    }
  });

  test('the implied parameter count is exactly what the loader would hold (closed form = tensor list)', () => {
    const variants: Record<string, unknown>[] = [
      base,
      { ...base, multimodal_projector_bias: false, tie_word_embeddings: true, text_config: { ...base.text_config, tie_word_embeddings: true, num_key_value_heads: 1 } },
      { ...base, vision_config: { model_type: 'almostrec_mobilenet_v2', hidden_size: 1280, grid_size: 2, encoder_id: 'x' } }
    ];
    for (const json of variants) {
      const cfg = parseLlavaConfig(json, 'config.json');
      let n = 0;
      for (const shape of expectedTensors(cfg).values()) n += shape.reduce((a, b) => a * b, 1);
      expect(expectedParameterCount(cfg)).toBe(n);
    }
  });
});

/**
 * Rewrites `key` as a tensor of `shape` whose data really is in the file, as a hole (a sparse file: 1.6 GB
 * on paper, nothing on disk). A loader that read before checking would allocate the whole of it.
 */
function inflate(path: string, key: string, shape: number[]): void {
  const header = readSafetensorsHeader(path);
  const bytes = readFileSync(path);
  const json: Record<string, unknown> = Object.keys(header.metadata).length ? { __metadata__: header.metadata } : {};
  const parts: Buffer[] = [];
  let offset = 0;
  for (const [k, info] of header.tensors) {
    if (k === key) continue;
    const part = bytes.subarray(header.dataStart + info.begin, header.dataStart + info.end);
    json[k] = { dtype: info.dtype, shape: info.shape, data_offsets: [offset, offset + part.length] };
    parts.push(part);
    offset += part.length;
  }
  const dtype = header.tensors.get(key)!.dtype;
  const size = shape.reduce((a, b) => a * b, 1) * (dtype === 'F32' ? 4 : 2);
  json[key] = { dtype, shape, data_offsets: [offset, offset + size] };
  const head = safetensors(JSON.stringify(json), Buffer.concat(parts));
  writeFileSync(path, head);
  truncateSync(path, head.length + size);
}

describe.skipIf(!SPARSE_FILES)('a huge tensor of the wrong shape is refused from the header, its data never read', () => {
  const HUGE = [100_000_000, 4];
  const cases: { point: EntryPoint; key: (path: string) => string; expected: (path: string, key: string, original: number[]) => string }[] = [
    {
      point: ENTRY_POINTS[0],
      key: (p) => firstKey(p, 'embed_tokens'),
      expected: (p, key, original) =>
        `${join(p, '..')}: the tensors do not match config.json (0 missing, 0 unexpected, 1 mis-shaped):\n  mis-shaped: text.embed_tokens.weight (${key}): expected [${original}], found [${HUGE}]`
    },
    {
      point: ENTRY_POINTS[1],
      key: (p) => firstKey(p, 'embed_tokens'),
      expected: (p, key, original) =>
        `${join(p, '..')}: the tensors do not match config.json (0 missing, 0 unexpected, 1 mis-shaped):\n  mis-shaped: text.embed_tokens.weight (${key}): expected [${original}], found [${HUGE}]`
    },
    {
      point: ENTRY_POINTS[2],
      key: (p) => firstKey(p, 'layers.0.self_attn.q_proj.lora_A'),
      expected: (p) => `${p}: text.layers.0.self_attn.q_proj: A [${HUGE}] and B [64,4] do not have rank r = 4`
    },
    { point: ENTRY_POINTS[3], key: () => 'param.item_emb', expected: (p, key, original) => `${p}: tensor "${key}" has shape [${HUGE}] F32, expected [${original}] F32` },
    { point: ENTRY_POINTS[4], key: () => 'item_emb', expected: (p, key, original) => `${p}: tensor "${key}" has shape [${HUGE}] F32, expected [${original}] F32` },
    {
      point: ENTRY_POINTS[5],
      key: () => 'item_embeddings',
      expected: (p) => `${p}: its rows are not this dataset's items (${HUGE[0] - 1} vs ${data.numItems}); the dataset changed since the run`
    },
    { point: ENTRY_POINTS[6], key: () => 'w.text.embed_tokens.weight', expected: (p, key) => `${p}: unexpected tensor ${key} [${HUGE}] F32` }
  ];
  test.each(cases)('$point.name', async ({ point, key, expected }) => {
    const { dir, file } = point.prepare();
    const name = key(file);
    const original = readSafetensorsHeader(file).tensors.get(name)!.shape;
    inflate(file, name, HUGE);
    expect(statSync(file).size).toBeGreaterThan(1.6e9);
    const error = await refusal(() => point.load(dir));
    if (point === ENTRY_POINTS[0] || point === ENTRY_POINTS[1]) expect(error).toBeInstanceOf(CheckpointError);
    expect(error.message).toBe(expected(file, name, original));
  });
});

describe('a JSON file larger than any real one is refused unread', () => {
  const tooBig = MAX_JSON_BYTES + 1;
  const cases: { name: string; point: EntryPoint; file: string; load?: (dir: string) => unknown }[] = [
    { name: 'config.json when registering', point: ENTRY_POINTS[0], file: 'config.json' },
    { name: 'config.json when loading', point: ENTRY_POINTS[1], file: 'config.json' },
    { name: 'adapter_config.json', point: ENTRY_POINTS[2], file: 'adapter_config.json' },
    { name: 'tokenizer.json', point: ENTRY_POINTS[1], file: 'tokenizer.json', load: (dir) => backboneTokenizer(dir) }
  ];
  test.each(cases)('$name', async ({ point, file, load }) => {
    const { dir } = point.prepare();
    const path = join(dir, file);
    writeFileSync(path, '{');
    truncateSync(path, tooBig);
    const error = await refusal(() => (load ?? point.load)(dir));
    expect(error.message).toBe(`${path}: ${tooBig} bytes, more than the ${MAX_JSON_BYTES} a file of this kind may have`);
  });
});

describe.skipIf(!SPARSE_FILES)('a 405B-parameter folder (sparse: 810 GB on paper) registers from its headers and is refused at load for memory', () => {
  test('loadHfCheckpoint refuses before reading a tensor', async () => {
    const { dir, file } = ENTRY_POINTS[0].prepare();
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, Record<string, unknown>>;
    // Llama 3.1 405B's decoder behind the fixture's tiny CLIP tower.
    Object.assign(config.text_config, { hidden_size: 16384, intermediate_size: 53248, num_hidden_layers: 126, num_attention_heads: 128, num_key_value_heads: 8, head_dim: 128, vocab_size: 128256 });
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    const cfg = parseLlavaConfig(config, 'config.json');
    const header: Record<string, unknown> = {};
    let offset = 0;
    for (const [name, shape] of expectedTensors(cfg)) {
      const size = shape.reduce((a, b) => a * b, 1) * 2;
      header[hfKey(name, 'legacy')] = { dtype: 'BF16', shape, data_offsets: [offset, offset + size] };
      offset += size;
    }
    const head = safetensors(JSON.stringify(header));
    writeFileSync(file, head);
    truncateSync(file, head.length + offset);
    expect(statSync(file).size).toBeGreaterThan(800e9);

    const { value: id, error: registerError } = await bounded(() => registerHfBackbone(catalog, dir, `huge-${counter}`), MAX_GROWTH);
    expect(registerError).toBeNull();
    expect(catalog.getBackbone(id as number)?.parameters).toBe(expectedParameterCount(cfg));
    const error = await refusal(() => loadHfCheckpoint(dir));
    expect(error.message).toMatch(
      new RegExp(`^${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: loading needs [\\d.]+ GB of memory for 40[\\d.]+ billion float32 parameters \\(4 bytes each: a 7B model needs ~28 GB\\), but only [\\d.]+ [GM]B is available; free memory or use a smaller backbone$`)
    );
  });
});

describe("through the app's API and the CLI", () => {
  let service: WorkbenchService;
  let cli: CliCatalog;
  const hostile: { name: string; make: (dir: string) => string; message: (dir: string) => string }[] = [
    {
      name: 'duplicate tensor names',
      make: (dir) => {
        writeFileSync(join(dir, 'model.safetensors'), safetensors(`{"w":${entry('F32', [1], [0, 4])},"w":${entry('F32', [1], [4, 8])}}`, f32([1, 2])));
        return dir;
      },
      message: (dir) => `${join(dir, 'model.safetensors')}: tensor "w" appears twice in the header`
    },
    {
      name: 'a 140-terabyte config.json',
      make: (dir) => {
        const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, Record<string, unknown>>;
        Object.assign(config.text_config, { hidden_size: 65536, intermediate_size: 262144, num_hidden_layers: 1024, num_attention_heads: 512, num_key_value_heads: 512, head_dim: 128, vocab_size: 4194304 });
        writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
        return dir;
      },
      message: (dir) => `${join(dir, 'config.json')}: describes 70922.93 billion parameters (at least 141845.9 GB in 16-bit), but the weight files hold only 0.6 MB`
    }
  ];

  beforeAll(() => {
    const dataDir = fresh('service');
    service = new WorkbenchService({
      dataDir,
      dbPath: join(dataDir, 'catalog.sqlite'),
      workerPath: resolve(__dirname, '../fixtures/workers/fake-backbone-worker.mjs'),
      transport: 'http',
      version: '1',
      autoImport: false
    });
    cli = createCliCatalog('hostile-files-cli-', 60_000);
  });
  afterAll(async () => {
    await service?.close();
    cli?.remove();
  });

  test.each(hostile)('backbones.register refuses $name as invalid input, registering nothing', async ({ make, message }) => {
    const dir = make(copyOf(join(FIXTURE, 'model'), 'model.safetensors').dir);
    const res = await service.handle('backbones.register', { path: dir, name: 'hostile' });
    expect(res).toEqual({ ok: false, error: { code: 'invalid_input', message: message(dir) } });
    const list = await service.handle('backbones.list', {});
    expect(list).toMatchObject({ ok: true, result: [] });
  });

  test.each(hostile)('almostrec backbone register refuses $name, registering nothing', ({ make, message }) => {
    const dir = make(copyOf(join(FIXTURE, 'model'), 'model.safetensors').dir);
    const r = cli.cli('backbone', 'register', dir, '--name', 'hostile');
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(`almostrec: ${message(dir)}`);
    expect(cli.cli('backbone', 'list', '--json').lines).toEqual([]);
  });
});

describe('a checkpoint whose data no longer matches its recorded digest is refused', () => {
  /** Re-writes the file with `data_sha256` in its metadata: of its data as it is, or of other bytes. */
  function withDigest(path: string, digestOf: (data: Buffer) => Buffer): void {
    const header = readSafetensorsHeader(path);
    const bytes = readFileSync(path);
    const data = bytes.subarray(header.dataStart);
    const json = JSON.parse(bytes.subarray(8, header.dataStart).toString('utf8')) as Record<string, Record<string, string>>;
    json.__metadata__ = { ...json.__metadata__, [DATA_DIGEST_KEY]: createHash('sha256').update(digestOf(data)).digest('hex') };
    writeFileSync(path, safetensors(JSON.stringify(json), data));
  }
  const flipped = (data: Buffer): Buffer => {
    const copy = Buffer.from(data);
    copy[copy.length - 1] ^= 1;
    return copy;
  };
  test.each([ENTRY_POINTS[3], ENTRY_POINTS[4], ENTRY_POINTS[5], ENTRY_POINTS[6]])('$name', async (point) => {
    const good = point.prepare();
    withDigest(good.file, (d) => d);
    // The same file with its true digest loads (pretraining resumes and runs to its end): the check is not vacuous.
    await point.load(good.dir);
    const { dir, file } = point.prepare();
    withDigest(file, flipped);
    const refused = await refusal(() => point.load(dir), 2 * statSync(file).size + MAX_GROWTH);
    expect(refused).toBeInstanceOf(SafetensorsError);
    expect(refused.message).toBe(`${file}: data does not match its ${DATA_DIGEST_KEY} (torn or corrupt file)`);
  });
});

describe.skipIf(process.platform === 'win32')('a named pipe posing as a file is refused, not waited on', () => {
  const cases: { name: string; point: EntryPoint; file: (dir: string, weights: string) => string; safetensors: boolean }[] = [
    { name: 'model.safetensors', point: ENTRY_POINTS[0], file: (_, w) => w, safetensors: true },
    { name: 'config.json', point: ENTRY_POINTS[0], file: (dir) => join(dir, 'config.json'), safetensors: false },
    { name: 'adapter_model.safetensors', point: ENTRY_POINTS[2], file: (_, w) => w, safetensors: true },
    { name: 'checkpoint.safetensors', point: ENTRY_POINTS[3], file: (_, w) => w, safetensors: true }
  ];
  test.each(cases)('$name', async ({ point, file, safetensors: isWeights }) => {
    const prepared = point.prepare();
    const path = file(prepared.dir, prepared.file);
    rmSync(path);
    execFileSync('mkfifo', [path]);
    // Should the loader open the pipe and block, this writer frees it after 3 s and the time check fails.
    const writer = spawn('sh', ['-c', `sleep 3; : > '${path}'`], { stdio: 'ignore' });
    try {
      const error = await refusal(() => point.load(prepared.dir));
      if (isWeights) expect(error).toBeInstanceOf(SafetensorsError);
      expect(error.message).toBe(`${path}: not a file`);
    } finally {
      writer.kill();
    }
  });
});
