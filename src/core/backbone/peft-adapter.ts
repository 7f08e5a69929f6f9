// Hugging Face PEFT LoRA adapters (DESIGN.md §7): adapter_config.json + adapter_model.safetensors with keys
// `base_model.model.<module key>.lora_A.weight` (A: r × in) and `….lora_B.weight` (B: out × r). Reading takes
// any key layout weight-names.ts understands (peft saves whatever layout its transformers used); writing
// uses one layout, recorded in the config. Only plain LoRA is supported: DoRA, rsLoRA, bias training, per-
// module ranks or alphas and fully trained extra modules change the maths or the file and are refused.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { readJsonObject } from './json-file';
import { canonicalName, hfKey, type KeyLayout } from './weight-names';
import { readFloat32Tensor, readSafetensorsHeader, writeSafetensors, type TensorInfo, type TensorToWrite } from '../tensor/safetensors';

export interface PeftLoraConfig {
  r: number;
  alpha: number;
  dropout: number;
  /** Module names peft wraps (matched as name suffixes, as peft does for a list). */
  targetModules: string[];
  baseModel: string | null;
  taskType: string | null;
}

/** One LoRA module: ΔW = (alpha / r) · B · A, A: r × in, B: out × r (row-major). */
export interface LoraPair {
  a: { data: Float32Array; shape: [number, number] };
  b: { data: Float32Array; shape: [number, number] };
}

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';
/**
 * Our extra adapter_config.json field: the transformers key layout the weights use. peft ≥ 0.14 ignores
 * unknown fields (with a warning), older versions reject them; the layout is also visible from the keys.
 */
export const LAYOUT_FIELD = 'almostrec_key_layout';

const KEY_PREFIX = 'base_model.model.';
/** `<module>.lora_A.weight`, or with an adapter name (`<module>.lora_A.default.weight`) as older peft wrote. */
const LORA_KEY = /^(.+)\.lora_([AB])(?:\.([^.]+))?\.weight$/;

/** Fields the writer derives from the config and the weights; extraConfig may not contradict them. */
const RESERVED = ['peft_type', 'r', 'lora_alpha', 'target_modules', 'bias', 'use_dora', 'use_rslora', 'fan_in_fan_out', 'rank_pattern', 'alpha_pattern', 'modules_to_save', LAYOUT_FIELD];

function fail(file: string, message: string): never {
  throw new Error(`${file}: ${message}`);
}

function isEmpty(v: unknown): boolean {
  return v === undefined || v === null || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && Object.keys(v as object).length === 0);
}

/** Parses and checks an adapter_config.json object (`file` names it in errors). */
export function parsePeftConfig(json: Record<string, unknown>, file: string): PeftLoraConfig {
  if (json.peft_type !== 'LORA') fail(file, `"peft_type" is ${JSON.stringify(json.peft_type)}; only "LORA" adapters are supported`);
  const r = json.r;
  if (typeof r !== 'number' || !Number.isInteger(r) || r <= 0) fail(file, `"r" must be a positive integer, got ${JSON.stringify(r)}`);
  const alpha = json.lora_alpha ?? 8;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha)) fail(file, `"lora_alpha" must be a number, got ${JSON.stringify(alpha)}`);
  const dropout = json.lora_dropout ?? 0;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) fail(file, `"lora_dropout" must be a number in [0, 1), got ${JSON.stringify(dropout)}`);
  if (json.use_dora === true) fail(file, '"use_dora": true (DoRA) is not supported; export a plain LoRA adapter');
  if (json.use_rslora === true) fail(file, '"use_rslora": true (rank-stabilised scaling alpha/√r) is not supported');
  const bias = json.bias ?? 'none';
  if (bias !== 'none') fail(file, `"bias" is ${JSON.stringify(bias)}; only "none" is supported (trained biases are not LoRA weights)`);
  if (json.fan_in_fan_out === true) fail(file, '"fan_in_fan_out": true (transposed GPT-2 Conv1D weights) is not supported');
  if (!isEmpty(json.rank_pattern)) fail(file, '"rank_pattern" (per-module ranks) is not supported');
  if (!isEmpty(json.alpha_pattern)) fail(file, '"alpha_pattern" (per-module alphas) is not supported');
  if (!isEmpty(json.modules_to_save)) fail(file, '"modules_to_save" (fully trained extra modules) is not supported');
  const targets = json.target_modules;
  // A string is a regular expression in peft; readPeftAdapter replaces it by the module names it matched.
  let targetModules: string[];
  if (typeof targets === 'string') targetModules = [];
  else if (Array.isArray(targets) && targets.every((t) => typeof t === 'string')) targetModules = targets as string[];
  else fail(file, `"target_modules" must be a list of module names or a regex string, got ${JSON.stringify(targets)}`);
  const baseModel = typeof json.base_model_name_or_path === 'string' ? json.base_model_name_or_path : null;
  const taskType = typeof json.task_type === 'string' ? json.task_type : null;
  return { r, alpha, dropout, targetModules, baseModel, taskType };
}

