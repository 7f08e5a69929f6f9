// What a long job is asked to do. Serializable: it crosses into worker threads as-is.
import type { z } from 'zod';
import type { importInputSchema } from '../../shared/api';
import type { VisualTokenCount } from '../../shared/backbones';

export type ImportRequest = z.output<typeof importInputSchema>;

export type JobRequest =
  | { kind: 'import'; input: ImportRequest }
  | { kind: 'train'; runId: number; resume: boolean }
  | { kind: 'evaluate'; runId: number }
  | { kind: 'pretrain'; backboneId: number; resume: boolean }
  | { kind: 'backbone-features'; backboneId: number; datasetId: number; k: VisualTokenCount }
  /** Trains the study's runs one after another, in this order, skipping those already succeeded. */
  | { kind: 'ablation'; studyId: number; runIds: number[] }
  /** Reads an LLM run's prompt (and LLaRA's answer) for a user's held-out item; stored in the catalog. */
  | { kind: 'llm-case'; runId: number; userId: number };

export type JobResult =
  | { kind: 'import'; datasetId: number; warnings: string[] }
  | { kind: 'train'; runId: number; status: 'succeeded' }
  | { kind: 'evaluate'; runId: number }
  | { kind: 'pretrain'; backboneId: number; status: 'succeeded' }
  | { kind: 'backbone-features'; backboneId: number; datasetId: number; encoded: number; cached: number; withoutImage: number }
  | { kind: 'ablation'; studyId: number; succeeded: number[] }
  | { kind: 'llm-case'; runId: number; userId: number };
