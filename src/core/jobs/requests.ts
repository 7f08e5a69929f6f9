// What a long job is asked to do. Serializable: it crosses into worker threads as-is.
import type { z } from 'zod';
import type { importInputSchema } from '../../shared/api';

export type ImportRequest = z.output<typeof importInputSchema>;

export type JobRequest =
  | { kind: 'import'; input: ImportRequest }
  | { kind: 'train'; runId: number; resume: boolean }
  | { kind: 'evaluate'; runId: number };

export type JobResult =
  | { kind: 'import'; datasetId: number; warnings: string[] }
  | { kind: 'train'; runId: number; status: 'succeeded' }
  | { kind: 'evaluate'; runId: number };
