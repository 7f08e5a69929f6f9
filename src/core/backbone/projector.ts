// LLaVA's multi-modal projector: vision features → the language model's embedding width,
// linear_1 → exact (erf) GELU → linear_2, as transformers' LlavaMultiModalProjector. Biases are optional
// (multimodal_projector_bias); the Linears bank applies whichever it was given.
import type * as tf from '@tensorflow/tfjs-core';
import type { Linears } from './lora';
import { gelu } from '../tensor/ops';

export const PROJECTOR_LINEARS = ['projector.linear_1', 'projector.linear_2'] as const;

/** features [..., visionHidden] → [..., textHidden]. */
export function projectFeatures(linears: Linears, features: tf.Tensor, training = false): tf.Tensor {
  return linears.apply(PROJECTOR_LINEARS[1], gelu(linears.apply(PROJECTOR_LINEARS[0], features, training)), training);
}
