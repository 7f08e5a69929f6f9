// LoRA (Hu et al. 2021, as Hugging Face PEFT implements it) on any linear layer of the LLaVA backbone, and
// the frozen linear layers it attaches to. Modules are addressed by internal module path (the weight's
// internal name without `.weight`, e.g. 'text.layers.0.self_attn.q_proj'), so a PEFT adapter maps onto them
// with the same canonicalName used for the base checkpoint.
//
//   y = x Wᵀ + b + (alpha / r) · dropout(x) Aᵀ Bᵀ      A: [r, in], B: [out, r] (PEFT's shapes)
import * as tf from '@tensorflow/tfjs-core';
import { LORA_TARGET_BITS } from '../../shared/models';
import type { LlavaConfig } from './config';
import { expectedTensors, visionLayersUsed } from './weight-names';
import { Rng } from '../tensor/rng';
import { dense } from '../tensor/ops';

/** The language model's LoRA targets: the catalogue's bitmask list (its bit order is the config's loraTargets). */
export const TEXT_LORA_TARGETS = LORA_TARGET_BITS;
export const VISION_LORA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'out_proj', 'fc1', 'fc2'] as const;
export type LoraTarget = (typeof TEXT_LORA_TARGETS)[number] | (typeof VISION_LORA_TARGETS)[number];
export type LoraTower = 'text' | 'vision';

export interface LoraConfig {
  r: number;
  alpha: number;
  /** Dropout on the LoRA branch's input, applied only when training. */
  dropout: number;
  /** Short module names (PEFT target_modules); each applies in every tower listed in `towers`. */
  targets: LoraTarget[];
  towers: LoraTower[];
}

/** One module's factors in PEFT layout, row-major. */
export interface PeftLoraModule {
  a: { data: Float32Array; shape: [number, number] };
  b: { data: Float32Array; shape: [number, number] };
}

/** The fields of a PEFT adapter_config.json that LoRA needs (as the adapter reader returns them). */
export interface PeftLoraSettings {
  r: number;
  alpha: number;
  dropout: number;
}

const LINEAR_SUFFIX = /\.(self_attn\.(q_proj|k_proj|v_proj|o_proj|out_proj)|mlp\.(gate_proj|up_proj|down_proj|fc1|fc2))$/;

/** The short name (PEFT target) and tower of a module path, or null when LoRA cannot address it by target. */
function describeModule(path: string): { target: string; tower: LoraTower } | null {
  const m = LINEAR_SUFFIX.exec(path);
  if (!m) return null;
  const tower: LoraTower | null = path.startsWith('text.layers.') ? 'text' : path.startsWith('vision.encoder.layers.') ? 'vision' : null;
  return tower ? { target: m[2] ?? m[3], tower } : null;
}

/**
 * The LoRA config equivalent to a PEFT adapter's settings and modules: targets and towers are read off the
 * module paths (PEFT's target_modules may be a regex; the modules actually saved are what counts).
 */
export function loraConfigFromPeft(settings: PeftLoraSettings, modules: Map<string, PeftLoraModule>): LoraConfig {
  const targets = new Set<LoraTarget>();
  const towers = new Set<LoraTower>();
  for (const path of modules.keys()) {
    const d = describeModule(path);
    if (!d) continue;
    targets.add(d.target as LoraTarget);
    towers.add(d.tower);
  }
  return { r: settings.r, alpha: settings.alpha, dropout: settings.dropout, targets: [...targets], towers: [...towers] };
}

function validateConfig(cfg: LoraConfig): void {
  if (!Number.isInteger(cfg.r) || cfg.r <= 0) throw new Error(`LoRA: r must be a positive integer, got ${cfg.r}`);
  if (!Number.isFinite(cfg.alpha)) throw new Error(`LoRA: alpha must be a number, got ${cfg.alpha}`);
  if (!(cfg.dropout >= 0 && cfg.dropout < 1)) throw new Error(`LoRA: dropout must be in [0, 1), got ${cfg.dropout}`);
  for (const t of cfg.targets) {
    const known = (TEXT_LORA_TARGETS as readonly string[]).includes(t) || (VISION_LORA_TARGETS as readonly string[]).includes(t);
    if (!known) throw new Error(`LoRA: unknown target "${t}" (known: ${[...new Set([...TEXT_LORA_TARGETS, ...VISION_LORA_TARGETS])].join(', ')})`);
  }
}

/**
 * Module paths (with [out, in]) that a LoRA config adapts. Vision layers past the one whose hidden state
 * LLaVA reads never influence the output, so they get no adapter (their factors could never train).
 */
export function loraModuleShapes(model: LlavaConfig, cfg: LoraConfig): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>();
  const usedVision = visionLayersUsed(model);
  for (const [name, shape] of expectedTensors(model)) {
    if (!name.endsWith('.weight')) continue;
    const path = name.slice(0, -'.weight'.length);
    const d = describeModule(path);
    if (!d || !cfg.towers.includes(d.tower) || !(cfg.targets as string[]).includes(d.target)) continue;
    if (d.tower === 'vision' && Number(path.split('.')[3]) >= usedVision) continue;
    out.set(path, [shape[0], shape[1]]);
  }
  return out;
}

