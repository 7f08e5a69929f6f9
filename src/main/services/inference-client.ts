// The main process's side of live inference: requests go to one long-lived worker thread
// (workers/inference-worker.ts) that keeps the loaded models between calls. The thread starts on the first
// request; if it dies, pending requests fail with the reason and the next request starts a fresh one.
// Where the worker is not built (unit tests run from source), the same engine runs on this thread.
import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { Catalog } from '../../core/catalog';
import { InferenceEngine, UnknownItemError, type TopKAnswer } from '../../core/inference/inference-engine';
import type { ApiErrorCode } from '../../shared/api';
import type { ApiErrorShape } from '../../shared/types';
import type { InferenceReply, InferenceRequest, InferenceWorkerData } from '../workers/inference-protocol';
import { ApiFailure } from './api-errors';

/** Loaded models kept per worker (each SASRec is small; ALMOSTREC runs share their backbone). */
const MAX_MODELS = 6;

type Pending = { resolve: (a: TopKAnswer | null) => void; reject: (e: Error) => void };

const failure = (e: ApiErrorShape): ApiFailure => new ApiFailure(e.code as ApiErrorCode, e.message, e.details);

export class InferenceClient {
  private worker: Worker | null = null;
  private local: InferenceEngine | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(
    private readonly opts: { workerPath: string; dbPath: string; catalog: Catalog }
  ) {}

  /** Whether requests run in the worker thread (false: on this thread, the worker not being built). */
  get threaded(): boolean {
    return existsSync(this.opts.workerPath);
  }

  async topK(runId: number, history: number[], k: number): Promise<TopKAnswer> {
    if (!this.threaded) {
      this.local ??= new InferenceEngine(this.opts.catalog, { maxModels: MAX_MODELS });
      try {
        return await this.local.topK(runId, history, k);
      } catch (err) {
        throw err instanceof UnknownItemError ? new ApiFailure('invalid_input', err.message) : err;
      }
    }
    return (await this.send({ id: 0, op: 'topK', runId, history, k }))!;
  }

  /** Drops a deleted or retrained run's model, if loaded (nothing starts for it). */
  async forget(runId: number): Promise<void> {
    this.local?.forget(runId);
    if (this.worker) await this.send({ id: 0, op: 'forget', runId });
  }

  async close(): Promise<void> {
    this.local?.dispose();
    this.local = null;
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
  }

  private send(req: InferenceRequest): Promise<TopKAnswer | null> {
    const worker = this.start();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ ...req, id });
    });
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const workerData: InferenceWorkerData = { dbPath: this.opts.dbPath, maxModels: MAX_MODELS };
    const worker = new Worker(this.opts.workerPath, { workerData });
    // An idle inference thread must not keep a CLI or test process alive.
    worker.unref();
    worker.on('message', (m: InferenceReply) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.answer);
      else p.reject(failure(m.error));
    });
    const fail = (why: string) => {
      if (this.worker === worker) this.worker = null;
      for (const p of this.pending.values()) p.reject(new ApiFailure('internal', `Inference worker ${why}; the next request starts a new one`));
      this.pending.clear();
    };
    worker.on('error', (err) => fail(`crashed: ${err.message}`));
    worker.on('exit', (code) => fail(`exited (code ${code})`));
    this.worker = worker;
    return worker;
  }
}
