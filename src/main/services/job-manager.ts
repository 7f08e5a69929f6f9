// Runs long jobs in worker threads and turns their messages into JobEvents with an ETA. Jobs wait in one
// global FIFO queue until a slot of their lane (shared/jobs.ts, job-slots.ts) is free, so two trainings never
// compete for the cores. Cancellation of a queued job removes it before it starts; of a running one, it sets
// a shared-memory flag the worker polls, and a worker that does not stop within the grace period is terminated.
import { randomUUID } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { JobRequest, JobResult } from '../../core/jobs/requests';
import type { JobProgress } from '../../core/progress';
import type { JobEvent } from '../../shared/api';
import { JOB_LANE } from '../../shared/jobs';
import type { ApiErrorShape, JobInfo, JobKind, JobLane } from '../../shared/types';
import type { JobWorkerData, JobWorkerMessage } from '../workers/protocol';
import { DEFAULT_JOB_SLOTS, type JobSlots } from './job-slots';

export interface JobManagerOptions {
  workerPath: string;
  dbPath: string;
  dataDir: string;
  /** Called when a job ends, before the 'finished' event goes out (e.g. to fix up a run row). */
  onJobEnded?: (job: JobInfo, result: JobResult | null) => void;
  cancelGraceMs?: number;
  /** Jobs that may run at once per lane (default DEFAULT_JOB_SLOTS). */
  slots?: JobSlots;
}

export interface JobMeta {
  runId?: number;
  datasetId?: number;
  backboneId?: number;
  studyId?: number;
}

interface ActiveJob {
  info: JobInfo;
  request: JobRequest;
  worker: Worker | null;
  /** Set to 1 to ask the worker to stop; shared with it (workerData.cancelFlag). */
  cancelShared: SharedArrayBuffer;
  cancelFlag: Int32Array;
  phaseStartedAt: number;
  phaseStartDone: number;
  lastEmit: number;
  ended: boolean;
  settled: Promise<JobInfo>;
  resolveSettled: (j: JobInfo) => void;
}

const PROGRESS_INTERVAL_MS = 200;

export class JobManager {
  private readonly jobs = new Map<string, ActiveJob>();
  /** Jobs waiting for a slot, oldest first (all lanes; positions are counted per lane). */
  private readonly queue: ActiveJob[] = [];
  private readonly listeners = new Set<(e: JobEvent) => void>();
  private readonly slots: JobSlots;
  private closing = false;

  constructor(private readonly opts: JobManagerOptions) {
    this.slots = opts.slots ?? DEFAULT_JOB_SLOTS;
  }

