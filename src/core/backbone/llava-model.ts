// LLaVA (transformers' LlavaForConditionalGeneration) over our internal weight names: vision tower →
// selected hidden state → projector gives each image's embeddings, which replace the
// <image> tokens of the prompt, in order; the Llama decoder then runs over the merged sequence.
// Base weights are plain tensors owned by the caller and never receive gradients; a LoRA adapter's
// variables do (tf.variableGrads). Every public method returns fresh tensors and frees its intermediates.
import * as tf from '@tensorflow/tfjs-core';
import { imageTokensPerImage, type LlavaConfig } from './config';
import { expectedTensors, visionLayersUsed } from './weight-names';
import { ClipVisionTower, clipLinearPaths } from './clip-vision';
import { projectFeatures, PROJECTOR_LINEARS } from './projector';
import { KvCache, LlamaDecoder, llamaLinearPaths, type PrefixKv } from './llama-decoder';
import { Linears, type LoraAdapter } from './lora';

/** A [B, T] batch of token ids (or of 0/1 mask values). */
export type TokenIds = number[][] | tf.Tensor2D;

export interface LlavaForwardInput {
  /** [B, T] token ids; image tokens (<image>) are already expanded (see expandImageTokens). */
  inputIds?: TokenIds;
  /** Ready input embeddings [B, T, d_model] instead of inputIds (no image merge then). */
  inputsEmbeds?: tf.Tensor;
  /** [B, past + T]: 1 = real token, 0 = padding (HF attention_mask). Absent: all ones. */
  attentionMask?: TokenIds;
  /** [B, T] explicit position ids. Absent: past + t, as HF's forward without position_ids. */
  positionIds?: TokenIds;
  /** Images for the <image> tokens, [N, C, H, W] (CLIP tower only). */
  pixelValues?: tf.Tensor4D;
  /** Or their embeddings, [N, tokensPerImage, d_model] (encodeImages / projectVisionFeatures output). */
  imageEmbeds?: tf.Tensor;
  /** Incremental decoding: attends to the cached positions and appends this step (inference only). */
  cache?: KvCache;
  /** A shared prefix every row continues (encodePrefix; training too); the attention mask covers it. */
  prefix?: PrefixKv;
  /** Enables LoRA dropout. */
  training?: boolean;
  /** Which logits to compute: every position [B, T, V] (default), each row's last real position [B, V], or none. */
  logits?: 'all' | 'last' | 'none';
}

export interface LlavaForwardOutput {
  /** Final-normed hidden states [B, T, d_model]. */
  hidden: tf.Tensor3D;
  logits?: tf.Tensor;
}

interface IdMatrix {
  data: Int32Array;
  rows: number;
  cols: number;
}

function idMatrix(ids: TokenIds, what: string): IdMatrix {
  if (Array.isArray(ids)) {
    const rows = ids.length;
    const cols = rows ? ids[0].length : 0;
    const data = new Int32Array(rows * cols);
    ids.forEach((row, r) => {
      if (row.length !== cols) throw new Error(`${what}: row ${r} has ${row.length} entries, row 0 has ${cols} (pad to one length)`);
      data.set(row, r * cols);
    });
    return { data, rows, cols };
  }
  if (ids.rank !== 2) throw new Error(`${what} must be [B, T], got [${ids.shape}]`);
  return { data: Int32Array.from(ids.dataSync()), rows: ids.shape[0], cols: ids.shape[1] };
}

/**
 * Each single <image> token becomes `tokensPerImage` image tokens, as the HF processor expands
 * `<image>` in the prompt (rows may end up of different lengths).
 */
export function expandImageTokens(ids: number[][], imageTokenIndex: number, tokensPerImage: number): number[][] {
  return ids.map((row) => row.flatMap((id) => (id === imageTokenIndex ? new Array<number>(tokensPerImage).fill(id) : [id])));
}

/** Per row, the index of the last position whose mask is set (T − 1 without a mask or a set position). */
function lastRealPositions(rows: number, steps: number, past: number, mask: IdMatrix | null): number[] {
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    let last = steps - 1;
    if (mask) while (last > 0 && mask.data[r * mask.cols + past + last] === 0) last--;
    out.push(last);
  }
  return out;
}

