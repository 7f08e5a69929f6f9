// The training job the Train view follows. Lives outside the component so switching views keeps the
// live curve, and so the Runs view can hand a resumed run over to it.
import type { TrainInput } from '../../../shared/api';
import type { EpochRecord, JobInfo, ModelKind, RunDetail } from '../../../shared/types';
import { api, toApiError, type ApiError } from './api';
import { MODELS, modelSpec } from './models';
import { wb } from './workbench.svelte';

export interface EpochPoint {
  epoch: number;
  loss: number | null;
  validNdcg10: number | null;
}

class TrainSession {
  model = $state<ModelKind>(MODELS[0].kind);
  /** Form values per model, so switching model back and forth keeps edits. */
  configs = $state<Record<string, Record<string, number>>>(Object.fromEntries(MODELS.map((m) => [m.kind, { ...m.defaults }])));
  jobId = $state<string | null>(null);
  runId = $state<number | null>(null);
  run = $state<RunDetail | null>(null);
  live = $state<EpochPoint[]>([]);
  lastMetrics = $state<Record<string, number> | null>(null);
  error = $state<ApiError | null>(null);
  busy = $state(false);

  job = $derived<JobInfo | null>(this.jobId ? (wb.jobs.find((j) => j.jobId === this.jobId) ?? null) : null);

  /** Finished epochs from the catalog (authoritative: mean loss, validation) plus the epoch in progress. */
  curve = $derived.by<EpochPoint[]>(() => {
    const byEpoch: Record<number, EpochPoint> = {};
    for (const p of this.live) byEpoch[p.epoch] = p;
    for (const h of this.run?.history ?? []) byEpoch[h.epoch] = fromRecord(h);
    return Object.values(byEpoch).sort((a, b) => a.epoch - b.epoch);
  });

  /** Running mean of the step losses seen in each live epoch (events carry the per-step loss). */
  private lossSums = new Map<number, { sum: number; n: number }>();

  constructor() {
    wb.onProgress((e) => {
      if (e.jobId !== this.jobId) return;
      if (e.runId != null && this.runId == null) this.runId = e.runId;
      if (e.metrics) this.applyMetrics(e.metrics);
    });
    wb.onJobFinished((job) => {
      if (job.jobId === this.jobId) void this.refreshRun();
    });
  }

  /** The form's values for the selected model: only the fields it declares (the contract validates them per kind). */
  formConfig(): Record<string, number> {
    const values = this.configs[this.model] ?? {};
    return Object.fromEntries((modelSpec(this.model)?.fields ?? []).map((f) => [f.key, values[f.key]]));
  }

  resetConfig(): void {
    this.configs[this.model] = { ...(modelSpec(this.model)?.defaults ?? {}) };
  }

  async start(datasetId: number): Promise<void> {
    this.error = null;
    this.busy = true;
    try {
      const config = this.formConfig();
      // TS cannot correlate `model` with its config variant in the union; the main side validates it.
      const input = { model: this.model, datasetId, config } as TrainInput;
      const res = await api.call('train.start', input);
      await this.follow(res.jobId, res.runId);
    } catch (err) {
      this.error = toApiError(err);
    } finally {
      this.busy = false;
    }
  }

  async resume(runId: number): Promise<void> {
    this.error = null;
    this.busy = true;
    try {
      const res = await api.call('train.resume', { runId });
      await this.follow(res.jobId, res.runId);
    } catch (err) {
      this.error = toApiError(err);
    } finally {
      this.busy = false;
    }
  }

  async cancel(): Promise<void> {
    if (!this.jobId) return;
    try {
      await wb.cancelJob(this.jobId);
    } catch (err) {
      this.error = toApiError(err);
    }
  }

  /** Pick up a training job that is already running or queued (e.g. after a reload) when nothing is followed. */
  adoptRunning(): void {
    if (this.jobId) return;
    const running = wb.jobs.find((j) => j.kind === 'train' && j.status === 'running') ?? wb.jobs.find((j) => j.kind === 'train' && j.status === 'queued');
    if (running) void this.follow(running.jobId, running.runId);
  }

  async follow(jobId: string, runId: number | null): Promise<void> {
    this.jobId = jobId;
    this.runId = runId;
    this.run = null;
    this.live = [];
    this.lossSums.clear();
    this.lastMetrics = wb.metrics[jobId] ?? null;
    await wb.refreshJobs();
    await this.refreshRun();
  }

  async refreshRun(): Promise<void> {
    if (this.runId == null) return;
    try {
      this.run = await api.call('runs.get', { runId: this.runId });
      if (this.run.model !== this.model && modelSpec(this.run.model)) this.model = this.run.model;
    } catch (err) {
      this.error = toApiError(err);
    }
  }

  private applyMetrics(m: Record<string, number>): void {
    this.lastMetrics = m;
    if (typeof m.epoch !== 'number') return;
    const lastEpoch = this.live.at(-1)?.epoch;
    // A new epoch means the previous one is in the catalog now, with its mean loss and validation score.
    if (lastEpoch != null && m.epoch > lastEpoch) void this.refreshRun();
    let mean: number | null = null;
    if (typeof m.loss === 'number') {
      const acc = this.lossSums.get(m.epoch) ?? { sum: 0, n: 0 };
      acc.sum += m.loss;
      acc.n += 1;
      this.lossSums.set(m.epoch, acc);
      mean = acc.sum / acc.n;
    }
    const validNdcg10 = typeof m.validNdcg10 === 'number' ? m.validNdcg10 : null;
    const i = this.live.findIndex((p) => p.epoch === m.epoch);
    if (i < 0) this.live.push({ epoch: m.epoch, loss: mean, validNdcg10 });
    else this.live[i] = { epoch: m.epoch, loss: mean ?? this.live[i].loss, validNdcg10: validNdcg10 ?? this.live[i].validNdcg10 };
  }
}

function fromRecord(h: EpochRecord): EpochPoint {
  return { epoch: h.epoch, loss: h.loss, validNdcg10: h.validNdcg10 };
}

export const train = new TrainSession();