/** Internal module path and matrix of an adapter key, or null when the key is not a LoRA A/B weight. */
function parseKey(key: string): { module: string; which: 'A' | 'B'; adapter: string | null } | null {
  if (!key.startsWith(KEY_PREFIX)) return null;
  const m = LORA_KEY.exec(key.slice(KEY_PREFIX.length));
  if (!m) return null;
  // Named as a weight so a bare top-level module ('lm_head') maps too.
  const weight = canonicalName(`${m[1]}.weight`);
  return weight === null ? null : { module: weight.slice(0, -'.weight'.length), which: m[2] as 'A' | 'B', adapter: m[3] ?? null };
}

/** Reads a peft LoRA adapter folder; modules are keyed by internal path (e.g. 'text.layers.0.self_attn.q_proj'). */
export function readPeftAdapter(dir: string): { config: PeftLoraConfig; modules: Map<string, LoraPair> } {
  const configPath = join(dir, ADAPTER_CONFIG_FILE);
  if (!existsSync(configPath)) fail(configPath, 'missing (not a peft adapter folder?)');
  const config = parsePeftConfig(readJsonObject(configPath), configPath);
  const weightsPath = join(dir, ADAPTER_WEIGHTS_FILE);
  if (!existsSync(weightsPath)) {
    fail(weightsPath, 'missing' + (existsSync(join(dir, 'adapter_model.bin')) ? ' (only adapter_model.bin, a PyTorch pickle, which is not supported)' : ''));
  }
  const header = readSafetensorsHeader(weightsPath);
  // Every check runs on the header first; the values are read only once the file is known to be this
  // adapter's LoRA pairs, so a mis-described file is refused without reading its data.
  type Slot = { key: string; info: TensorInfo };
  const parts = new Map<string, { A?: Slot; B?: Slot }>();
  const adapters = new Set<string | null>();
  for (const [key, info] of header.tensors) {
    const parsed = parseKey(key);
    if (!parsed) fail(weightsPath, `"${key}" is not a LoRA weight of a known backbone module (expected ${KEY_PREFIX}<module>.lora_A|lora_B.weight)`);
    if (info.dtype !== 'F32' && info.dtype !== 'F16' && info.dtype !== 'BF16') fail(weightsPath, `"${key}" is ${info.dtype}; expected F32, F16 or BF16`);
    if (info.shape.length !== 2) fail(weightsPath, `"${key}" has shape [${info.shape}]; LoRA matrices are 2-D`);
    adapters.add(parsed.adapter);
    const slot = parts.get(parsed.module) ?? {};
    if (slot[parsed.which]) fail(weightsPath, `${parsed.module} has two lora_${parsed.which} weights`);
    slot[parsed.which] = { key, info };
    parts.set(parsed.module, slot);
  }
  if (adapters.size > 1) fail(weightsPath, `holds several adapters (${[...adapters].map((a) => a ?? '<unnamed>').join(', ')}); expected one`);
  if (parts.size === 0) fail(weightsPath, 'holds no LoRA weights');
  const problems: string[] = [];
  for (const [module, { A, B }] of parts) {
    if (!A || !B) problems.push(`${module} has lora_${A ? 'A' : 'B'} but no lora_${A ? 'B' : 'A'}`);
    else if (A.info.shape[0] !== config.r || B.info.shape[1] !== config.r) {
      problems.push(`${module}: A [${A.info.shape}] and B [${B.info.shape}] do not have rank r = ${config.r}`);
    }
  }
  if (problems.length) fail(weightsPath, problems.join('; '));
  const modules = new Map<string, LoraPair>();
  const fd = openSync(weightsPath, 'r');
  try {
    const read = ({ key, info }: Slot) => ({ data: readFloat32Tensor(fd, header.dataStart, info, weightsPath, key), shape: [info.shape[0], info.shape[1]] as [number, number] });
    for (const [module, { A, B }] of parts) modules.set(module, { a: read(A!), b: read(B!) });
  } finally {
    closeSync(fd);
  }
  if (config.targetModules.length === 0) config.targetModules = [...new Set([...modules.keys()].map((m) => m.slice(m.lastIndexOf('.') + 1)))].sort();
  return { config, modules };
}