export class LlavaModel {
  readonly tokensPerImage: number;
  private readonly linears: Linears;
  private readonly vision: ClipVisionTower | null;
  private readonly decoder: LlamaDecoder;

  /**
   * `weights`: internal name → tensor (PyTorch shapes), kept by reference (the caller disposes them; the
   * model adds transposed copies of the linear weights, freed by dispose()). `lora`: optional adapter,
   * also the caller's.
   */
  constructor(
    readonly config: LlavaConfig,
    weights: Map<string, tf.Tensor>,
    readonly lora?: LoraAdapter
  ) {
    LlavaModel.checkWeights(config, weights);
    LlavaModel.checkAdapter(config, lora);
    this.tokensPerImage = imageTokensPerImage(config);
    this.linears = new Linears(lora);
    try {
      const visionPaths = config.vision.kind === 'clip' ? clipLinearPaths(visionLayersUsed(config)) : [];
      for (const path of [...visionPaths, ...PROJECTOR_LINEARS, ...llamaLinearPaths(config.text)]) {
        this.linears.add(path, weights.get(`${path}.weight`)!, weights.get(`${path}.bias`));
      }
      const head = config.text.tieWordEmbeddings ? 'text.embed_tokens.weight' : 'lm_head.weight';
      this.linears.add('lm_head', weights.get(head)!);
      this.vision =
        config.vision.kind === 'clip'
          ? new ClipVisionTower(config.vision, weights, this.linears, config.visionFeatureLayer, config.visionFeatureSelectStrategy === 'default')
          : null;
    } catch (e) {
      this.linears.dispose();
      throw e;
    }
    this.decoder = new LlamaDecoder(config.text, weights, this.linears);
  }

  /** Every tensor the forward reads must be there with its expected shape (later vision layers may be absent). */
  private static checkWeights(config: LlavaConfig, weights: Map<string, tf.Tensor>): void {
    const usedVision = visionLayersUsed(config);
    const problems: string[] = [];
    for (const [name, shape] of expectedTensors(config)) {
      const layer = /^vision\.encoder\.layers\.(\d+)\./.exec(name);
      if ((layer && Number(layer[1]) >= usedVision) || name.startsWith('vision.post_layernorm.')) continue;
      const t = weights.get(name);
      if (!t) problems.push(`missing ${name}`);
      else if (t.shape.join(',') !== shape.join(',')) problems.push(`${name} is [${t.shape}], expected [${shape}]`);
      else if (t.dtype !== 'float32') problems.push(`${name} is ${t.dtype}, expected float32`);
    }
    if (problems.length) {
      const more = problems.length > 8 ? ` … and ${problems.length - 8} more` : '';
      throw new Error(`LLaVA weights do not match the config: ${problems.slice(0, 8).join('; ')}${more}`);
    }
  }

  /** Every adapted module must be a linear layer of this architecture (catches a mis-mapped adapter). */
  private static checkAdapter(config: LlavaConfig, lora?: LoraAdapter): void {
    if (!lora) return;
    const expected = expectedTensors(config);
    expected.set('lm_head.weight', [config.text.vocabSize, config.text.hiddenSize]);
    // Every vision layer counts (a PEFT adapter has modules in the layers past the selected one too).
    const visionPaths = config.vision.kind === 'clip' ? clipLinearPaths(config.vision.numLayers) : [];
    const linears = new Set([...visionPaths, ...PROJECTOR_LINEARS, ...llamaLinearPaths(config.text), 'lm_head']);
    for (const path of lora.paths()) {
      const shape = expected.get(`${path}.weight`);
      if (!linears.has(path) || !shape) throw new Error(`LoRA module ${path} is not a linear layer of this model`);
      const { inDim, outDim } = lora.shape(path)!;
      if (shape[0] !== outDim || shape[1] !== inDim) throw new Error(`LoRA module ${path} is [${outDim}, ${inDim}], the layer is [${shape}]`);
    }
  }

  /** An empty KV cache for this model's decoder. */
  newCache(): KvCache {
    return new KvCache(this.config.text.numLayers);
  }

