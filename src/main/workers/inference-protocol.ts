// Messages between the main process's inference client and the long-lived inference worker thread.
import type { TopKAnswer } from '../../core/inference/inference-engine';
import type { ApiErrorShape } from '../../shared/types';

export interface InferenceWorkerData {
  dbPath: string;
  maxModels: number;
}

export type InferenceRequest =
  | { id: number; op: 'topK'; runId: number; history: number[]; k: number }
  | { id: number; op: 'forget'; runId: number };

export type InferenceReply = { id: number; ok: true; answer: TopKAnswer | null } | { id: number; ok: false; error: ApiErrorShape };
