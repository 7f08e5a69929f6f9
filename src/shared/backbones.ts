// Backbones: LLaVA-family models the workbench can build ALMOSTREC on — a compact one pretrained in the
// app on a dataset's own items, or a Hugging Face llava-hf checkpoint folder registered from disk. Plain
// data and types only (the renderer imports this file directly), like models.ts.
import { int, real, type HyperParameter } from './models';

export type BackboneSource = 'pretrained' | 'huggingface';

/** Visual tokens kept per image when caching a dataset's features (DESIGN.md §5: k ∈ {1, 4, 9, all}). */
export const VISUAL_TOKEN_COUNTS = [1, 4, 9, 'all'] as const;
export type VisualTokenCount = (typeof VISUAL_TOKEN_COUNTS)[number];
export type BackboneStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

/** One pretraining step's record (what the UI charts). */
export interface PretrainPoint {
  step: number;
  stage: 1 | 2;
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
}

export interface BackboneDetail extends BackboneSummary {
  history: PretrainPoint[];
}

/**
 * The compact backbone's architecture and pretraining recipe (LLaVA: stage 1 aligns the projector on
 * image → caption with the decoder frozen; stage 2 trains decoder and projector on the captions).
 * Defaults sized so both stages finish within ~15 minutes on 2 CPU cores for the embedded dataset.
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
  int('stage1Steps', 'Stage 1 steps', 50, 0, 100000, 'projector alignment: image → caption'),
  int('stage2Steps', 'Stage 2 steps', 200, 0, 100000, 'decoder on captions'),
  real('stage1LearningRate', 'Stage 1 LR', 1e-3, 1e-6, 1, 0.0001),
  real('stage2LearningRate', 'Stage 2 LR', 1e-3, 1e-6, 1, 0.0001),
  int('warmupSteps', 'Warm-up steps', 20, 0, 10000),
  int('checkpointEvery', 'Checkpoint every', 50, 1, 100000, 'steps between resumable checkpoints'),
  int('seed', 'Seed', 42, 0, 2 ** 31 - 1)
];

export function pretrainDefaults(): Record<string, number> {
  return Object.fromEntries(PRETRAIN_PARAMS.map((p) => [p.key, p.default]));
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
