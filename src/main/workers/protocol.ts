// Messages between the job manager (main process) and a job worker thread.
import type { JobRequest, JobResult } from '../../core/jobs/requests';
import type { JobProgress } from '../../core/progress';
import type { ApiErrorShape } from '../../shared/types';

export interface JobWorkerData {
  request: JobRequest;
  dbPath: string;
  dataDir: string;
  /** Int32 flag set to 1 by the manager to cancel; read with Atomics even inside synchronous work. */
  cancelFlag: SharedArrayBuffer;
}

export type JobWorkerMessage =
  | { type: 'progress'; progress: JobProgress }
  | { type: 'log'; message: string }
  | { type: 'done'; result: JobResult }
  | { type: 'error'; error: ApiErrorShape; cancelled: boolean };