let adapterCounter = 0;

interface LoraFactors {
  a: tf.Variable<tf.Rank.R2>; // [r, in]
  b: tf.Variable<tf.Rank.R2>; // [out, r]
}

export class LoraAdapter {
  readonly scale: number;
  private readonly modules = new Map<string, LoraFactors>();
  private dropoutRng: Rng;
  private readonly id = adapterCounter++;

  private constructor(
    readonly config: LoraConfig,
    seed: number
  ) {
    validateConfig(config);
    this.scale = config.alpha / config.r;
    this.dropoutRng = new Rng(seed ^ 0x5f3759df);
  }

  /** Fresh factors as PEFT initialises them: A kaiming-uniform (a = √5, i.e. U(±1/√in)), B zeros. */
  static create(model: LlavaConfig, config: LoraConfig, seed = 0): LoraAdapter {
    const adapter = new LoraAdapter(config, seed);
    const rng = new Rng(seed);
    for (const [path, [outDim, inDim]] of loraModuleShapes(model, config)) {
      const bound = 1 / Math.sqrt(inDim);
      const a = new Float32Array(config.r * inDim);
      for (let i = 0; i < a.length; i++) a[i] = (2 * rng.next() - 1) * bound;
      adapter.add(path, tf.tensor2d(a, [config.r, inDim]), tf.zeros([outDim, config.r]) as tf.Tensor2D);
    }
    return adapter;
  }

  /** Loads a PEFT adapter's modules (every module given is kept, whatever the config's targets say). */
  static fromPeft(modules: Map<string, PeftLoraModule>, config: LoraConfig, seed = 0): LoraAdapter {
    const adapter = new LoraAdapter(config, seed);
    for (const [path, { a, b }] of modules) {
      if (a.shape[0] !== config.r || b.shape[1] !== config.r) {
        adapter.dispose();
        throw new Error(`LoRA: module ${path} has A [${a.shape}] and B [${b.shape}], expected rank ${config.r}`);
      }
      adapter.add(path, tf.tensor2d(a.data, a.shape), tf.tensor2d(b.data, b.shape));
    }
    return adapter;
  }

  private add(path: string, a: tf.Tensor2D, b: tf.Tensor2D): void {
    const name = `lora${this.id}/${path}`;
    this.modules.set(path, { a: tf.variable(a, true, `${name}/A`), b: tf.variable(b, true, `${name}/B`) });
    a.dispose();
    b.dispose();
  }

  has(path: string): boolean {
    return this.modules.has(path);
  }

  /** A module's trainable factors (A [r, in], B [out, r]), e.g. to name them in a model's parameter map. */
  factors(path: string): { a: tf.Variable; b: tf.Variable } | undefined {
    return this.modules.get(path);
  }

  /**
   * Draws the dropout masks' seeds from `rng` from now on: a training loop whose single Rng is checkpointed
   * then resumes with the same masks (the adapter's own seeded stream is not part of any checkpoint).
   */
  setDropoutRng(rng: Rng): void {
    this.dropoutRng = rng;
  }

  paths(): string[] {
    return [...this.modules.keys()];
  }

  /** Input and output widths of an adapted module. */
  shape(path: string): { inDim: number; outDim: number } | undefined {
    const m = this.modules.get(path);
    return m && { inDim: m.a.shape[1], outDim: m.b.shape[0] };
  }

  /** The LoRA branch (alpha/r) · dropout(x) Aᵀ Bᵀ for x [..., in], or null when the module is not adapted. */
  delta(path: string, x: tf.Tensor, training: boolean): tf.Tensor | null {
    const m = this.modules.get(path);
    if (!m) return null;
    const inDim = m.a.shape[1];
    let x2 = tf.reshape(x, [-1, inDim]);
    if (training && this.config.dropout > 0) {
      const keep = 1 - this.config.dropout;
      const seed = this.dropoutRng.nextU32();
      const mask = tf.cast(tf.less(tf.randomUniform(x2.shape, 0, 1, 'float32', seed), keep), 'float32');
      x2 = tf.mul(x2, tf.div(mask, keep));
    }
    // A and B are small: transposing them each call keeps both matmuls untransposed (much faster on wasm).
    const low = tf.matMul(x2 as tf.Tensor2D, tf.transpose(m.a) as tf.Tensor2D);
    const y = tf.matMul(low, tf.transpose(tf.mul(m.b, this.scale)) as tf.Tensor2D);
    return tf.reshape(y, [...x.shape.slice(0, -1), m.b.shape[0]]);
  }

