// The LLaVA-family backbone's configuration: the subset of a llava-hf config.json our architecture reads,
// parsed strictly (a missing or odd field names the file and the key), and written back in the same
// Hugging Face shape so transformers and our own loader read what we save.

/** CLIP ViT (the llava-hf vision tower) or the compact backbone's frozen MobileNetV2 grid encoder. */
export interface ClipVisionConfig {
  kind: 'clip';
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  imageSize: number;
  patchSize: number;
  numChannels: number;
  layerNormEps: number;
  hiddenAct: 'quick_gelu' | 'gelu';
}

/**
 * The compact backbone's vision tower: nsfwjs's MobileNetV2 (frozen, no weights in our checkpoint), its last
 * 7×7×1280 feature map average-pooled to gridSize × gridSize tokens of 1280 channels.
 */
export interface MobilenetVisionConfig {
  kind: 'mobilenet_v2';
  hiddenSize: number;
  gridSize: number;
  encoderId: string;
}

export type VisionConfig = ClipVisionConfig | MobilenetVisionConfig;

export interface TextConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  bosTokenId: number;
  eosTokenId: number;
  padTokenId: number;
}

export interface LlavaConfig {
  vision: VisionConfig;
  text: TextConfig;
  /** Activation between the projector's two linears (llava-hf: "gelu", exact erf form). */
  projectorHiddenAct: 'gelu';
  projectorBias: boolean;
  imageTokenIndex: number;
  /** Index into the vision tower's hidden states (embeddings output = 0; −1 = last layer). */
  visionFeatureLayer: number;
  /** "default" drops the CLS token, "full" keeps it. */
  visionFeatureSelectStrategy: 'default' | 'full';
}

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    message: string
  ) {
    super(`${file}: ${message}`);
    this.name = 'ConfigError';
  }
}

type Json = Record<string, unknown>;

function obj(v: unknown, file: string, key: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(file, `"${key}" must be an object`);
  return v as Json;
}

