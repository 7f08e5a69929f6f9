// Hugging Face llava-hf checkpoint folders: config.json + model.safetensors, or shards listed by
// model.safetensors.index.json. Opening reads headers only; loading validates every tensor against the
// config first, checks memory, then reads one tensor at a time, so a multi-gigabyte model is never held
// twice (not as file bytes beside its float32 copy, not as a whole file). Saving is atomic per folder.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { freemem, totalmem } from 'node:os';
import { basename, dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { readJsonFile } from './json-file';
import { ConfigError, parseLlavaConfig, toHfConfigJson, type LlavaConfig } from './config';
import { canonicalName, expectedParameterCount, expectedTensors, hfKey, visionLayersUsed, type KeyLayout } from './weight-names';
import { readFloat32Tensor, readSafetensorsHeader, writeSafetensorsStream, type StreamedTensor } from '../tensor/safetensors';

export type FloatDtype = 'F32' | 'F16' | 'BF16';

/** Where one backbone tensor lies: `begin`/`end` are absolute byte offsets in `file` (relative to the dir). */
export interface CheckpointEntry {
  file: string;
  key: string;
  dtype: FloatDtype;
  shape: number[];
  begin: number;
  end: number;
}

export interface HfCheckpoint {
  dir: string;
  config: LlavaConfig;
  configJson: Record<string, unknown>;
  /** Weight files relative to `dir`, in index order. */
  files: string[];
  /** Keyed by internal name (see weight-names.ts). */
  entries: Map<string, CheckpointEntry>;
  /** The layout most keys use; transformers 5.x's `vision_tower.*`/`language_model.model.*` counts as legacy. */
  layout: KeyLayout;
  /** Keys that are not backbone tensors (nor known harmless buffers), with their file. */
  unknownKeys: { key: string; file: string }[];
}

export interface MissingTensor {
  name: string;
  key: string;
  shape: number[];
}
export interface UnexpectedTensor {
  name: string | null;
  key: string;
  file: string;
}
export interface MisshapedTensor {
  name: string;
  key: string;
  expected: number[];
  actual: number[];
}

/** The checkpoint's tensors do not match what its config.json describes; lists every difference at once. */
export class CheckpointError extends Error {
  constructor(
    readonly dir: string,
    readonly missing: MissingTensor[],
    readonly unexpected: UnexpectedTensor[],
    readonly misshaped: MisshapedTensor[]
  ) {
    const lines = [
      ...missing.map((m) => `  missing: ${m.name} (${m.key}) [${m.shape}]`),
      ...unexpected.map((u) => `  unexpected: ${u.key}${u.name ? ` (${u.name})` : ''} in ${u.file}`),
      ...misshaped.map((m) => `  mis-shaped: ${m.name} (${m.key}): expected [${m.expected}], found [${m.actual}]`)
    ];
    super(
      `${dir}: the tensors do not match config.json (${missing.length} missing, ${unexpected.length} unexpected, ` +
        `${misshaped.length} mis-shaped):\n${lines.join('\n')}`
    );
    this.name = 'CheckpointError';
  }
}

const CONFIG_FILE = 'config.json';
const SINGLE_FILE = 'model.safetensors';
const INDEX_FILE = 'model.safetensors.index.json';

/**
 * Keys some transformers versions saved that are buffers derived from the config, not weights: LLaMA's
 * rotary `inv_freq` (saved before 4.31) and CLIP's `position_ids` (saved before 4.31 as a persistent buffer).
 * Both are recomputed from the config, so ignoring them loses nothing; anything else unknown is an error.
 */
const HARMLESS_EXTRA = /(^|\.)rotary_emb\.inv_freq$|(^|\.)position_ids$/;

/** The weight files and which key each holds, from model.safetensors or the shard index. */
function weightFiles(dir: string): { files: string[]; keyFile: Map<string, string> | null } {
  if (existsSync(join(dir, SINGLE_FILE))) return { files: [SINGLE_FILE], keyFile: null };
  const indexPath = join(dir, INDEX_FILE);
  if (!existsSync(indexPath)) {
    const hasPickle = existsSync(join(dir, 'pytorch_model.bin')) || existsSync(join(dir, 'pytorch_model.bin.index.json'));
    throw new Error(
      `${dir}: no ${SINGLE_FILE} or ${INDEX_FILE}` + (hasPickle ? ' (only PyTorch .bin weights, which are not supported: convert them to safetensors)' : '')
    );
  }
  const index = readJsonFile(indexPath) as { weight_map?: unknown };
  const map = index?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) throw new Error(`${indexPath}: missing "weight_map" object`);
  const keyFile = new Map<string, string>();
  const files: string[] = [];
  for (const [key, file] of Object.entries(map as Record<string, unknown>)) {
    // Shards must be plain names in the folder: an index must not point the reader elsewhere.
    if (typeof file !== 'string' || file !== basename(file) || file === '..' || file === '.') {
      throw new Error(`${indexPath}: "weight_map" entry for ${key} is not a file name in the folder: ${JSON.stringify(file)}`);
    }
    keyFile.set(key, file);
    if (!files.includes(file)) files.push(file);
  }
  if (files.length === 0) throw new Error(`${indexPath}: "weight_map" is empty`);
  return { files, keyFile };
}

