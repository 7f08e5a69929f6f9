// The Llama decoder (transformers' LlamaModel + lm_head) as LLaVA's language model: RMSNorm, rotary position
// embeddings (rotate_half convention), grouped-query attention with a causal + padding mask, SwiGLU MLP,
// final norm, and a KV cache for incremental decoding. All in float32, as HF computes RMSNorm and RoPE.
import * as tf from '@tensorflow/tfjs-core';
import type { TextConfig } from './config';
import type { Linears } from './lora';
import { bmm, transposeLast2 } from '../tensor/ops';

/** Added to the scores of masked keys. Finite, so a row with every key masked stays finite (uniform). */
const MASKED = -1e9;

/** Linear module paths of the decoder layers (lm_head is registered separately: it may be tied). */
export function llamaLinearPaths(cfg: TextConfig): string[] {
  const paths: string[] = [];
  for (let i = 0; i < cfg.numLayers; i++) {
    const p = `text.layers.${i}.`;
    for (const proj of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) paths.push(`${p}self_attn.${proj}`);
    for (const proj of ['gate_proj', 'up_proj', 'down_proj']) paths.push(`${p}mlp.${proj}`);
  }
  return paths;
}

/**
 * Per-layer keys (after RoPE) and values [B, kvHeads, S, headDim] of every position seen so far. Inference
 * only: each forward that is given the cache appends to it in place (keeping the new tensors, freeing the old).
 */
export class KvCache {
  private keys: (tf.Tensor | null)[];
  private values: (tf.Tensor | null)[];
  /** Positions cached (the position offset of the next forward). */
  length = 0;

  constructor(readonly numLayers: number) {
    this.keys = new Array<tf.Tensor | null>(numLayers).fill(null);
    this.values = new Array<tf.Tensor | null>(numLayers).fill(null);
  }

  get batch(): number | null {
    return this.keys[0]?.shape[0] ?? null;
  }

  layer(i: number): { k: tf.Tensor; v: tf.Tensor } | null {
    const k = this.keys[i];
    const v = this.values[i];
    return k && v ? { k, v } : null;
  }

  /** Replaces every layer's K/V by the extended ones (called once all layers succeeded). */
  commit(kv: { k: tf.Tensor; v: tf.Tensor }[], added: number): void {
    if (kv.length !== this.numLayers) throw new Error(`KvCache: ${kv.length} layers committed, expected ${this.numLayers}`);
    kv.forEach(({ k, v }, i) => {
      tf.keep(k);
      tf.keep(v);
      if (this.keys[i] !== k) this.keys[i]?.dispose();
      if (this.values[i] !== v) this.values[i]?.dispose();
      this.keys[i] = k;
      this.values[i] = v;
    });
    this.length += added;
  }

  /**
   * A cache holding ready per-layer K/V [B, kvHeads, length, headDim] (e.g. rows assembled from other
   * caches, to continue each row its own way). It takes the tensors over: its dispose() frees them.
   */
  static fromLayers(kv: { k: tf.Tensor; v: tf.Tensor }[], length: number): KvCache {
    const batch = kv[0]?.k.shape[0];
    kv.forEach(({ k, v }, i) => {
      if (k.rank !== 4 || k.shape.join() !== v.shape.join()) throw new Error(`KvCache.fromLayers: layer ${i} has K [${k.shape}] and V [${v.shape}], expected equal [B, kvHeads, S, headDim]`);
      if (k.shape[0] !== batch || k.shape[2] !== length) throw new Error(`KvCache.fromLayers: layer ${i} is [${k.shape}], expected batch ${batch} and ${length} positions`);
    });
    const cache = new KvCache(kv.length);
    cache.commit(kv, length);
    return cache;
  }

  /** A new cache whose batch repeats this batch-1 cache n times (to continue one prompt n ways). */
  expandBatch(n: number): KvCache {
    if (this.batch !== 1) throw new Error(`KvCache.expandBatch needs a batch-1 cache, this one has batch ${this.batch}`);
    const out = new KvCache(this.numLayers);
    out.keys = this.keys.map((k) => (k ? tf.tile(k, [n, 1, 1, 1]) : null));
    out.values = this.values.map((v) => (v ? tf.tile(v, [n, 1, 1, 1]) : null));
    out.length = this.length;
    return out;
  }

