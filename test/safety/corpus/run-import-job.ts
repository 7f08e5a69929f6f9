// Runs imports in a worker thread (import-worker.ts) with its own catalog connection, as the app runs
// its import jobs. Anything other than a 'done' or 'error' reply — an uncaught exception, the thread
// dying, no answer within the time limit — is a crash; the thread is then replaced for the next import.
import { Worker } from 'node:worker_threads';
import type { ImportInputParsed } from '../../../src/core/importers';
import type { ApiErrorShape } from '../../../src/shared/types';

export interface ImportRequest {
  dbPath: string;
  input: ImportInputParsed;
}

export type ImportReply = { type: 'done'; datasetId: number; warnings: string[] } | { type: 'error'; error: ApiErrorShape };

export type JobOutcome =
  | { kind: 'done'; datasetId: number; warnings: string[] }
  | { kind: 'error'; error: ApiErrorShape }
  | { kind: 'crash'; reason: string };

export class ImportRunner {
  private worker: Worker | null = null;

  constructor(private readonly workerPath: string) {}

  run(request: ImportRequest, timeoutMs: number): Promise<JobOutcome> {
    const worker = (this.worker ??= new Worker(this.workerPath));
    return new Promise((resolve) => {
      const settle = (outcome: JobOutcome, broken: boolean): void => {
        clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
        if (broken) {
          this.worker = null;
          void worker.terminate();
        }
        resolve(outcome);
      };
      const onMessage = (m: ImportReply): void =>
        settle(m.type === 'done' ? { kind: 'done', datasetId: m.datasetId, warnings: m.warnings } : { kind: 'error', error: m.error }, false);
      const onError = (err: Error): void => settle({ kind: 'crash', reason: `uncaught in the worker: ${err.stack ?? err.message}` }, true);
      const onExit = (code: number): void => settle({ kind: 'crash', reason: `worker exited (code ${code}) without an answer` }, true);
      const timer = setTimeout(() => settle({ kind: 'crash', reason: `no answer within ${timeoutMs} ms (hang)` }, true), timeoutMs);
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
      worker.postMessage(request);
    });
  }

  async close(): Promise<void> {
    await this.worker?.terminate();
    this.worker = null;
  }
}