function keyLayoutOf(key: string): KeyLayout {
  return key.startsWith('model.') || key.startsWith('lm_head.') ? 'current' : 'legacy';
}

/**
 * Refuses a config.json whose architecture cannot be in the weight files: every expected tensor must be
 * stored, at 2 bytes per value at least (F16/BF16), so more implied bytes than the files hold means a broken
 * or hostile config. Checked in closed form before validation builds the expected tensor list, and long
 * before loadHfCheckpoint compares the float32 size with the available memory.
 */
function checkImpliedSize(config: LlavaConfig, weightBytes: number, configPath: string): void {
  const params = expectedParameterCount(config);
  if (params * 2 > weightBytes) {
    throw new ConfigError(
      configPath,
      `describes ${paramCount(params)} parameters (at least ${memorySize(params * 2)} in 16-bit), but the weight files hold only ${memorySize(weightBytes)}`
    );
  }
}

/** Reads config.json and the weight files' headers (no tensor data); see loadHfCheckpoint for validation. */
export function openHfCheckpoint(dir: string): HfCheckpoint {
  const configPath = join(dir, CONFIG_FILE);
  if (!existsSync(configPath)) throw new Error(`${configPath}: missing (not a Hugging Face checkpoint folder?)`);
  const configJson = readJsonFile(configPath) as Record<string, unknown>;
  const config = parseLlavaConfig(configJson, configPath);
  const { files, keyFile } = weightFiles(dir);
  const entries = new Map<string, CheckpointEntry>();
  const unknownKeys: { key: string; file: string }[] = [];
  const votes = { legacy: 0, current: 0 };
  let weightBytes = 0;
  for (const file of files) {
    const path = join(dir, file);
    const header = readSafetensorsHeader(path);
    weightBytes += header.fileSize;
    for (const [key, info] of header.tensors) {
      // With an index, a shard's key counts only where the index says it lives (as transformers reads it).
      if (keyFile && keyFile.get(key) !== file) continue;
      if (HARMLESS_EXTRA.test(key)) continue;
      const name = canonicalName(key);
      if (name === null) {
        unknownKeys.push({ key, file });
        continue;
      }
      if (info.dtype !== 'F32' && info.dtype !== 'F16' && info.dtype !== 'BF16') {
        throw new Error(`${path}: tensor "${key}" is ${info.dtype}; backbone weights must be F32, F16 or BF16`);
      }
      const previous = entries.get(name);
      if (previous) throw new Error(`${dir}: ${name} appears twice, as ${previous.key} (${previous.file}) and ${key} (${file})`);
      entries.set(name, { file, key, dtype: info.dtype, shape: info.shape, begin: header.dataStart + info.begin, end: header.dataStart + info.end });
      votes[keyLayoutOf(key)]++;
    }
    if (keyFile) {
      for (const [key, f] of keyFile) {
        if (f === file && !header.tensors.has(key)) throw new Error(`${path}: has no tensor "${key}", which ${INDEX_FILE} places there`);
      }
    }
  }
  checkImpliedSize(config, weightBytes, configPath);
  return { dir, config, configJson, files, entries, layout: votes.current > votes.legacy ? 'current' : 'legacy', unknownKeys };
}

/**
 * Tensors a forward pass never reads: CLIP layers past the one `vision_feature_layer` selects, and
 * post_layernorm (LLaVA takes hidden states, never the pooled output it normalises). They stay required in
 * the file, since transformers refuses a checkpoint without them; the loader just need not hold them.
 */
export function isUnusedVisionTensor(cfg: LlavaConfig, name: string): boolean {
  if (cfg.vision.kind !== 'clip') return false;
  if (name.startsWith('vision.post_layernorm.')) return true;
  const m = /^vision\.encoder\.layers\.(\d+)\./.exec(name);
  return m !== null && Number(m[1]) >= visionLayersUsed(cfg);
}

