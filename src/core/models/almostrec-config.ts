// ALMOSTREC's hyper-parameters (the catalogue entry in src/shared/models.ts) as a typed config, and the
// decoding of the entries the catalogue stores as plain numbers: k = 0 for 'all' and the LoRA target bitmask.
import type { TrainingConfig } from '../../shared/api';
import { LORA_TARGET_BITS } from '../../shared/models';
import type { TokenPoolK } from '../backbone/image-token-pool';
import type { LoraConfig, LoraTarget } from '../backbone/lora';
import type { OptimizerSettings } from '../train/model-spec';

export interface AlmostrecConfig extends TrainingConfig {
  warmupSteps: number;
  gradAccum: number;
  /** 0: constant learning rate after the warm-up; 1: cosine decay to 0 over the run's epochs. */
  lrSchedule: number;
  /** Catalog id of a finished backbone (0 = not chosen: refused at run start). */
  backboneId: number;
  /** Catalog id of the finished SASRec/GRU4Rec run whose item_embeddings is M (0 = not chosen). */
  seqRunId: number;
  historyLength: number;
  /** k visual tokens per image: 1, 4, 9, or 0 for all of them. */
  visualTokens: number;
  samplesPerUser: number;
  maxTitleTokens: number;
  /** Titles the prompt lists (the newest ones); 0 = all historyLength of them. */
  promptTitles: number;
  /** Dropout rate on the ID tokens while training. */
  idDropout: number;
  /** 1: every epoch shifts each user's training windows by a random phase (interleaved layout). */
  windowPhase: number;
  loraRank: number;
  loraAlpha: number;
  loraDropout: number;
  /** Bitmask over LORA_TARGET_BITS. */
  loraTargets: number;
  /** Ablation switches, 0 or 1. */
  useLora: number;
  useImages: number;
  useText: number;
  pretrainedIds: number;
  initOutputFromIds: number;
  /** 0 = concat V, T, S (eq. 1); 1 = interleaved per item. */
  layout: number;
}

/** The pooling size of the visual-token cache for `visualTokens`. */
export function tokenPoolK(visualTokens: number): TokenPoolK {
  if (visualTokens === 0) return 'all';
  if (visualTokens === 1 || visualTokens === 4 || visualTokens === 9) return visualTokens;
  throw new Error(`ALMOSTREC: visualTokens ${visualTokens} must be 1, 4, 9 or 0 (all)`);
}

/** The LoRA target modules a bitmask selects, in LORA_TARGET_BITS order. */
export function loraTargetsOf(mask: number): LoraTarget[] {
  if (!Number.isInteger(mask) || mask < 1 || mask >= 1 << LORA_TARGET_BITS.length) {
    throw new Error(`ALMOSTREC: loraTargets ${mask} must be a bitmask from 1 to ${(1 << LORA_TARGET_BITS.length) - 1} (q 1, k 2, v 4, o 8, gate 16, up 32, down 64)`);
  }
  return LORA_TARGET_BITS.filter((_, i) => mask & (1 << i));
}

/** LoRA on the language model's layers only (the vision tower is bypassed by the cached tokens), or null when off. */
export function loraConfigOf(config: AlmostrecConfig): LoraConfig | null {
  if (!config.useLora) return null;
  return { r: config.loraRank, alpha: config.loraAlpha, dropout: config.loraDropout, targets: loraTargetsOf(config.loraTargets), towers: ['text'] };
}

/** The LLM recommenders' optimiser (the catalogue's llmTraining block): Adam with warm-up and gradient accumulation. */
export function llmOptimizer(config: Pick<AlmostrecConfig, 'learningRate' | 'gradAccum' | 'warmupSteps' | 'lrSchedule'>): OptimizerSettings {
  return { learningRate: config.learningRate, gradAccum: config.gradAccum, warmupSteps: config.warmupSteps, schedule: config.lrSchedule === 1 ? 'cosine' : 'constant' };
}