  /** The factors in PEFT layout (copies). */
  toPeft(): Map<string, PeftLoraModule> {
    const out = new Map<string, PeftLoraModule>();
    for (const [path, { a, b }] of this.modules) {
      out.set(path, {
        a: { data: a.dataSync() as Float32Array, shape: [a.shape[0], a.shape[1]] },
        b: { data: b.dataSync() as Float32Array, shape: [b.shape[0], b.shape[1]] }
      });
    }
    return out;
  }

  /**
   * Base weights with every adapted module merged in, W' = W + (alpha/r)·B·A, for inference without the
   * LoRA branch. Unadapted entries are the input's own tensors; only the merged ones are new.
   */
  merge(weights: Map<string, tf.Tensor>): Map<string, tf.Tensor> {
    const out = new Map(weights);
    for (const [path, { a, b }] of this.modules) {
      const name = `${path}.weight`;
      const w = weights.get(name);
      if (!w) throw new Error(`LoRA merge: the base weights have no ${name}`);
      if (w.shape[0] !== b.shape[0] || w.shape[1] !== a.shape[1]) {
        throw new Error(`LoRA merge: ${name} is [${w.shape}], the adapter is [${b.shape[0]}, ${a.shape[1]}]`);
      }
      out.set(name, tf.tidy(() => tf.add(w, tf.mul(tf.matMul(b, a), this.scale))));
    }
    return out;
  }

  trainableVariables(): tf.Variable[] {
    return [...this.modules.values()].flatMap(({ a, b }) => [a, b]);
  }

  dispose(): void {
    for (const { a, b } of this.modules.values()) {
      a.dispose();
      b.dispose();
    }
    this.modules.clear();
  }
}

interface FrozenLinear {
  /** [in, out], our own copy: wasm multiplies untransposed operands several times faster. */
  wT: tf.Tensor2D;
  /** [out, in] as given (borrowed): dx = dy · W is then untransposed too. */
  w: tf.Tensor2D;
  bias?: tf.Tensor1D;
}

/**
 * The backbone's linear layers: frozen base weights (gradients flow to the input only, never to W or b) plus
 * the LoRA branch of the adapter, when it adapts the module.
 */
export class Linears {
  private readonly layers = new Map<string, FrozenLinear>();

  constructor(private readonly lora?: LoraAdapter) {}

  /** Registers a module; `weight` is [out, in] (PyTorch Linear), kept by reference. */
  add(path: string, weight: tf.Tensor, bias?: tf.Tensor): void {
    if (weight.rank !== 2) throw new Error(`${path}.weight must be 2-D, got [${weight.shape}]`);
    if (bias && (bias.rank !== 1 || bias.shape[0] !== weight.shape[0])) throw new Error(`${path}.bias is [${bias.shape}], expected [${weight.shape[0]}]`);
    const ad = this.lora?.shape(path);
    if (ad && (ad.outDim !== weight.shape[0] || ad.inDim !== weight.shape[1])) {
      throw new Error(`LoRA module ${path} is [${ad.outDim}, ${ad.inDim}], the base weight is [${weight.shape}]`);
    }
    this.layers.get(path)?.wT.dispose();
    this.layers.set(path, { wT: tf.transpose(weight) as tf.Tensor2D, w: weight as tf.Tensor2D, bias: bias as tf.Tensor1D | undefined });
  }

  /** x [..., in] → [..., out]. */
  apply(path: string, x: tf.Tensor, training = false): tf.Tensor {
    const layer = this.layers.get(path);
    if (!layer) throw new Error(`no linear layer ${path}`);
    const { wT, w, bias } = layer;
    const inDim = wT.shape[0];
    const outDim = wT.shape[1];
    if (x.shape[x.rank - 1] !== inDim) throw new Error(`${path}: input is [${x.shape}], expected last axis ${inDim}`);
    if (w instanceof tf.Variable && w.trainable) {
      // Pretraining trains base weights: transpose the live variable each step (a cheap copy) and use the
      // dense op whose backward avoids wasm's slow transposed matmuls; the cached wT would be stale.
      const b = bias ?? tf.zeros([outDim]);
      const y = dense(x, tf.transpose(w), b);
      const delta = this.lora?.delta(path, x, training);
      return delta ? tf.add(y, delta) : y;
    }
    const frozen = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const x2 = args[0] as tf.Tensor2D;
      const y = tf.matMul(x2, wT);
      return { value: bias ? tf.add(y, bias) : y, gradFunc: (dy: tf.Tensor) => [tf.matMul(dy as tf.Tensor2D, w)] };
    });
    const y = tf.reshape(frozen(tf.reshape(x, [-1, inDim])) as tf.Tensor, [...x.shape.slice(0, -1), outDim]);
    const delta = this.lora?.delta(path, x, training);
    return delta ? tf.add(y, delta) : y;
  }

  /** Frees our transposed copies (the borrowed weights stay with their owner). */
  dispose(): void {
    for (const l of this.layers.values()) l.wT.dispose();
    this.layers.clear();
  }
}