/** Compares the headers with expectedTensors(config); throws one CheckpointError listing every difference. */
export function validateHfCheckpoint(ckpt: HfCheckpoint): void {
  const expected = expectedTensors(ckpt.config);
  const missing: MissingTensor[] = [];
  const misshaped: MisshapedTensor[] = [];
  const unexpected: UnexpectedTensor[] = ckpt.unknownKeys.map(({ key, file }) => ({ name: null, key, file }));
  for (const [name, shape] of expected) {
    const e = ckpt.entries.get(name);
    if (!e) missing.push({ name, key: hfKey(name, ckpt.layout), shape });
    else if (e.shape.length !== shape.length || e.shape.some((d, i) => d !== shape[i])) {
      misshaped.push({ name, key: e.key, expected: shape, actual: e.shape });
    }
  }
  for (const [name, e] of ckpt.entries) if (!expected.has(name)) unexpected.push({ name, key: e.key, file: e.file });
  if (missing.length || unexpected.length || misshaped.length) throw new CheckpointError(ckpt.dir, missing, unexpected, misshaped);
}

/**
 * Memory the loader may use by default: os.freemem() (on Linux MemAvailable, which already counts
 * reclaimable page cache) plus 10% of total memory, capped at 4 GiB, for memory that macOS and Windows
 * reclaim on demand but do not report as free (inactive/compressed pages, standby list). Activations are
 * not counted: the check is there to refuse a model whose weights alone cannot fit, before reading gigabytes.
 */
export function defaultAvailableBytes(): number {
  return freemem() + Math.min(0.1 * totalmem(), 4 * 2 ** 30);
}

function memorySize(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(1)} GB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

function paramCount(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} billion` : `${(n / 1e6).toFixed(2)} million`;
}

export interface LoadOptions {
  /** Tensors (internal names) not to load, on top of the unused vision tensors. */
  skip?: (name: string) => boolean;
  /** Also load the vision tensors a forward pass never reads (needed to re-save the checkpoint whole). */
  loadUnused?: boolean;
  /** Bytes the float32 weights may take; default defaultAvailableBytes(). */
  availableBytes?: number;
}

export interface LoadedHfCheckpoint {
  config: LlavaConfig;
  layout: KeyLayout;
  weights: Map<string, tf.Tensor>;
  /** Names present in the file but not loaded (unused vision tensors and `skip` matches). */
  skipped: string[];
}

/** Validates and loads a llava-hf checkpoint as float32 tensors, one tensor read at a time. */
export function loadHfCheckpoint(dir: string, opts: LoadOptions = {}): LoadedHfCheckpoint {
  const ckpt = openHfCheckpoint(dir);
  validateHfCheckpoint(ckpt);
  const toLoad: [string, CheckpointEntry][] = [];
  const skipped: string[] = [];
  for (const [name, entry] of ckpt.entries) {
    if ((!opts.loadUnused && isUnusedVisionTensor(ckpt.config, name)) || opts.skip?.(name)) skipped.push(name);
    else toLoad.push([name, entry]);
  }
  const needed = toLoad.reduce((n, [, e]) => n + e.shape.reduce((a, b) => a * b, 1) * 4, 0);
  const available = opts.availableBytes ?? defaultAvailableBytes();
  if (needed > available) {
    throw new Error(
      `${dir}: loading needs ${memorySize(needed)} of memory for ${paramCount(needed / 4)} float32 parameters ` +
        `(4 bytes each: a 7B model needs ~28 GB), but only ${memorySize(available)} is available; ` +
        'free memory or use a smaller backbone'
    );
  }
  const weights = new Map<string, tf.Tensor>();
  const fds = new Map<string, number>();
  try {
    for (const [name, entry] of toLoad) {
      const path = join(dir, entry.file);
      let fd = fds.get(entry.file);
      if (fd === undefined) {
        fd = openSync(path, 'r');
        fds.set(entry.file, fd);
      }
      // dataStart 0: entry offsets are already absolute. The Float32Array is handed to tfjs and not kept.
      const data = readFloat32Tensor(fd, 0, { dtype: entry.dtype, shape: entry.shape, begin: entry.begin, end: entry.end }, path, entry.key);
      weights.set(name, tf.tensor(data, entry.shape, 'float32'));
    }
  } catch (e) {
    for (const t of weights.values()) t.dispose();
    throw e;
  } finally {
    for (const fd of fds.values()) closeSync(fd);
  }
  return { config: ckpt.config, layout: ckpt.layout, weights, skipped };
}

export interface SaveOptions {
  /** Key layout to write; default 'legacy', what the llava-hf repositories ship. */
  layout?: KeyLayout;
  /** Start a new shard before a file would exceed this many bytes (default 5 GB, transformers' default). */
  maxShardBytes?: number;
  /** More files for the folder (tokenizer.json, generation_config.json …), by plain file name. */
  extraFiles?: Record<string, string | Uint8Array>;
}

function shardName(i: number, n: number): string {
  return `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
}