  /** Images [N, C, H, W] → their embeddings [N, tokensPerImage, d_model] (CLIP tower → select → projector). */
  encodeImages(pixelValues: tf.Tensor4D, training = false): tf.Tensor3D {
    if (!this.vision) {
      throw new Error(`the ${this.config.vision.kind} vision tower has no weights here: compute its features elsewhere and call projectVisionFeatures`);
    }
    const vision = this.vision;
    return tf.tidy(() => projectFeatures(this.linears, vision.features(pixelValues, training), training) as tf.Tensor3D);
  }

  /** Precomputed vision-tower features [N, tokens, visionHidden] → embeddings [N, tokens, d_model]. */
  projectVisionFeatures(features: tf.Tensor, training = false): tf.Tensor3D {
    const hidden = this.config.vision.hiddenSize;
    if (features.rank !== 3 || features.shape[2] !== hidden) throw new Error(`vision features must be [N, tokens, ${hidden}], got [${features.shape}]`);
    return tf.tidy(() => projectFeatures(this.linears, features, training) as tf.Tensor3D);
  }

  /** Token ids [B, T] → embeddings [B, T, d_model]; image tokens (<image>) past the vocabulary look up row 0. */
  embedTokens(ids: TokenIds): tf.Tensor3D {
    return tf.tidy(() => this.embedIds(idMatrix(ids, 'input ids')));
  }

  private embedIds(ids: IdMatrix): tf.Tensor3D {
    const vocab = this.config.text.vocabSize;
    const lookup = ids.data.map((id) => (id === this.config.imageTokenIndex && id >= vocab ? 0 : id));
    const bad = lookup.findIndex((id) => id < 0 || id >= vocab);
    if (bad >= 0) throw new Error(`token id ${lookup[bad]} is outside the vocabulary [0, ${vocab})`);
    return this.decoder.embed(tf.tensor2d(lookup, [ids.rows, ids.cols], 'int32')) as tf.Tensor3D;
  }

  /** HF expandImageTokens with this model's image token and tokens per image. */
  expandImageTokens(ids: number[][]): number[][] {
    return expandImageTokens(ids, this.config.imageTokenIndex, this.tokensPerImage);
  }

  /**
   * Replaces the embeddings at the image-token positions, in row-major order, by the image embeddings
   * [N, tokensPerImage, d] flattened (HF's masked_scatter). A gather over [text; image] rows, so gradients
   * reach both.
   */
  private mergeImages(ids: IdMatrix, text: tf.Tensor, images: tf.Tensor): tf.Tensor {
    const d = this.config.text.hiddenSize;
    if (images.rank !== 3 || images.shape[2] !== d) throw new Error(`image embeddings must be [N, tokens, ${d}], got [${images.shape}]`);
    const imageRows = images.shape[0] * images.shape[1]!;
    const n = ids.data.length;
    const index = new Int32Array(n);
    let k = 0;
    for (let i = 0; i < n; i++) index[i] = ids.data[i] === this.config.imageTokenIndex ? n + k++ : i;
    if (k !== imageRows) {
      throw new Error(
        `image features and image tokens do not match: ${k} image tokens in the input ids, ${images.shape[0]} image(s) × ${images.shape[1]} tokens = ${imageRows} features` +
          ` (expand each <image> token to ${this.tokensPerImage} tokens with expandImageTokens)`
      );
    }
    const table = tf.concat([tf.reshape(text, [n, d]), tf.reshape(images, [imageRows, d])]);
    return tf.reshape(tf.gather(table, tf.tensor1d(index, 'int32')), [ids.rows, ids.cols, d]);
  }

