// One internal name per backbone tensor, whatever key layout the checkpoint on disk uses. llava-hf
// checkpoints come in several layouts (transformers ≤ 4.51 "legacy", ≥ 4.52 "current", and 5.x, which saves
// back to a legacy-like layout without CLIP's `vision_model.` level); every reader maps to these names and
// every writer maps back.
//
//   vision.<CLIP VisionTransformer key>   e.g. vision.encoder.layers.0.self_attn.q_proj.weight
//   projector.linear_1.weight …
//   text.<LlamaModel key>                 e.g. text.layers.0.self_attn.q_proj.weight, text.embed_tokens.weight
//   lm_head.weight
import type { LlavaConfig } from './config';

export type KeyLayout = 'legacy' | 'current';

const READ_RULES: [RegExp, string][] = [
  [/^model\.vision_tower\.vision_model\./, 'vision.'],
  [/^model\.vision_tower\./, 'vision.'],
  [/^vision_tower\.vision_model\./, 'vision.'],
  [/^vision_tower\./, 'vision.'],
  [/^model\.multi_modal_projector\./, 'projector.'],
  [/^multi_modal_projector\./, 'projector.'],
  [/^model\.language_model\.model\./, 'text.'],
  [/^model\.language_model\./, 'text.'],
  [/^language_model\.model\./, 'text.'],
  [/^language_model\.lm_head\./, 'lm_head.'],
  [/^lm_head\./, 'lm_head.']
];

/** The internal name of a checkpoint key, or null for keys that are not backbone tensors. */
export function canonicalName(key: string): string | null {
  for (const [re, prefix] of READ_RULES) if (re.test(key)) return key.replace(re, prefix);
  return null;
}

/** The checkpoint key of an internal name in the given layout (legacy = what llava-hf repos on the Hub ship). */
export function hfKey(name: string, layout: KeyLayout): string {
  const [head, ...rest] = name.split('.');
  const tail = rest.join('.');
  switch (head) {
    case 'vision':
      return layout === 'legacy' ? `vision_tower.vision_model.${tail}` : `model.vision_tower.vision_model.${tail}`;
    case 'projector':
      return layout === 'legacy' ? `multi_modal_projector.${tail}` : `model.multi_modal_projector.${tail}`;
    case 'text':
      return layout === 'legacy' ? `language_model.model.${tail}` : `model.language_model.${tail}`;
    case 'lm_head':
      return layout === 'legacy' ? `language_model.lm_head.${tail}` : `lm_head.${tail}`;
    default:
      throw new Error(`not a backbone tensor name: ${name}`);
  }
}

/**
 * Every tensor the architecture reads, with its shape (PyTorch convention: Linear weight = [out, in]).
 * The mobilenet_v2 vision tower has no tensors in the checkpoint (its weights ship in the nsfwjs package).
 */
