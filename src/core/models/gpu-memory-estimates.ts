// What a training run keeps on the GPU, per model family, from its config and context (train/gpu-memory.ts
// compares it with the adapter's limits before a run on webgpu starts). Parameters are counted exactly from
// the spec's shapes; activations are the tensors one step keeps for its backward pass, per family, with
// small constant factors for the elementwise intermediates (an estimate, rounded up rather than down).
import type { PretrainParams } from '../backbone/pretrain';
import { compactConfig } from '../backbone/compact';
import type { TextConfig } from '../backbone/config';
import { expectedTensors } from '../backbone/weight-names';
import { defaultChunkRows } from '../tensor/ops';
import type { MemoryEstimate } from '../train/gpu-memory';
import type { ModelContext, TrainableKind } from '../train/model-spec';
import { modelSpec } from './registry';

const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** The tied softmax cross-entropy over `classes` for `rows` targets (tensor/ops.ts): its kept probabilities and one live chunk. */
export function crossEntropyFloats(rows: number, classes: number): { activations: number; largest: number } {
  const chunk = Math.min(rows, defaultChunkRows(classes));
  const kept = rows * classes <= 64 * 1024 * 1024 ? rows * classes : 0;
  return { activations: kept + 3 * chunk * classes, largest: chunk * classes };
}

/** One transformer block over B × L positions of width d with `heads` attention maps of L × (past + L). */
function blockFloats(positions: number, d: number, ffn: number, attention: number): number {
  return 12 * positions * d + 3 * positions * ffn + 3 * attention;
}

/** Activations of a Llama decoder of `text` over B rows of T tokens after a shared prefix of P. */
function decoderFloats(text: TextConfig, batch: number, tokens: number, prefix = 0): { activations: number; largest: number } {
  const attention = batch * text.numHeads * tokens * (prefix + tokens);
  return { activations: text.numLayers * blockFloats(batch * tokens, text.hiddenSize, text.intermediateSize, attention), largest: attention };
}

const num = (config: Record<string, number>, key: string, fallback: number): number => (typeof config[key] === 'number' ? config[key] : fallback);

/** A training run of `kind` with `config` on `ctx` (parameters exact, activations per family). */
export function trainingMemory(kind: TrainableKind, config: Record<string, number>, ctx: ModelContext): MemoryEstimate {
  const shapes = modelSpec(kind).paramShapes(config as never, ctx);
  const parameters = shapes.reduce((a, [, s]) => a + size(s), 0);
  const largestParam = Math.max(0, ...shapes.map(([, s]) => size(s)));
  const items = ctx.data.numItems + 1;
  const B = num(config, 'batchSize', 1);
  const features = ctx.itemFeatures ? ctx.itemFeatures.values.length : 0;
  const est = (frozen: number, activations: number, largest: number): MemoryEstimate => ({
    parameters,
    frozen,
    activations,
    largestTensor: Math.max(largestParam, largest)
  });
  switch (kind) {
    case 'sasrec':
    case 'sasrec_id_v': {
      const L = num(config, 'maxLen', 1);
      const d = num(config, 'hiddenSize', 1);
      const attention = B * num(config, 'numHeads', 1) * L * L;
      const ce = crossEntropyFloats(B * L, items);
      const blocks = num(config, 'numBlocks', 1) * blockFloats(B * L, d, d, attention);
      return est(features, 3 * B * L * d + blocks + ce.activations, Math.max(attention, ce.largest));
    }
    case 'gru4rec': {
      const L = num(config, 'maxLen', 1);
      const E = num(config, 'embeddingSize', 1);
      const H = num(config, 'hiddenSize', 1);
      const ce = crossEntropyFloats(B * L, items);
      return est(0, B * L * (2 * E + num(config, 'numLayers', 1) * 8 * H) + ce.activations, ce.largest);
    }
    case 'nextitnet': {
      const L = num(config, 'maxLen', 1);
      const E = num(config, 'embeddingSize', 1);
      const convs = num(config, 'numBlocks', 1) * 2 * 2;
      const ce = crossEntropyFloats(B * L, items);
      return est(0, B * L * (2 * E + convs * (num(config, 'kernelSize', 3) + 8) * E) + ce.activations, ce.largest);
    }
    case 'bpr':
      // Triples (user, positive, negative) of one batch: a few d-vectors each.
      return est(0, 8 * B * num(config, 'embeddingSize', 1), 0);
    case 'ncf': {
      const dm = num(config, 'mfEmbeddingSize', 1);
      const dp = num(config, 'mlpEmbeddingSize', 1);
      // Rows of the batch through both towers (the MLP's hidden widths at most 2·dp each).
      return est(0, 4 * B * (dm + 2 * dp + 4 * dp), 0);
    }
    case 'youtube_id_v': {
      const L = num(config, 'maxLen', 1);
      const E = num(config, 'embeddingSize', 1);
      const ce = crossEntropyFloats(B, items);
      return est(features, 2 * B * L * E + 4 * B * (E + num(config, 'hiddenSize', 1)) + ce.activations, ce.largest);
    }
    case 'almostrec':
    case 'e4srec':
    case 'tallrec':
    case 'llara':
    case 'vip5': {
      const b = ctx.backbone;
      if (!b) throw new Error(`${kind}: the GPU memory estimate needs the backbone`);
      const text = b.backbone.config.text;
      // The backbone's weights, the transposed copies of its linears (llava-model.ts) and the cached visual tokens.
      let weights = 0;
      for (const t of b.backbone.weights.values()) weights += t.size;
      const visual = b.visual ? b.visual.tokens.reduce((a, t) => a + (t ? t.length : 0), 0) : 0;
      const frozen = 2 * weights + visual;
      const history = num(config, 'historyLength', 10);
      const perItem = 2 + (num(config, 'useImages', 0) ? (b.visual?.tokensPerImage ?? 0) : 0) + (num(config, 'useText', 1) ? num(config, 'maxTitleTokens', 0) : 0);
      const tokens = history * perItem + 64;
      const decoder = decoderFloats(text, B, tokens);
      // Every ID token may be a target (interleaved layout); the LLM baselines score the vocabulary.
      const ce = crossEntropyFloats(B * history, kind === 'almostrec' || kind === 'e4srec' ? items : text.vocabSize);
      return est(frozen, B * tokens * text.hiddenSize + decoder.activations + ce.activations, Math.max(decoder.largest, ce.largest, text.vocabSize * text.hiddenSize));
    }
  }
}

/** Pretraining the compact backbone with `params` (its stage 2, where everything trains: the largest). */
export function pretrainMemory(params: PretrainParams): MemoryEstimate {
  const cfg = compactConfig(params, 'estimate');
  const tensors = [...expectedTensors(cfg).values()].map(size);
  const parameters = tensors.reduce((a, b) => a + b, 0);
  const B = params.batchSize;
  const imageTokens = params.gridSize * params.gridSize;
  const decoder = decoderFloats(cfg.text, B, params.maxTokens);
  const ce = crossEntropyFloats(B * params.maxTokens, cfg.text.vocabSize);
  // The posters' grids (1280 wide) and their projection, the token embeddings.
  const inputs = B * imageTokens * (1280 + 2 * cfg.text.hiddenSize) + B * params.maxTokens * cfg.text.hiddenSize;
  return {
    parameters,
    // The transposed copies of the linears, the tied head included.
    frozen: parameters,
    activations: inputs + decoder.activations + ce.activations,
    largestTensor: Math.max(...tensors, decoder.largest, ce.largest)
  };
}