  private inputEmbeddings(input: LlavaForwardInput): { embeds: tf.Tensor; ids: IdMatrix | null } {
    const { inputIds, inputsEmbeds, pixelValues, imageEmbeds } = input;
    if ((inputIds === undefined) === (inputsEmbeds === undefined)) throw new Error('give exactly one of inputIds and inputsEmbeds');
    if (pixelValues && imageEmbeds) throw new Error('give pixelValues or imageEmbeds, not both');
    if (inputsEmbeds) {
      if (pixelValues || imageEmbeds) throw new Error('images are merged at the image tokens of inputIds: with inputsEmbeds, place their embeddings yourself');
      if (inputsEmbeds.rank !== 3 || inputsEmbeds.shape[2] !== this.config.text.hiddenSize) {
        throw new Error(`inputsEmbeds must be [B, T, ${this.config.text.hiddenSize}], got [${inputsEmbeds.shape}]`);
      }
      return { embeds: inputsEmbeds, ids: null };
    }
    const ids = idMatrix(inputIds!, 'input ids');
    const text = this.embedIds(ids);
    const images = pixelValues ? this.encodeImages(pixelValues, input.training) : imageEmbeds;
    const hasImageTokens = ids.data.includes(this.config.imageTokenIndex);
    if (!images) {
      if (hasImageTokens) throw new Error(`the input ids hold image tokens (${this.config.imageTokenIndex}) but no pixelValues or imageEmbeds were given`);
      return { embeds: text, ids };
    }
    return { embeds: this.mergeImages(ids, text, images), ids };
  }

  /**
   * The K/V of a prefix that every row of later forwards continues (e.g. a constant prompt): one pass over it
   * for a whole batch instead of one per row, inside the gradient tape.
   */
  encodePrefix(input: Pick<LlavaForwardInput, 'inputIds' | 'inputsEmbeds' | 'training'>): PrefixKv {
    return tf.tidy(() => this.decoder.encodePrefix(this.inputEmbeddings(input).embeds, input.training) as unknown as tf.TensorContainer) as unknown as PrefixKv;
  }

  /** The full forward pass: hidden states and (by default all) logits. */
  forward(input: LlavaForwardInput): LlavaForwardOutput {
    const { cache, training = false, logits = 'all' } = input;
    if (cache && training) throw new Error('the KV cache is for inference: do not combine it with training');
    return tf.tidy(() => {
      const { embeds } = this.inputEmbeddings(input);
      const [rows, steps] = embeds.shape;
      const past = (cache?.length ?? 0) + (input.prefix?.length ?? 0);
      const mask = input.attentionMask ? idMatrix(input.attentionMask, 'attention mask') : null;
      if (mask && (mask.rows !== rows || mask.cols !== past + steps)) {
        throw new Error(`attention mask is [${mask.rows}, ${mask.cols}], expected [${rows}, ${past + steps}] (cached ${past} + new ${steps})`);
      }
      const positions = input.positionIds ? idMatrix(input.positionIds, 'position ids') : null;
      if (positions && (positions.rows !== rows || positions.cols !== steps)) throw new Error(`position ids are [${positions.rows}, ${positions.cols}], expected [${rows}, ${steps}]`);
      const hidden = this.decoder.forward(embeds, { keyMask: mask?.data, positions: positions?.data, cache, prefix: input.prefix, training }) as tf.Tensor3D;
      if (logits === 'none') return { hidden };
      if (logits === 'all') return { hidden, logits: this.decoder.logits(hidden, training) };
      return { hidden, logits: this.decoder.logits(this.pickPositions(hidden, lastRealPositions(rows, steps, past, mask)), training) };
    });
  }

  /** hidden [B, T, d] → rows [B, d] at one position per row. */
  private pickPositions(hidden: tf.Tensor, positions: number[]): tf.Tensor2D {
    const [rows, steps, d] = hidden.shape;
    const index = tf.tensor1d(positions.map((p, r) => r * steps + p), 'int32');
    return tf.gather(tf.reshape(hidden, [rows * steps, d]), index) as tf.Tensor2D;
  }

  /**
   * The final hidden state at each row's last real position [B, d_model] (last position whose attention
   * mask is 1, so left and right padding both work): ALMOSTREC's F.
   */
  lastHidden(input: Omit<LlavaForwardInput, 'logits'>): tf.Tensor2D {
    return tf.tidy(() => {
      const { hidden } = this.forward({ ...input, logits: 'none' });
      const [rows, steps] = hidden.shape;
      const mask = input.attentionMask ? idMatrix(input.attentionMask, 'attention mask') : null;
      const past = mask ? mask.cols - steps : 0;
      return this.pickPositions(hidden, lastRealPositions(rows, steps, past, mask));
    });
  }

  /** Frees the model's own tensors (transposed weight copies); weights and adapter stay with the caller. */
  dispose(): void {
    this.vision?.dispose();
    this.linears.dispose();
  }
}
