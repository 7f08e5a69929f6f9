// Progress and cancellation primitives shared by every long-running core function (import, training,
// evaluation). Core code stays transport-agnostic: a worker forwards progress as events, the CLI prints it.
//
// The bottom of src/core, whose folders import one way only, each from folders to its right:
//   jobs → models → train → backbone → vision → eval → importers → catalog → data → tensor → progress
// In one sentence: jobs orchestrate models, which run in the generic training loop on top of the backbone
// and the image features, while evaluation, import, the catalog, the data types, the tensor kernels and these
// progress/cancel primitives know nothing of anything above them. Only `import type` may point left (vision
// names train/model-spec's types): it loads nothing.

export interface JobProgress {
  phase: string;
  done: number;
  total: number;
  /** Numbers worth charting live (loss, validNdcg10, epoch, step…). */
  metrics?: Record<string, number>;
  message?: string;
}

export type ProgressFn = (p: JobProgress) => void;

/**
 * Anything with an `aborted` flag: an AbortSignal, or the shared-memory flag a worker reads while a
 * synchronous SQLite transaction keeps its event loop busy.
 */
export interface CancelSignal {
  readonly aborted: boolean;
}

export class CancelledError extends Error {
  constructor(message = 'Cancelled') {
    super(message);
    this.name = 'CancelledError';
  }
}

export function throwIfCancelled(signal?: CancelSignal): void {
  if (signal?.aborted) throw new CancelledError();
}