function num(o: Json, key: string, file: string, prefix: string, fallback?: number): number {
  const v = o[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new ConfigError(file, `missing "${prefix}${key}"`);
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ConfigError(file, `"${prefix}${key}" must be a number, got ${typeof v === 'number' ? v : JSON.stringify(v)}`);
  return v;
}

/**
 * Upper bounds far above any released LLaVA/LLaMA/CLIP (Llama 3 405B: hidden 16384, 126 layers, 128 heads,
 * vocab 128256): a config beyond them is hostile or broken, and refusing it here keeps absurd numbers out of
 * every later computation. The real guard against huge models is in openHfCheckpoint, which compares the
 * parameters the config implies with the bytes the weight files hold.
 */
const MAX_VALUE: Record<string, number> = {
  hidden_size: 1 << 16,
  intermediate_size: 1 << 18,
  num_hidden_layers: 1 << 10,
  num_attention_heads: 1 << 10,
  num_key_value_heads: 1 << 10,
  head_dim: 1 << 12,
  vocab_size: 1 << 22,
  max_position_embeddings: 1 << 24,
  image_size: 1 << 12,
  patch_size: 1 << 12,
  num_channels: 16,
  grid_size: 64
};

function positiveInt(o: Json, key: string, file: string, prefix: string, fallback?: number): number {
  const v = num(o, key, file, prefix, fallback);
  if (!Number.isInteger(v) || v <= 0) throw new ConfigError(file, `"${prefix}${key}" must be a positive integer, got ${v}`);
  const max = MAX_VALUE[key];
  if (max !== undefined && v > max) throw new ConfigError(file, `"${prefix}${key}" is ${v}, above the supported maximum ${max}`);
  return v;
}

function positiveNum(o: Json, key: string, file: string, prefix: string, fallback: number): number {
  const v = num(o, key, file, prefix, fallback);
  if (v <= 0) throw new ConfigError(file, `"${prefix}${key}" must be positive, got ${v}`);
  return v;
}

function tokenId(o: Json, key: string, fallback: number): number {
  const v = o[key];
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (Array.isArray(v) && typeof v[0] === 'number') return v[0];
  return fallback;
}

function parseVision(v: Json, file: string): VisionConfig {
  const p = 'vision_config.';
  if (v.model_type === 'almostrec_mobilenet_v2') {
    const encoderId = v.encoder_id;
    if (typeof encoderId !== 'string') throw new ConfigError(file, `missing "${p}encoder_id"`);
    return { kind: 'mobilenet_v2', hiddenSize: positiveInt(v, 'hidden_size', file, p), gridSize: positiveInt(v, 'grid_size', file, p), encoderId };
  }
  if (v.model_type !== undefined && v.model_type !== 'clip_vision_model') {
    throw new ConfigError(file, `"${p}model_type" is ${JSON.stringify(v.model_type)}; supported: clip_vision_model, almostrec_mobilenet_v2`);
  }
  const act = v.hidden_act ?? 'quick_gelu';
  if (act !== 'quick_gelu' && act !== 'gelu') throw new ConfigError(file, `"${p}hidden_act" ${JSON.stringify(act)} is not supported (quick_gelu, gelu)`);
  const cfg: ClipVisionConfig = {
    kind: 'clip',
    hiddenSize: positiveInt(v, 'hidden_size', file, p, 768),
    intermediateSize: positiveInt(v, 'intermediate_size', file, p, 3072),
    numLayers: positiveInt(v, 'num_hidden_layers', file, p, 12),
    numHeads: positiveInt(v, 'num_attention_heads', file, p, 12),
    imageSize: positiveInt(v, 'image_size', file, p, 224),
    patchSize: positiveInt(v, 'patch_size', file, p, 32),
    numChannels: positiveInt(v, 'num_channels', file, p, 3),
    layerNormEps: positiveNum(v, 'layer_norm_eps', file, p, 1e-5),
    hiddenAct: act
  };
  if (cfg.hiddenSize % cfg.numHeads) throw new ConfigError(file, `"${p}hidden_size" ${cfg.hiddenSize} is not divisible by num_attention_heads ${cfg.numHeads}`);
  if (cfg.patchSize > cfg.imageSize) throw new ConfigError(file, `"${p}patch_size" ${cfg.patchSize} is larger than image_size ${cfg.imageSize}`);
  if (cfg.imageSize % cfg.patchSize) throw new ConfigError(file, `"${p}image_size" ${cfg.imageSize} is not divisible by patch_size ${cfg.patchSize}`);
  return cfg;
}

function parseText(t: Json, file: string): TextConfig {
  const p = 'text_config.';
  if (t.model_type !== undefined && t.model_type !== 'llama') throw new ConfigError(file, `"${p}model_type" is ${JSON.stringify(t.model_type)}; only llama decoders are supported`);
  if (t.hidden_act !== undefined && t.hidden_act !== 'silu') throw new ConfigError(file, `"${p}hidden_act" ${JSON.stringify(t.hidden_act)} is not supported (silu)`);
  if (t.attention_bias === true || t.mlp_bias === true) throw new ConfigError(file, `"${p}attention_bias"/"mlp_bias" = true is not supported`);
  const hiddenSize = positiveInt(t, 'hidden_size', file, p, 4096);
  const numHeads = positiveInt(t, 'num_attention_heads', file, p, 32);
  const numKvHeads = positiveInt(t, 'num_key_value_heads', file, p, numHeads);
  if (numHeads % numKvHeads) throw new ConfigError(file, `"${p}num_attention_heads" ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  const rope = (t.rope_parameters ?? t.rope_scaling ?? null) as Json | null;
  if (rope && rope.rope_type !== undefined && rope.rope_type !== 'default') {
    throw new ConfigError(file, `"${p}rope_type" ${JSON.stringify(rope.rope_type)} is not supported (default)`);
  }
  const ropeTheta = rope && typeof rope.rope_theta === 'number' ? rope.rope_theta : num(t, 'rope_theta', file, p, 10000);
  if (!(ropeTheta > 0) || !Number.isFinite(ropeTheta)) throw new ConfigError(file, `"${p}rope_theta" must be a positive number, got ${ropeTheta}`);
  if ((t.head_dim === undefined || t.head_dim === null) && hiddenSize % numHeads) {
    throw new ConfigError(file, `"${p}hidden_size" ${hiddenSize} is not divisible by num_attention_heads ${numHeads} (and no head_dim is given)`);
  }
  return {
    vocabSize: positiveInt(t, 'vocab_size', file, p, 32000),
    hiddenSize,
    intermediateSize: positiveInt(t, 'intermediate_size', file, p, 11008),
    numLayers: positiveInt(t, 'num_hidden_layers', file, p, 32),
    numHeads,
    numKvHeads,
    headDim: positiveInt(t, 'head_dim', file, p, hiddenSize / numHeads),
    rmsNormEps: positiveNum(t, 'rms_norm_eps', file, p, 1e-6),
    ropeTheta,
    maxPositionEmbeddings: positiveInt(t, 'max_position_embeddings', file, p, 4096),
    tieWordEmbeddings: t.tie_word_embeddings === true,
    bosTokenId: tokenId(t, 'bos_token_id', 1),
    eosTokenId: tokenId(t, 'eos_token_id', 2),
    padTokenId: tokenId(t, 'pad_token_id', 0)
  };
}

/** Parses a llava-hf config.json object (`file` names it in errors). */
export function parseLlavaConfig(json: unknown, file: string): LlavaConfig {
  const c = obj(json, file, '<root>');
  if (c.model_type !== 'llava') throw new ConfigError(file, `"model_type" is ${JSON.stringify(c.model_type)}; expected "llava"`);
  const vision = parseVision(obj(c.vision_config, file, 'vision_config'), file);
  const text = parseText(obj(c.text_config, file, 'text_config'), file);
  const act = c.projector_hidden_act ?? 'gelu';
  if (act !== 'gelu') throw new ConfigError(file, `"projector_hidden_act" ${JSON.stringify(act)} is not supported (gelu)`);
  const strategy = c.vision_feature_select_strategy ?? 'default';
  if (strategy !== 'default' && strategy !== 'full') throw new ConfigError(file, `"vision_feature_select_strategy" must be "default" or "full"`);
  const layer = c.vision_feature_layer ?? -2;
  if (typeof layer !== 'number' || !Number.isInteger(layer)) throw new ConfigError(file, `"vision_feature_layer" must be one integer (lists of layers are not supported)`);
  if (vision.kind === 'clip' && (layer > vision.numLayers || layer < -(vision.numLayers + 1))) {
    throw new ConfigError(file, `"vision_feature_layer" ${layer} is out of range for ${vision.numLayers} vision layers`);
  }
  const imageTokenIndex = num(c, 'image_token_index', file, '', 32000);
  if (!Number.isInteger(imageTokenIndex) || imageTokenIndex < 0) throw new ConfigError(file, `"image_token_index" must be a non-negative integer, got ${imageTokenIndex}`);
  return {
    vision,
    text,
    projectorHiddenAct: 'gelu',
    projectorBias: c.multimodal_projector_bias !== false,
    imageTokenIndex,
    visionFeatureLayer: layer,
    visionFeatureSelectStrategy: strategy
  };
}

/** Number of image tokens one image expands to at the image token. */
export function imageTokensPerImage(cfg: LlavaConfig): number {
  if (cfg.vision.kind === 'mobilenet_v2') return cfg.vision.gridSize * cfg.vision.gridSize;
  const patches = (cfg.vision.imageSize / cfg.vision.patchSize) ** 2;
  return cfg.visionFeatureSelectStrategy === 'default' ? patches : patches + 1;
}

/** The config.json Hugging Face writes for this configuration (llava model_type, llama text config). */
export function toHfConfigJson(cfg: LlavaConfig): Json {
  const t = cfg.text;
  const v = cfg.vision;
  const vision: Json =
    v.kind === 'clip'
      ? {
          model_type: 'clip_vision_model',
          hidden_size: v.hiddenSize,
          intermediate_size: v.intermediateSize,
          num_hidden_layers: v.numLayers,
          num_attention_heads: v.numHeads,
          image_size: v.imageSize,
          patch_size: v.patchSize,
          num_channels: v.numChannels,
          layer_norm_eps: v.layerNormEps,
          hidden_act: v.hiddenAct
        }
      : { model_type: 'almostrec_mobilenet_v2', hidden_size: v.hiddenSize, grid_size: v.gridSize, encoder_id: v.encoderId };
  return {
    architectures: ['LlavaForConditionalGeneration'],
    model_type: 'llava',
    image_token_index: cfg.imageTokenIndex,
    projector_hidden_act: cfg.projectorHiddenAct,
    multimodal_projector_bias: cfg.projectorBias,
    vision_feature_layer: cfg.visionFeatureLayer,
    vision_feature_select_strategy: cfg.visionFeatureSelectStrategy,
    image_seq_length: imageTokensPerImage(cfg),
    tie_word_embeddings: t.tieWordEmbeddings,
    torch_dtype: 'float32',
    vision_config: vision,
    text_config: {
      model_type: 'llama',
      vocab_size: t.vocabSize,
      hidden_size: t.hiddenSize,
      intermediate_size: t.intermediateSize,
      num_hidden_layers: t.numLayers,
      num_attention_heads: t.numHeads,
      num_key_value_heads: t.numKvHeads,
      head_dim: t.headDim,
      rms_norm_eps: t.rmsNormEps,
      rope_theta: t.ropeTheta,
      max_position_embeddings: t.maxPositionEmbeddings,
      tie_word_embeddings: t.tieWordEmbeddings,
      hidden_act: 'silu',
      attention_bias: false,
      mlp_bias: false,
      bos_token_id: t.bosTokenId,
      eos_token_id: t.eosTokenId,
      pad_token_id: t.padTokenId
    }
  };
}