export function expectedTensors(cfg: LlavaConfig): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const v = cfg.vision;
  if (v.kind === 'clip') {
    const d = v.hiddenSize;
    const patches = (v.imageSize / v.patchSize) ** 2;
    m.set('vision.embeddings.class_embedding', [d]);
    m.set('vision.embeddings.patch_embedding.weight', [d, v.numChannels, v.patchSize, v.patchSize]);
    m.set('vision.embeddings.position_embedding.weight', [patches + 1, d]);
    m.set('vision.pre_layrnorm.weight', [d]);
    m.set('vision.pre_layrnorm.bias', [d]);
    for (let i = 0; i < v.numLayers; i++) {
      const p = `vision.encoder.layers.${i}.`;
      for (const proj of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) {
        m.set(`${p}self_attn.${proj}.weight`, [d, d]);
        m.set(`${p}self_attn.${proj}.bias`, [d]);
      }
      for (const ln of ['layer_norm1', 'layer_norm2']) {
        m.set(`${p}${ln}.weight`, [d]);
        m.set(`${p}${ln}.bias`, [d]);
      }
      m.set(`${p}mlp.fc1.weight`, [v.intermediateSize, d]);
      m.set(`${p}mlp.fc1.bias`, [v.intermediateSize]);
      m.set(`${p}mlp.fc2.weight`, [d, v.intermediateSize]);
      m.set(`${p}mlp.fc2.bias`, [d]);
    }
    m.set('vision.post_layernorm.weight', [d]);
    m.set('vision.post_layernorm.bias', [d]);
  }
  const t = cfg.text;
  const dm = t.hiddenSize;
  m.set('projector.linear_1.weight', [dm, v.hiddenSize]);
  m.set('projector.linear_2.weight', [dm, dm]);
  if (cfg.projectorBias) {
    m.set('projector.linear_1.bias', [dm]);
    m.set('projector.linear_2.bias', [dm]);
  }
  m.set('text.embed_tokens.weight', [t.vocabSize, dm]);
  for (let i = 0; i < t.numLayers; i++) {
    const p = `text.layers.${i}.`;
    m.set(`${p}input_layernorm.weight`, [dm]);
    m.set(`${p}post_attention_layernorm.weight`, [dm]);
    m.set(`${p}self_attn.q_proj.weight`, [t.numHeads * t.headDim, dm]);
    m.set(`${p}self_attn.k_proj.weight`, [t.numKvHeads * t.headDim, dm]);
    m.set(`${p}self_attn.v_proj.weight`, [t.numKvHeads * t.headDim, dm]);
    m.set(`${p}self_attn.o_proj.weight`, [dm, t.numHeads * t.headDim]);
    m.set(`${p}mlp.gate_proj.weight`, [t.intermediateSize, dm]);
    m.set(`${p}mlp.up_proj.weight`, [t.intermediateSize, dm]);
    m.set(`${p}mlp.down_proj.weight`, [dm, t.intermediateSize]);
  }
  m.set('text.norm.weight', [dm]);
  if (!t.tieWordEmbeddings) m.set('lm_head.weight', [t.vocabSize, dm]);
  return m;
}

/**
 * The number of values expectedTensors(cfg) holds, in closed form: no loop over layers and no shapes built,
 * so a config claiming a billion layers is sized (as a float, exact up to 2^53) before anything is allocated.
 * Kept beside expectedTensors so the two change together (test/safety/hostile-files.test.ts compares them).
 */
export function expectedParameterCount(cfg: LlavaConfig): number {
  const v = cfg.vision;
  let n = 0;
  if (v.kind === 'clip') {
    const d = v.hiddenSize;
    const patches = (v.imageSize / v.patchSize) ** 2;
    const layer = 4 * (d * d + d) + 4 * d + 2 * v.intermediateSize * d + v.intermediateSize + d;
    n += d + d * v.numChannels * v.patchSize * v.patchSize + (patches + 1) * d + 2 * d + v.numLayers * layer + 2 * d;
  }
  const t = cfg.text;
  const dm = t.hiddenSize;
  n += dm * v.hiddenSize + dm * dm + (cfg.projectorBias ? 2 * dm : 0);
  const q = t.numHeads * t.headDim;
  const kv = t.numKvHeads * t.headDim;
  const layer = 2 * dm + 2 * q * dm + 2 * kv * dm + 3 * t.intermediateSize * dm;
  n += t.vocabSize * dm + t.numLayers * layer + dm + (t.tieWordEmbeddings ? 0 : t.vocabSize * dm);
  return n;
}

/** Bytes the expected tensors take in float32 (what loading needs before any activation). */
export function float32Bytes(cfg: LlavaConfig): number {
  let n = 0;
  for (const shape of expectedTensors(cfg).values()) n += shape.reduce((a, b) => a * b, 1);
  return n * 4;
}

/**
 * Vision-tower layers a forward pass needs: hidden state `visionFeatureLayer` (0 = embeddings after
 * pre_layrnorm, −1 = last layer) only depends on the layers before it, so later ones need not run or load.
 */
export function visionLayersUsed(cfg: LlavaConfig): number {
  if (cfg.vision.kind !== 'clip') return 0;
  const n = cfg.vision.numLayers;
  const l = cfg.visionFeatureLayer;
  return l < 0 ? n + 1 + l : l;
}
