// The CLIP ViT vision tower (transformers' CLIPVisionTransformer) up to the hidden state LLaVA reads:
// patch embedding + class token + position embeddings, pre_layrnorm, then pre-LN encoder layers. Hidden
// state 0 is the pre_layrnorm output and i the output of layer i, so later layers (and post_layernorm, which
// only feeds CLIP's pooled output) never run.
import * as tf from '@tensorflow/tfjs-core';
import type { ClipVisionConfig } from './config';
import type { Linears } from './lora';
import { bmm, gelu, layerNorm, transposeLast2 } from '../tensor/ops';

/** Hidden states 0 … numLayers; a negative index counts from the end, as Python's hidden_states[i]. */
export function resolveFeatureLayer(numLayers: number, featureLayer: number): number {
  const i = featureLayer < 0 ? numLayers + 1 + featureLayer : featureLayer;
  if (i < 0 || i > numLayers) throw new Error(`vision feature layer ${featureLayer} is out of range for ${numLayers} layers`);
  return i;
}

/** Linear module paths of the vision layers that run (for the Linears bank and LoRA). */
export function clipLinearPaths(layers: number): string[] {
  const paths: string[] = [];
  for (let i = 0; i < layers; i++) {
    const p = `vision.encoder.layers.${i}.`;
    paths.push(`${p}self_attn.q_proj`, `${p}self_attn.k_proj`, `${p}self_attn.v_proj`, `${p}self_attn.out_proj`, `${p}mlp.fc1`, `${p}mlp.fc2`);
  }
  return paths;
}

function quickGelu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.sigmoid(tf.mul(x, 1.702)));
}

export class ClipVisionTower {
  private readonly layers: number;
  /** Patch-embedding conv kernel as a [C·p·p, d] matrix (a stride-p conv is a matmul over patches). */
  private readonly patchMatrix: tf.Tensor2D;

  constructor(
    readonly config: ClipVisionConfig,
    private readonly weights: Map<string, tf.Tensor>,
    private readonly linears: Linears,
    featureLayer: number,
    private readonly dropCls: boolean
  ) {
    this.layers = resolveFeatureLayer(config.numLayers, featureLayer);
    const w = this.weight('embeddings.patch_embedding.weight');
    this.patchMatrix = tf.tidy(() => tf.transpose(tf.reshape(w, [config.hiddenSize, -1])) as tf.Tensor2D);
  }

  private weight(name: string): tf.Tensor {
    const t = this.weights.get(`vision.${name}`);
    if (!t) throw new Error(`vision tower: missing weight vision.${name}`);
    return t;
  }

  /** Number of tokens per image in the output. */
  get tokens(): number {
    const g = this.config.imageSize / this.config.patchSize;
    return g * g + (this.dropCls ? 0 : 1);
  }

  private embed(pixels: tf.Tensor4D): tf.Tensor {
    const { numChannels: c, patchSize: p, imageSize, hiddenSize: d } = this.config;
    const [n, ch, h, w] = pixels.shape;
    if (ch !== c || h !== imageSize || w !== imageSize) {
      throw new Error(`vision tower: pixel values are [${pixels.shape}], expected [N, ${c}, ${imageSize}, ${imageSize}]`);
    }
    const g = imageSize / p;
    // [N, C, g, p, g, p] → [N, g, g, C, p, p]: one row per patch, in the conv kernel's (C, kh, kw) order.
    const patches = tf.reshape(tf.transpose(tf.reshape(pixels, [n, c, g, p, g, p]), [0, 2, 4, 1, 3, 5]), [n * g * g, c * p * p]);
    const patchEmb = tf.reshape(tf.matMul(patches as tf.Tensor2D, this.patchMatrix), [n, g * g, d]);
    const cls = tf.tile(tf.reshape(this.weight('embeddings.class_embedding'), [1, 1, d]), [n, 1, 1]);
    const x = tf.add(tf.concat([cls, patchEmb], 1), this.weight('embeddings.position_embedding.weight'));
    return layerNorm(x, this.weight('pre_layrnorm.weight'), this.weight('pre_layrnorm.bias'), this.config.layerNormEps);
  }

  private attention(i: number, x: tf.Tensor, training: boolean): tf.Tensor {
    const { hiddenSize: d, numHeads: heads } = this.config;
    const hd = d / heads;
    const [n, t] = x.shape;
    const p = `vision.encoder.layers.${i}.self_attn.`;
    const split = (y: tf.Tensor): tf.Tensor => tf.reshape(tf.transpose(tf.reshape(y, [n, t, heads, hd]), [0, 2, 1, 3]), [n * heads, t, hd]);
    const q = split(tf.mul(this.linears.apply(`${p}q_proj`, x, training), 1 / Math.sqrt(hd)));
    const k = split(this.linears.apply(`${p}k_proj`, x, training));
    const v = split(this.linears.apply(`${p}v_proj`, x, training));
    const probs = tf.softmax(bmm(q, transposeLast2(k)));
    const ctx = tf.reshape(tf.transpose(tf.reshape(bmm(probs, v), [n, heads, t, hd]), [0, 2, 1, 3]), [n, t, d]);
    return this.linears.apply(`${p}out_proj`, ctx, training);
  }

  private layer(i: number, x: tf.Tensor, training: boolean): tf.Tensor {
    const p = `encoder.layers.${i}.`;
    const eps = this.config.layerNormEps;
    const h = tf.add(x, this.attention(i, layerNorm(x, this.weight(`${p}layer_norm1.weight`), this.weight(`${p}layer_norm1.bias`), eps), training));
    const normed = layerNorm(h, this.weight(`${p}layer_norm2.weight`), this.weight(`${p}layer_norm2.bias`), eps);
    const up = this.linears.apply(`vision.${p}mlp.fc1`, normed, training);
    const act = this.config.hiddenAct === 'quick_gelu' ? quickGelu(up) : gelu(up);
    return tf.add(h, this.linears.apply(`vision.${p}mlp.fc2`, act, training));
  }

  /** pixel values [N, C, H, W] → the selected hidden state [N, tokens, hiddenSize]. */
  features(pixels: tf.Tensor4D, training = false): tf.Tensor3D {
    return tf.tidy(() => {
      let x = this.embed(pixels);
      for (let i = 0; i < this.layers; i++) x = this.layer(i, x, training);
      return (this.dropCls ? tf.slice(x, [0, 1, 0], [-1, -1, -1]) : x) as tf.Tensor3D;
    });
  }

  dispose(): void {
    this.patchMatrix.dispose();
  }
}