function writeFileSynced(path: string, data: string | Uint8Array): void {
  writeFileSync(path, data);
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Checks that `weights` holds exactly the config's tensors with their shapes (one error listing all). */
function validateWeights(dir: string, config: LlavaConfig, weights: Map<string, tf.Tensor>, layout: KeyLayout): void {
  const expected = expectedTensors(config);
  const missing: MissingTensor[] = [];
  const misshaped: MisshapedTensor[] = [];
  const unexpected: UnexpectedTensor[] = [];
  for (const [name, shape] of expected) {
    const t = weights.get(name);
    if (!t) missing.push({ name, key: hfKey(name, layout), shape });
    else if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) misshaped.push({ name, key: hfKey(name, layout), expected: shape, actual: t.shape });
  }
  for (const name of weights.keys()) if (!expected.has(name)) unexpected.push({ name, key: name, file: '<weights>' });
  if (missing.length || unexpected.length || misshaped.length) throw new CheckpointError(dir, missing, unexpected, misshaped);
  for (const [name, t] of weights) if (t.dtype !== 'float32') throw new Error(`${dir}: weight ${name} is ${t.dtype}, not float32`);
}

/**
 * Writes a llava-hf checkpoint folder transformers can load: config.json and float32 weights in one file or
 * in shards with an index. Everything is written into a sibling temp folder first and then renamed into
 * place, so `dir` is either the old checkpoint or the complete new one. An existing `dir` is moved aside,
 * replaced and then deleted (POSIX has no atomic swap of folders; should the process die between the two
 * renames, the old checkpoint survives beside it as `.<name>.old-…`).
 */
export function saveHfCheckpoint(dir: string, config: LlavaConfig, weights: Map<string, tf.Tensor>, opts: SaveOptions = {}): void {
  const layout = opts.layout ?? 'legacy';
  const maxShardBytes = opts.maxShardBytes ?? 5e9;
  validateWeights(dir, config, weights, layout);
  const extra = opts.extraFiles ?? {};
  for (const name of Object.keys(extra)) {
    if (name !== basename(name) || name === '.' || name === '..' || name === CONFIG_FILE || name === INDEX_FILE || name.endsWith('.safetensors')) {
      throw new Error(`saveHfCheckpoint: extra file ${JSON.stringify(name)} must be a plain file name other than the config and weight files`);
    }
  }
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new Error(`${dir}: exists and is not a folder`);

  // Shards follow the model's order (vision, projector, text layer by layer), as transformers fills them.
  const shards: string[][] = [];
  let current: string[] = [];
  let currentBytes = 0;
  for (const name of expectedTensors(config).keys()) {
    const bytes = weights.get(name)!.size * 4;
    if (current.length > 0 && currentBytes + bytes > maxShardBytes) {
      shards.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(name);
    currentBytes += bytes;
  }
  shards.push(current);

  const parent = dirname(dir);
  mkdirSync(parent, { recursive: true });
  const suffix = `${process.pid}-${Date.now().toString(36)}`;
  const tmp = join(parent, `.${basename(dir)}.tmp-${suffix}`);
  mkdirSync(tmp);
  try {
    writeFileSynced(join(tmp, CONFIG_FILE), JSON.stringify(toHfConfigJson(config), null, 2) + '\n');
    const weightMap: Record<string, string> = {};
    let totalSize = 0;
    shards.forEach((names, i) => {
      const file = shards.length === 1 ? SINGLE_FILE : shardName(i, shards.length);
      const tensors: StreamedTensor[] = names.map((name) => {
        const t = weights.get(name)!;
        return { name: hfKey(name, layout), dtype: 'F32', shape: t.shape, data: () => t.dataSync() as Float32Array };
      });
      writeSafetensorsStream(join(tmp, file), tensors, { format: 'pt' });
      for (const name of names) {
        weightMap[hfKey(name, layout)] = file;
        totalSize += weights.get(name)!.size * 4;
      }
    });
    if (shards.length > 1) {
      const sortedMap = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : 1)));
      writeFileSynced(join(tmp, INDEX_FILE), JSON.stringify({ metadata: { total_size: totalSize }, weight_map: sortedMap }, null, 2) + '\n');
    }
    for (const [name, content] of Object.entries(extra)) writeFileSynced(join(tmp, name), content);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  if (!existsSync(dir)) {
    renameSync(tmp, dir);
    return;
  }
  const old = join(parent, `.${basename(dir)}.old-${suffix}`);
  renameSync(dir, old);
  try {
    renameSync(tmp, dir);
  } catch (e) {
    renameSync(old, dir);
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  rmSync(old, { recursive: true, force: true });
}
