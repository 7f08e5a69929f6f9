// Backbones: LLaVA-family models the workbench can build ALMOSTREC on — a compact one pretrained in the
// app on a dataset's own items, or a Hugging Face llava-hf checkpoint folder registered from disk. Plain
// data and types only (the renderer imports this file directly), like models.ts.
import { int, real, type HyperParameter } from './models';
import type { BackendInfo } from './types';

export type BackboneSource = 'pretrained' | 'huggingface';

/** Visual tokens kept per image when caching a dataset's features (DESIGN.md §5: k ∈ {1, 4, 9, all}). */
export const VISUAL_TOKEN_COUNTS = [1, 4, 9, 'all'] as const;
export type VisualTokenCount = (typeof VISUAL_TOKEN_COUNTS)[number];
export type BackboneStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

/**
 * Pretraining stages, in the order they run: 0 language (the decoder alone on the captions as plain text),
 * 1 alignment (the projector alone on image → caption, decoder frozen), 2 end to end (decoder and projector).
 * Stage 0 came later; a backbone recorded before it has no stage0Steps in its config and ran none.
 */
export type PretrainStage = 0 | 1 | 2;
export const PRETRAIN_STAGES: readonly PretrainStage[] = [0, 1, 2];
export const PRETRAIN_STAGE_NAMES: Record<PretrainStage, string> = { 0: 'language', 1: 'projector', 2: 'decoder + projector' };

/** One pretraining step's record (what the UI charts). */
export interface PretrainPoint {
  step: number;
  stage: PretrainStage;
  loss: number;
  learningRate: number;
  seconds: number;
}

export interface BackboneSummary {
  id: number;
  name: string;
  source: BackboneSource;
  status: BackboneStatus;
  /** Dataset whose items it was pretrained on (null for a registered checkpoint). */
  datasetId: number | null;
  datasetName: string | null;
  /** The checkpoint folder (llava-hf layout). */
  path: string;
  /** Pretraining hyper-parameters (empty for a registered checkpoint). */
  config: Record<string, number>;
  /** Architecture in words, e.g. "MobileNetV2 grid 3×3 → MLP → LLaMA 4×256 (32,001 tokens)". */
  architecture: string | null;
  parameters: number | null;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
  error: string | null;
  /** What the pretraining ran on, threads included (2: a replica worker computed half of every step); null until it finishes, and for a registered checkpoint. */
  backend: BackendInfo | null;
}

/**
 * Mean next-token cross-entropy (nats per token, over the caption tokens and </s>) on the held-out items'
 * captions, measured before training ('start') and after each stage that ran.
 */
export interface HeldOutLoss {
  after: 'start' | PretrainStage;
  /** Global step it was measured at. */
  step: number;
  /** Every held-out caption as text only: <s> caption </s> (what stages 0 and 2 train on). */
  text: number;
  /** The held-out items with a poster: <s> <image>×grid² caption </s> (what stages 1 and 2 train on). */
  withPoster: number | null;
  /**
   * The same items and the same caption tokens without the image tokens. The gap to withPoster with an untrained
   * projector is what any leading tokens give; its growth over the stages, what the posters' content gives.
   */
  withoutPoster: number | null;
}

export interface HeldOutReport {
  /** Held-out items (a fixed, seeded share of the dataset's captions that never train). */
  items: number;
  /** Of them, with a poster. */
  posters: number;
  /** Tokens each figure averages over. */
  textTokens: number;
  posterTokens: number;
  points: HeldOutLoss[];
}

export interface BackboneDetail extends BackboneSummary {
  history: PretrainPoint[];
  /** Held-out caption loss per stage (null: none measured, e.g. a registered checkpoint or heldOutPercent 0). */
  heldOut: HeldOutReport | null;
}

/**
 * The compact backbone's architecture and pretraining recipe: stage 0 trains the decoder on the captions as
 * text; then LLaVA's two stages — stage 1 aligns the projector on image → caption with the decoder frozen,
 * stage 2 trains decoder and projector on the captions. Defaults sized so all three stages, poster grids
 * included, finish within 15 minutes on 2 CPU cores for the embedded dataset.
 */
export const PRETRAIN_PARAMS: HyperParameter[] = [
  int('hiddenSize', 'Decoder width', 256, 32, 4096, 'd_model'),
  int('numLayers', 'Decoder layers', 4, 1, 64),
  int('numHeads', 'Attention heads', 4, 1, 64),
  int('numKvHeads', 'KV heads', 2, 1, 64, 'grouped-query attention'),
  int('intermediateSize', 'MLP width', 688, 8, 16384, 'SwiGLU hidden size'),
  int('gridSize', 'Image grid', 3, 1, 7, 'visual tokens per image = grid²'),
  int('maxTokens', 'Sequence length', 64, 16, 1024, 'tokens per training sequence'),
  int('batchSize', 'Batch size', 16, 1, 512),
  int('stage0Steps', 'Stage 0 steps', 200, 0, 100000, 'language: decoder on captions as text only'),
  int('stage1Steps', 'Stage 1 steps', 50, 0, 100000, 'projector alignment: image → caption'),
  int('stage2Steps', 'Stage 2 steps', 200, 0, 100000, 'decoder and projector on captions'),
  real('stage0LearningRate', 'Stage 0 LR', 1e-3, 1e-6, 1, 0.0001),
  real('stage1LearningRate', 'Stage 1 LR', 1e-3, 1e-6, 1, 0.0001),
  real('stage2LearningRate', 'Stage 2 LR', 1e-3, 1e-6, 1, 0.0001),
  int('warmupSteps', 'Warm-up steps', 20, 0, 10000),
  int('checkpointEvery', 'Checkpoint every', 50, 1, 100000, 'steps between resumable checkpoints'),
  int('heldOutPercent', 'Held-out captions %', 2, 0, 50, 'items whose captions never train; their loss is measured after each stage'),
  int('seed', 'Seed', 42, 0, 2 ** 31 - 1)
];

export function pretrainDefaults(): Record<string, number> {
  return Object.fromEntries(PRETRAIN_PARAMS.map((p) => [p.key, p.default]));
}

/** What a config recorded before stage 0 and the held-out split existed ran: neither. */
const BEFORE_STAGE_0: Record<string, number> = { stage0Steps: 0, heldOutPercent: 0 };

/**
 * The complete pretraining parameters of a recorded config: its own values, the catalogue defaults for the
 * rest — except for a config written before stage 0 existed (no stage0Steps), which keeps running without
 * stage 0 and without a held-out split, so its resumable state and history stay valid.
 */
export function pretrainParamsOf(config: Record<string, number>): Record<string, number> {
  return { ...pretrainDefaults(), ...('stage0Steps' in config ? {} : BEFORE_STAGE_0), ...config };
}

/** Total steps of a recorded config (all stages). */
export function pretrainTotalSteps(config: Record<string, number>): number {
  const p = pretrainParamsOf(config);
  return p.stage0Steps + p.stage1Steps + p.stage2Steps;
}

/** `base`, or the first "base-N" (N = 2, 3, …) not in `taken`. */
export function uniqueName(base: string, taken: readonly string[]): string {
  const used = new Set(taken);
  if (!used.has(base)) return base;
  let n = 2;
  while (used.has(`${base}-${n}`)) n++;
  return `${base}-${n}`;
}

/** "compact-<dataset>", or the first "compact-<dataset>-N" not in `taken` (the UI's and CLI's default name). */
export function defaultBackboneName(datasetName: string, taken: readonly string[]): string {
  return uniqueName(`compact-${datasetName}`, taken);
}