  dispose(): void {
    for (const t of [...this.keys, ...this.values]) t?.dispose();
    this.keys.fill(null);
    this.values.fill(null);
    this.length = 0;
  }
}

/**
 * Keys and values of a prefix shared by every row of a batch (batch 1, per layer), computed inside the
 * gradient tape: unlike KvCache it may be used in training, so LoRA on k/v still learns from the prefix, and
 * one pass over the prefix serves the whole batch. Positions 0…length−1 are the prefix's.
 */
export interface PrefixKv {
  kv: { k: tf.Tensor; v: tf.Tensor }[];
  length: number;
}

export interface DecoderOptions {
  /** [B, past + T], 1 = attend, 0 = padding (HF attention_mask convention). Absent: all ones. */
  keyMask?: Int32Array;
  /** [B, T] position ids. Absent: past + t for every row (what HF's forward uses without position_ids). */
  positions?: Int32Array;
  cache?: KvCache;
  /**
   * A shared prefix the rows continue (past = its length). With `cache` too (inference), the cache holds each
   * row's own positions after the prefix (past = prefix + cache), and only those are appended to it; the
   * prefix is then attended to without being copied per row.
   */
  prefix?: PrefixKv;
  training?: boolean;
}

/**
 * cos and sin [B, 1, T, headDim] for the given positions. Each step rounds to float32 as torch does
 * (inv_freq = 1/θ^(2i/d), freqs = pos · inv_freq, both float32), so large positions match HF closely.
 */
export function rotaryTables(positions: Int32Array, batch: number, steps: number, headDim: number, theta: number): { cos: tf.Tensor; sin: tf.Tensor } {
  const half = headDim / 2;
  const invFreq = new Float32Array(half);
  for (let i = 0; i < half; i++) invFreq[i] = Math.fround(1 / Math.fround(Math.pow(theta, Math.fround((2 * i) / headDim))));
  const cos = new Float32Array(batch * steps * headDim);
  const sin = new Float32Array(batch * steps * headDim);
  for (let r = 0; r < batch * steps; r++) {
    for (let i = 0; i < half; i++) {
      const f = Math.fround(positions[r] * invFreq[i]);
      const c = Math.cos(f);
      const s = Math.sin(f);
      // emb = cat(freqs, freqs): both halves share the angle.
      cos[r * headDim + i] = cos[r * headDim + half + i] = c;
      sin[r * headDim + i] = sin[r * headDim + half + i] = s;
    }
  }
  return { cos: tf.tensor4d(cos, [batch, 1, steps, headDim]), sin: tf.tensor4d(sin, [batch, 1, steps, headDim]) };
}

/** x·cos + rotate_half(x)·sin, rotate_half(x) = cat(−x₂, x₁) over the last axis. */
function applyRotary(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor {
  const hd = x.shape[x.rank - 1] as number;
  const [x1, x2] = tf.split(x, [hd / 2, hd / 2], -1);
  return tf.add(tf.mul(x, cos), tf.mul(tf.concat([tf.neg(x2), x1], -1), sin));
}

/** Additive mask [B, 1, T, S] (0 = attend, MASKED = not): causal from offset `past`, and key padding. */
export function attentionBias(batch: number, steps: number, past: number, keyMask?: Int32Array): tf.Tensor4D {
  const total = past + steps;
  if (keyMask && keyMask.length !== batch * total) throw new Error(`attention mask has ${keyMask.length} values, expected [${batch}, ${total}] (past ${past} + new ${steps})`);
  const bias = new Float32Array(batch * steps * total);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < steps; t++) {
      const row = (b * steps + t) * total;
      for (let s = 0; s < total; s++) {
        const visible = s <= past + t && (!keyMask || keyMask[b * total + s] !== 0);
        if (!visible) bias[row + s] = MASKED;
      }
    }
  }
  return tf.tensor4d(bias, [batch, 1, steps, total]);
}

export class LlamaDecoder {
  constructor(
    readonly config: TextConfig,
    private readonly weights: Map<string, tf.Tensor>,
    private readonly linears: Linears
  ) {
    if (config.headDim % 2) throw new Error(`Llama: head_dim ${config.headDim} must be even for rotary embeddings`);
  }

  private weight(name: string): tf.Tensor {
    const t = this.weights.get(`text.${name}`);
    if (!t) throw new Error(`language model: missing weight text.${name}`);
    return t;
  }

