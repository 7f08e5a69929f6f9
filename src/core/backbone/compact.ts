// The compact backbone: the LLaVA architecture at a size 2 CPU cores can pretrain in minutes. Vision is
// nsfwjs's MobileNetV2 (frozen, weights from the npm package, not in our checkpoint) pooled to a g×g grid of
// 1280-d tokens; projector and decoder are ours, initialised like transformers' LlamaForCausalLM
// (N(0, 0.02) linears and embeddings, RMSNorm weights 1, biases 0) and pretrained by pretrain.ts.
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../tensor/rng';
import type { LlavaConfig } from './config';
import { expectedTensors } from './weight-names';

/** LLaMA-2 / LLaVA-1.5 vocabulary (32,000) plus LLaVA's added `<image>` token. */
export const COMPACT_VOCAB = 32001;
export const COMPACT_IMAGE_TOKEN = 32000;
export const MOBILENET_CHANNELS = 1280;

export interface CompactShape {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  intermediateSize: number;
  gridSize: number;
  maxTokens: number;
}

export function compactConfig(p: CompactShape, encoderId: string): LlavaConfig {
  if (p.hiddenSize % p.numHeads) throw new Error(`decoder width ${p.hiddenSize} is not divisible by ${p.numHeads} heads`);
  if (p.numHeads % p.numKvHeads) throw new Error(`${p.numHeads} attention heads are not a multiple of ${p.numKvHeads} KV heads`);
  const headDim = p.hiddenSize / p.numHeads;
  if (headDim % 2) throw new Error(`head size ${headDim} must be even for rotary embeddings`);
  return {
    vision: { kind: 'mobilenet_v2', hiddenSize: MOBILENET_CHANNELS, gridSize: p.gridSize, encoderId },
    text: {
      vocabSize: COMPACT_VOCAB,
      hiddenSize: p.hiddenSize,
      intermediateSize: p.intermediateSize,
      numLayers: p.numLayers,
      numHeads: p.numHeads,
      numKvHeads: p.numKvHeads,
      headDim,
      rmsNormEps: 1e-6,
      ropeTheta: 10000,
      maxPositionEmbeddings: Math.max(512, p.maxTokens),
      // Tied input/output embeddings halve the 32k-row tables' cost on a CPU.
      tieWordEmbeddings: true,
      bosTokenId: 1,
      eosTokenId: 2,
      padTokenId: 0
    },
    projectorHiddenAct: 'gelu',
    projectorBias: true,
    imageTokenIndex: COMPACT_IMAGE_TOKEN,
    visionFeatureLayer: -1,
    visionFeatureSelectStrategy: 'full'
  };
}

/** Fresh weights for `cfg` (seeded), named as weight-names.ts. */
export function initialWeights(cfg: LlavaConfig, seed: number): Map<string, tf.Tensor> {
  const rng = new Rng(seed);
  const out = new Map<string, tf.Tensor>();
  for (const [name, shape] of expectedTensors(cfg)) {
    const size = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    if (/norm\.weight$|layernorm\.weight$/.test(name)) data.fill(1);
    else if (!name.endsWith('.bias')) for (let i = 0; i < size; i++) data[i] = 0.02 * rng.normal();
    out.set(name, tf.tensor(data, shape));
  }
  return out;
}

export function parameterCount(cfg: LlavaConfig): number {
  let n = 0;
  for (const shape of expectedTensors(cfg).values()) n += shape.reduce((a, b) => a * b, 1);
  return n;
}

export function describeArchitecture(cfg: LlavaConfig): string {
  const t = cfg.text;
  const v = cfg.vision;
  const vision = v.kind === 'mobilenet_v2' ? `MobileNetV2 grid ${v.gridSize}×${v.gridSize}` : `CLIP ViT ${v.numLayers}×${v.hiddenSize} (${v.imageSize} px / ${v.patchSize})`;
  return `${vision} → MLP → LLaMA ${t.numLayers}×${t.hiddenSize} (${t.numHeads} heads, ${t.numKvHeads} KV; ${t.vocabSize.toLocaleString('en-US')} tokens)`;
}
