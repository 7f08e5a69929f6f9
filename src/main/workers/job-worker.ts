// Worker-thread entry: runs one job (import, training, evaluation) off the main process's event loop,
// with its own catalog connection (SQLite WAL allows one writer beside the main process's readers).
import { parentPort, workerData } from 'node:worker_threads';
import { Catalog } from '../../core/catalog';
import { executeJob } from '../../core/jobs/execute';
import { CancelledError } from '../../core/progress';
import { toApiError } from '../services/api-errors';
import type { JobWorkerData, JobWorkerMessage } from './protocol';
import { lowerThisThreadPriority } from './thread-priority';

// Before any work, so that the threads the job starts inherit it (thread-priority.ts).
lowerThisThreadPriority();

const data = workerData as JobWorkerData;
const flag = new Int32Array(data.cancelFlag);
const post = (m: JobWorkerMessage) => parentPort!.postMessage(m);
// A getter, so code deep inside a synchronous transaction still sees a cancel request.
const signal = { get aborted() { return Atomics.load(flag, 0) === 1; } };

async function main(): Promise<void> {
  const catalog = Catalog.open(data.dbPath);
  try {
    const result = await executeJob(data.request, {
      catalog,
      dataDir: data.dataDir,
      signal,
      onProgress: (progress) => post({ type: 'progress', progress }),
      onLog: (message) => post({ type: 'log', message })
    });
    post({ type: 'done', result });
  } catch (err) {
    post({ type: 'error', error: toApiError(err), cancelled: err instanceof CancelledError });
  } finally {
    catalog.close();
  }
}

void main();