  /** HF LlamaRMSNorm in float32: x · rsqrt(mean(x²) + eps) · w. */
  private rmsNorm(x: tf.Tensor, name: string): tf.Tensor {
    const variance = tf.mean(tf.square(x), -1, true);
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(variance, this.config.rmsNormEps))), this.weight(name));
  }

  /** Token ids [B, T] (int32) → embeddings [B, T, d]. */
  embed(ids: tf.Tensor): tf.Tensor {
    return tf.gather(this.weight('embed_tokens.weight'), tf.cast(ids, 'int32'));
  }

  private attention(
    i: number,
    x: tf.Tensor,
    rope: { cos: tf.Tensor; sin: tf.Tensor },
    bias: tf.Tensor,
    past: { k: tf.Tensor; v: tf.Tensor } | null,
    training: boolean,
    shared: { k: tf.Tensor; v: tf.Tensor } | null = null
  ): { out: tf.Tensor; k: tf.Tensor; v: tf.Tensor } {
    const { numHeads: heads, numKvHeads: kvHeads, headDim: hd } = this.config;
    const [b, t] = x.shape;
    const p = `text.layers.${i}.self_attn.`;
    const heads4 = (y: tf.Tensor, n: number): tf.Tensor => tf.transpose(tf.reshape(y, [b, t, n, hd]), [0, 2, 1, 3]);
    const q = applyRotary(heads4(this.linears.apply(`${p}q_proj`, x, training), heads), rope.cos, rope.sin);
    let k = applyRotary(heads4(this.linears.apply(`${p}k_proj`, x, training), kvHeads), rope.cos, rope.sin);
    let v = heads4(this.linears.apply(`${p}v_proj`, x, training), kvHeads);
    if (past) {
      k = tf.concat([past.k, k], 2);
      v = tf.concat([past.v, v], 2);
    }
    const s = k.shape[2] as number;
    const rep = heads / kvHeads;
    // GQA without repeating K/V: the `rep` query heads sharing a KV head are stacked along the query axis,
    // [B, kv, rep, T, hd] → [B·kv, rep·T, hd]; HF's repeat_kv maps head h to KV head ⌊h / rep⌋, the same grouping.
    const qs = tf.mul(q, 1 / Math.sqrt(hd));
    const qg = tf.reshape(qs, [b * kvHeads, rep * t, hd]);
    const scores = tf.reshape(bmm(qg, transposeLast2(tf.reshape(k, [b * kvHeads, s, hd]))), [b, heads, t, s]);
    let ctx: tf.Tensor;
    if (!shared) {
      const probs = tf.reshape(tf.softmax(tf.add(scores, bias)), [b * kvHeads, rep * t, s]);
      ctx = tf.reshape(bmm(probs, tf.reshape(v, [b * kvHeads, s, hd])), [b, heads, t, hd]);
    } else {
      // A batch-1 past before every row's own: all rows' queries of a KV head meet its keys in one product
      // ([kv, B·rep·T, hd] × [kv, hd, P]) instead of copying it B times; one softmax spans both parts.
      const sharedLen = shared.k.shape[2] as number;
      const byKvHead = (y: tf.Tensor, n: number): tf.Tensor => tf.reshape(tf.transpose(tf.reshape(y, [b, kvHeads, rep * t, n]), [1, 0, 2, 3]), [kvHeads, b * rep * t, n]);
      const byRow = (y: tf.Tensor, n: number): tf.Tensor => tf.reshape(tf.transpose(tf.reshape(y, [kvHeads, b, rep * t, n]), [1, 0, 2, 3]), [b, heads, t, n]);
      const sharedScores = byRow(bmm(byKvHead(qs, hd), transposeLast2(tf.reshape(shared.k, [kvHeads, sharedLen, hd]))), sharedLen);
      const [sharedProbs, ownProbs] = tf.split(tf.softmax(tf.add(tf.concat([sharedScores, scores], 3), bias)), [sharedLen, s], 3);
      const own = tf.reshape(bmm(tf.reshape(ownProbs, [b * kvHeads, rep * t, s]), tf.reshape(v, [b * kvHeads, s, hd])), [b, heads, t, hd]);
      ctx = tf.add(own, byRow(bmm(byKvHead(sharedProbs, sharedLen), tf.reshape(shared.v, [kvHeads, sharedLen, hd])), hd));
    }
    const merged = tf.reshape(tf.transpose(ctx, [0, 2, 1, 3]), [b, t, heads * hd]);
    return { out: this.linears.apply(`${p}o_proj`, merged, training), k, v };
  }

  private mlp(i: number, x: tf.Tensor, training: boolean): tf.Tensor {
    const p = `text.layers.${i}.mlp.`;
    const gate = this.linears.apply(`${p}gate_proj`, x, training);
    const up = this.linears.apply(`${p}up_proj`, x, training);
    return this.linears.apply(`${p}down_proj`, tf.mul(tf.mul(gate, tf.sigmoid(gate)), up), training);
  }

  /**
   * Input embeddings [B, T, d] → final-normed hidden states [B, T, d]. With a cache, attends to the cached
   * positions too and appends this step's K/V to it; with a prefix, attends to the prefix's positions first.
   * Not wrapped in tidy: callers tidy the whole forward.
   */
  forward(x: tf.Tensor, opts: DecoderOptions = {}): tf.Tensor {
    const { hidden, kv } = this.run(x, opts);
    opts.cache?.commit(kv, x.shape[1] as number);
    return hidden;
  }

  /** The K/V of a batch-1 prefix [1, P, d] for later forwards over rows that continue it (gradients flow). */
  encodePrefix(x: tf.Tensor, training = false): PrefixKv {
    if (x.shape[0] !== 1) throw new Error(`a shared prefix has batch 1, got [${x.shape}]`);
    return { kv: this.run(x, { training }).kv, length: x.shape[1] as number };
  }

  private run(x: tf.Tensor, opts: DecoderOptions): { hidden: tf.Tensor; kv: { k: tf.Tensor; v: tf.Tensor }[] } {
    const [b, t] = x.shape;
    const { cache, prefix, training = false } = opts;
    if (cache && prefix && training) throw new Error('a KV cache with a shared prefix is for inference');
    if (cache && cache.numLayers !== this.config.numLayers) throw new Error(`KvCache has ${cache.numLayers} layers, the decoder ${this.config.numLayers}`);
    if (cache && cache.batch !== null && cache.batch !== b) throw new Error(`KvCache holds batch ${cache.batch}, the input has batch ${b}`);
    if (prefix && prefix.kv.length !== this.config.numLayers) throw new Error(`prefix has ${prefix.kv.length} layers, the decoder ${this.config.numLayers}`);
    const pastLen = (prefix?.length ?? 0) + (cache?.length ?? 0);
    if (cache && prefix && prefix.kv.some(({ k }) => k.shape[0] !== 1)) throw new Error('a shared prefix has batch 1');
    let positions = opts.positions;
    if (positions && positions.length !== b * t) throw new Error(`positions have ${positions.length} values, expected [${b}, ${t}]`);
    if (!positions) {
      positions = new Int32Array(b * t);
      for (let r = 0; r < b; r++) for (let s = 0; s < t; s++) positions[r * t + s] = pastLen + s;
    }
    const rope = rotaryTables(positions, b, t, this.config.headDim, this.config.ropeTheta);
    const bias = attentionBias(b, t, pastLen, opts.keyMask);
    const pastOf = (i: number): { k: tf.Tensor; v: tf.Tensor } | null => {
      if (cache) return cache.layer(i);
      if (!prefix) return null;
      const { k, v } = prefix.kv[i];
      return b === 1 ? { k, v } : { k: tf.tile(k, [b, 1, 1, 1]), v: tf.tile(v, [b, 1, 1, 1]) };
    };
    const kv: { k: tf.Tensor; v: tf.Tensor }[] = [];
    let h = x;
    for (let i = 0; i < this.config.numLayers; i++) {
      const shared = cache && prefix ? prefix.kv[i] : null;
      const attn = this.attention(i, this.rmsNorm(h, `layers.${i}.input_layernorm.weight`), rope, bias, pastOf(i), training, shared);
      kv.push({ k: attn.k, v: attn.v });
      h = tf.add(h, attn.out);
      h = tf.add(h, this.mlp(i, this.rmsNorm(h, `layers.${i}.post_attention_layernorm.weight`), training));
    }
    return { hidden: this.rmsNorm(h, 'norm.weight'), kv };
  }

  /** Hidden states [..., d] → logits [..., vocab] through lm_head (or the tied embedding table). */
  logits(hidden: tf.Tensor, training = false): tf.Tensor {
    return this.linears.apply('lm_head', hidden, training);
  }
}