/** Whether peft's list matching (exact name or `.name` suffix) selects this module path. */
function targeted(module: string, targets: string[]): boolean {
  return targets.some((t) => module === t || module.endsWith(`.${t}`));
}

/** The module-name prefix of each tower in a llava-hf model (both key layouts). */
const TOWER_MODULE: Record<string, string> = { text: 'language_model', vision: 'vision_tower' };

/**
 * adapter_config.json's target_modules. peft matches a list of names in every tower, and CLIP's attention has
 * q_proj, k_proj and v_proj too: an adapter of the text tower alone (ALMOSTREC's, the LLM baselines') given as
 * a list would make peft wrap the vision tower's modules as well and report their keys missing. An adapter
 * of one tower therefore names it in a regular expression (peft full-matches a string against module names).
 */
function targetModulesField(config: PeftLoraConfig, modules: Map<string, LoraPair>): string[] | string {
  const towers = new Set([...modules.keys()].map((m) => m.slice(0, m.indexOf('.'))));
  const tower = towers.size === 1 ? TOWER_MODULE[[...towers][0]] : undefined;
  if (!tower) return config.targetModules;
  const names = config.targetModules.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
  // Both key layouts: model.language_model.layers… (transformers ≥ 4.52) and language_model.model.layers… (older).
  return `(.*\\.)?${tower}\\..*\\.(${names})`;
}

/** Writes `text` to `path` via a temp file that is fsynced, then renamed over it: readers see the old file or the whole new one. */
export function writeAtomically(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/**
 * Writes a peft LoRA adapter folder (DESIGN.md §7) that `PeftModel.from_pretrained` loads onto a llava-hf
 * model whose transformers uses `layout` (default 'current', transformers ≥ 4.52). Each file is written
 * atomically (temp file + rename); the weights first, so a config never describes weights not yet there.
 */
export function writePeftAdapter(
  dir: string,
  config: PeftLoraConfig,
  modules: Map<string, LoraPair>,
  opts: { layout?: KeyLayout; extraConfig?: Record<string, unknown> } = {}
): void {
  const layout = opts.layout ?? 'current';
  const extra = opts.extraConfig ?? {};
  const clash = Object.keys(extra).filter((k) => RESERVED.includes(k));
  if (clash.length) throw new Error(`writePeftAdapter: extraConfig may not set ${clash.join(', ')} (derived from the config and weights)`);
  if (!Number.isInteger(config.r) || config.r <= 0) throw new Error(`writePeftAdapter: r must be a positive integer, got ${config.r}`);
  if (modules.size === 0) throw new Error('writePeftAdapter: no modules to write');
  const tensors: Record<string, TensorToWrite> = {};
  for (const [module, { a, b }] of modules) {
    const [r, inDim] = a.shape;
    const [outDim, rb] = b.shape;
    if (r !== config.r || rb !== config.r) throw new Error(`writePeftAdapter: ${module} has A [${a.shape}] and B [${b.shape}], not rank ${config.r}`);
    if (a.data.length !== r * inDim || b.data.length !== outDim * rb) throw new Error(`writePeftAdapter: ${module} data lengths do not match the shapes`);
    if (!targeted(module, config.targetModules)) {
      throw new Error(`writePeftAdapter: ${module} is not matched by target_modules [${config.targetModules.join(', ')}]; peft would not load it`);
    }
    const key = KEY_PREFIX + hfKey(`${module}.weight`, layout).slice(0, -'.weight'.length);
    tensors[`${key}.lora_A.weight`] = { dtype: 'F32', shape: [r, inDim], data: a.data };
    tensors[`${key}.lora_B.weight`] = { dtype: 'F32', shape: [outDim, rb], data: b.data };
  }
  const json = {
    ...extra,
    peft_type: 'LORA',
    r: config.r,
    lora_alpha: config.alpha,
    lora_dropout: config.dropout,
    target_modules: targetModulesField(config, modules),
    bias: 'none',
    task_type: config.taskType,
    base_model_name_or_path: config.baseModel,
    inference_mode: true,
    fan_in_fan_out: false,
    use_dora: false,
    use_rslora: false,
    init_lora_weights: true,
    rank_pattern: {},
    alpha_pattern: {},
    modules_to_save: null,
    [LAYOUT_FIELD]: layout
  };
  mkdirSync(dir, { recursive: true });
  writeSafetensors(join(dir, ADAPTER_WEIGHTS_FILE), tensors, { format: 'pt' });
  writeAtomically(join(dir, ADAPTER_CONFIG_FILE), JSON.stringify(json, null, 2) + '\n');
}
