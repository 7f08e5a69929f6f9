// Runs long jobs in worker threads and turns their messages into JobEvents with an ETA. Cancellation sets
// a shared-memory flag the worker polls; a worker that does not stop within the grace period is terminated.
import { randomUUID } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { JobRequest, JobResult } from '../../core/jobs/requests';
import type { JobProgress } from '../../core/progress';
import type { JobEvent } from '../../shared/api';
import type { ApiErrorShape, JobInfo, JobKind } from '../../shared/types';
import type { JobWorkerData, JobWorkerMessage } from '../workers/protocol';

export interface JobManagerOptions {
  workerPath: string;
  dbPath: string;
  dataDir: string;
  /** Called when a job ends, before the 'finished' event goes out (e.g. to fix up a run row). */
  onJobEnded?: (job: JobInfo, result: JobResult | null) => void;
  cancelGraceMs?: number;
}

interface ActiveJob {
  info: JobInfo;
  worker: Worker | null;
  cancelFlag: Int32Array;
  phaseStartedAt: number;
  phaseStartDone: number;
  lastEmit: number;
  settled: Promise<JobInfo>;
}

const PROGRESS_INTERVAL_MS = 200;

export class JobManager {
  private readonly jobs = new Map<string, ActiveJob>();
  private readonly listeners = new Set<(e: JobEvent) => void>();

  constructor(private readonly opts: JobManagerOptions) {}

  onEvent(listener: (e: JobEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  list(): JobInfo[] {
    return [...this.jobs.values()].map((j) => ({ ...j.info })).sort((a, b) => b.startedAt.localeCompare(a.startedAt));
  }

  get(jobId: string): JobInfo | null {
    const j = this.jobs.get(jobId);
    return j ? { ...j.info } : null;
  }

  /** Resolves with the final JobInfo when the job ends (any status). */
  wait(jobId: string): Promise<JobInfo> {
    const j = this.jobs.get(jobId);
    if (!j) return Promise.reject(new Error(`Unknown job ${jobId}`));
    return j.settled;
  }

  start(kind: JobKind, title: string, request: JobRequest, meta: { runId?: number; datasetId?: number; backboneId?: number; studyId?: number } = {}): JobInfo {
    const jobId = randomUUID();
    const shared = new SharedArrayBuffer(4);
    const info: JobInfo = {
      jobId,
      kind,
      title,
      status: 'running',
      runId: meta.runId ?? null,
      datasetId: meta.datasetId ?? null,
      backboneId: meta.backboneId ?? null,
      studyId: meta.studyId ?? null,
      phase: 'starting',
      done: 0,
      total: 0,
      etaSeconds: null,
      startedAt: new Date().toISOString(),
      error: null
    };
    let resolveSettled!: (j: JobInfo) => void;
    const settled = new Promise<JobInfo>((r) => (resolveSettled = r));
    const job: ActiveJob = {
      info,
      worker: null,
      cancelFlag: new Int32Array(shared),
      phaseStartedAt: Date.now(),
      phaseStartDone: 0,
      lastEmit: 0,
      settled
    };
    this.jobs.set(jobId, job);

    const workerData: JobWorkerData = { request, dbPath: this.opts.dbPath, dataDir: this.opts.dataDir, cancelFlag: shared };
    const worker = new Worker(this.opts.workerPath, { workerData });
    job.worker = worker;
    let ended = false;
    const finish = (status: JobInfo['status'], error: ApiErrorShape | null, result: JobResult | null) => {
      if (ended) return;
      ended = true;
      info.status = status;
      info.error = error;
      info.etaSeconds = 0;
      if (result?.kind === 'import') info.datasetId = result.datasetId;
      job.worker = null;
      try {
        this.opts.onJobEnded?.({ ...info }, result);
      } finally {
        this.emit({ type: 'finished', job: { ...info } });
        resolveSettled({ ...info });
      }
    };
    worker.on('message', (m: JobWorkerMessage) => {
      if (m.type === 'progress') this.onProgress(job, m.progress);
      else if (m.type === 'log') this.emit({ type: 'log', jobId, message: m.message });
      else if (m.type === 'done') finish('succeeded', null, m.result);
      else finish(m.cancelled ? 'cancelled' : 'failed', m.cancelled ? null : m.error, null);
    });
    worker.on('error', (err) => finish('failed', { code: 'internal', message: `Job worker crashed: ${err.message}` }, null));
    worker.on('exit', (code) => {
      if (Atomics.load(job.cancelFlag, 0) === 1) finish('cancelled', null, null);
      else finish('failed', { code: 'internal', message: `Job worker exited unexpectedly (code ${code})` }, null);
    });
    this.emit({ type: 'progress', jobId, phase: info.phase, done: 0, total: 0, etaSeconds: null, runId: info.runId, backboneId: info.backboneId });
    return { ...info };
  }

  cancel(jobId: string): boolean {
    const job = this.jobs.get(jobId);
    if (!job || job.info.status !== 'running' || !job.worker) return false;
    Atomics.store(job.cancelFlag, 0, 1);
    const worker = job.worker;
    // The worker normally stops at its next check and reports 'cancelled'; this covers a stuck one.
    setTimeout(() => {
      if (job.worker === worker) void worker.terminate();
    }, this.opts.cancelGraceMs ?? 15_000).unref();
    return true;
  }

  /** Cancels every running job and waits for them to end (app shutdown). */
  async shutdown(): Promise<void> {
    const running = [...this.jobs.values()].filter((j) => j.info.status === 'running');
    for (const j of running) this.cancel(j.info.jobId);
    await Promise.all(running.map((j) => j.settled));
  }

  private onProgress(job: ActiveJob, p: JobProgress): void {
    const info = job.info;
    const now = Date.now();
    const phaseChanged = p.phase !== info.phase;
    if (phaseChanged || p.done < job.phaseStartDone) {
      job.phaseStartedAt = now;
      job.phaseStartDone = p.done;
    }
    info.phase = p.phase;
    info.done = p.done;
    info.total = p.total;
    const progressed = p.done - job.phaseStartDone;
    const elapsed = (now - job.phaseStartedAt) / 1000;
    info.etaSeconds = progressed > 0 && p.total > p.done ? Math.round((elapsed / progressed) * (p.total - p.done)) : null;
    const important = phaseChanged || p.done === p.total || p.metrics !== undefined;
    if (!important && now - job.lastEmit < PROGRESS_INTERVAL_MS) return;
    job.lastEmit = now;
    this.emit({
      type: 'progress',
      jobId: info.jobId,
      phase: p.phase,
      done: p.done,
      total: p.total,
      etaSeconds: info.etaSeconds,
      metrics: p.metrics,
      runId: info.runId,
      backboneId: info.backboneId
    });
    if (p.message) this.emit({ type: 'log', jobId: info.jobId, message: p.message });
  }

  private emit(e: JobEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch {
        // A broken listener (e.g. a closed socket) must not stop the others.
      }
    }
  }
}