  onEvent(listener: (e: JobEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  list(): JobInfo[] {
    return [...this.jobs.values()].map((j) => ({ ...j.info })).sort((a, b) => b.queuedAt.localeCompare(a.queuedAt));
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

  /** Submits a job: it starts now when its lane has a free slot, else it waits 'queued' in line. */
  start(kind: JobKind, title: string, request: JobRequest, meta: JobMeta = {}): JobInfo {
    const info: JobInfo = {
      jobId: randomUUID(),
      kind,
      title,
      status: 'queued',
      lane: JOB_LANE[kind],
      queuePosition: null,
      runId: meta.runId ?? null,
      datasetId: meta.datasetId ?? null,
      backboneId: meta.backboneId ?? null,
      studyId: meta.studyId ?? null,
      phase: 'queued',
      done: 0,
      total: 0,
      etaSeconds: null,
      queuedAt: new Date().toISOString(),
      startedAt: null,
      error: null
    };
    let resolveSettled!: (j: JobInfo) => void;
    const settled = new Promise<JobInfo>((r) => (resolveSettled = r));
    const cancelShared = new SharedArrayBuffer(4);
    const job: ActiveJob = {
      info,
      request,
      worker: null,
      cancelShared,
      cancelFlag: new Int32Array(cancelShared),
      phaseStartedAt: Date.now(),
      phaseStartDone: 0,
      lastEmit: 0,
      ended: false,
      settled,
      resolveSettled
    };
    this.jobs.set(info.jobId, job);
    this.queue.push(job);
    this.schedule();
    return { ...info };
  }

  /** Cancels a job: a queued one leaves the queue and never starts; a running one is asked to stop. */
  cancel(jobId: string): boolean {
    const job = this.jobs.get(jobId);
    if (!job || job.ended) return false;
    if (job.info.status === 'queued') {
      this.queue.splice(this.queue.indexOf(job), 1);
      this.finish(job, 'cancelled', null, null);
      return true;
    }
    if (!job.worker) return false;
    if (Atomics.load(job.cancelFlag, 0) === 1) return true; // already asked to stop
    Atomics.store(job.cancelFlag, 0, 1);
    const worker = job.worker;
    // The worker normally stops at its next check and reports 'cancelled'; this covers a stuck one.
    setTimeout(() => {
      if (job.worker === worker) void worker.terminate();
    }, this.opts.cancelGraceMs ?? 15_000).unref();
    return true;
  }

  /** Drops the queued jobs, cancels every running one and waits for them to end (app shutdown). */
  async shutdown(): Promise<void> {
    this.closing = true;
    for (const job of [...this.queue]) this.cancel(job.info.jobId);
    const running = [...this.jobs.values()].filter((j) => !j.ended);
    for (const j of running) this.cancel(j.info.jobId);
    await Promise.all(running.map((j) => j.settled));
  }

  /** Starts the oldest queued jobs whose lane has a free slot, then tells the rest their new place. */
  private schedule(): void {
    // Re-evaluated after every launch: a launch's events may reach listeners that cancel or submit jobs.
    for (let job = this.nextStartable(); job; job = this.nextStartable()) {
      this.queue.splice(this.queue.indexOf(job), 1);
      this.launch(job);
    }
    const next = new Map<JobLane, number>();
    for (const job of [...this.queue]) {
      if (job.info.status !== 'queued') continue;
      const position = (next.get(job.info.lane) ?? 0) + 1;
      next.set(job.info.lane, position);
      if (job.info.queuePosition === position) continue;
      job.info.queuePosition = position;
      this.emit({ type: 'queued', job: { ...job.info } });
    }
  }

  /** The oldest queued job whose lane has a free slot (strict FIFO within a lane). */
  private nextStartable(): ActiveJob | undefined {
    if (this.closing) return undefined;
    const busy = new Map<JobLane, number>();
    for (const j of this.jobs.values()) if (j.info.status === 'running') busy.set(j.info.lane, (busy.get(j.info.lane) ?? 0) + 1);
    return this.queue.find((j) => (busy.get(j.info.lane) ?? 0) < this.slots[j.info.lane]);
  }

  private launch(job: ActiveJob): void {
    const info = job.info;
    info.status = 'running';
    info.queuePosition = null;
    info.phase = 'starting';
    info.startedAt = new Date().toISOString();
    job.phaseStartedAt = Date.now();
    this.emit({ type: 'started', job: { ...info } });
    this.emit({ type: 'progress', jobId: info.jobId, phase: info.phase, done: 0, total: 0, etaSeconds: null, runId: info.runId, backboneId: info.backboneId });
    const workerData: JobWorkerData = { request: job.request, dbPath: this.opts.dbPath, dataDir: this.opts.dataDir, cancelFlag: job.cancelShared };
    let worker: Worker;
    try {
      worker = new Worker(this.opts.workerPath, { workerData });
    } catch (err) {
      this.finish(job, 'failed', { code: 'internal', message: `Job worker could not start: ${(err as Error).message}` }, null);
      return;
    }
    job.worker = worker;
    worker.on('message', (m: JobWorkerMessage) => {
      if (m.type === 'progress') this.onProgress(job, m.progress);
      else if (m.type === 'log') this.emit({ type: 'log', jobId: info.jobId, message: m.message });
      else if (m.type === 'done') this.finish(job, 'succeeded', null, m.result);
      else this.finish(job, m.cancelled ? 'cancelled' : 'failed', m.cancelled ? null : m.error, null);
    });
    worker.on('error', (err) => this.finish(job, 'failed', { code: 'internal', message: `Job worker crashed: ${err.message}` }, null));
    worker.on('exit', (code) => {
      if (Atomics.load(job.cancelFlag, 0) === 1) this.finish(job, 'cancelled', null, null);
      else this.finish(job, 'failed', { code: 'internal', message: `Job worker exited unexpectedly (code ${code})` }, null);
    });
  }

  /** Records a job's end once, whatever reports it first, and gives its slot to the next in line. */
  private finish(job: ActiveJob, status: JobInfo['status'], error: ApiErrorShape | null, result: JobResult | null): void {
    if (job.ended) return;
    job.ended = true;
    const info = job.info;
    info.status = status;
    info.error = error;
    info.etaSeconds = 0;
    info.queuePosition = null;
    if (result?.kind === 'import') info.datasetId = result.datasetId;
    job.worker = null;
    try {
      this.opts.onJobEnded?.({ ...info }, result);
    } finally {
      this.emit({ type: 'finished', job: { ...info } });
      job.resolveSettled({ ...info });
      this.schedule();
    }
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
