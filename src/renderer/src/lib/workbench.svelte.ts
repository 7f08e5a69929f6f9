// Application-wide state shared by the views: app info, datasets, the selected dataset, jobs and the
// current view. One reactive object so the top bar, banner, tray and views always agree.
import type { JobEvent } from '../../../shared/api';
import { isPendingJob } from '../../../shared/jobs';
import type { AppInfo, DatasetSummary, JobInfo } from '../../../shared/types';
import { api, toApiError, type ApiError } from './api';

export type ViewName = 'datasets' | 'train' | 'runs' | 'backbones' | 'adapters' | 'table2' | 'ablation' | 'case-study';

const SELECTED_KEY = 'almostrec.datasetId';

class Workbench {
  view = $state<ViewName>('datasets');
  info = $state<AppInfo | null>(null);
  datasets = $state<DatasetSummary[]>([]);
  selectedDatasetId = $state<number | null>(readSelected());
  jobs = $state<JobInfo[]>([]);
  /** Latest metrics per job id, from progress events (jobs.list carries none). */
  metrics = $state<Record<string, Record<string, number>>>({});
  /** Job ids the user dismissed from the tray. */
  dismissed = $state<string[]>([]);
  loadError = $state<ApiError | null>(null);

  selectedDataset = $derived(this.datasets.find((d) => d.id === this.selectedDatasetId) ?? null);
  runningJobs = $derived(this.jobs.filter((j) => j.status === 'running'));
  queuedJobs = $derived(this.jobs.filter((j) => j.status === 'queued'));

  private finishedListeners = new Set<(job: JobInfo) => void>();
  private progressListeners = new Set<(event: Extract<JobEvent, { type: 'progress' }>) => void>();
  private notified = new Set<string>();
  private pollTimer: ReturnType<typeof setInterval> | null = null;

  async start(): Promise<void> {
    api.onEvent((e) => this.handleEvent(e));
    await Promise.all([this.refreshInfo(), this.refreshDatasets(), this.refreshJobs()]);
    // Events are the fast path; a slow poll repairs anything missed while the socket was down.
    this.pollTimer ??= setInterval(() => {
      void this.refreshJobs();
    }, 5000);
  }

  selectDataset(id: number | null): void {
    this.selectedDatasetId = id;
    if (id == null) localStorage.removeItem(SELECTED_KEY);
    else localStorage.setItem(SELECTED_KEY, String(id));
  }

  async refreshInfo(): Promise<void> {
    try {
      this.info = await api.call('app.info', {});
    } catch (err) {
      this.loadError = toApiError(err);
    }
  }

  async refreshDatasets(): Promise<void> {
    try {
      this.datasets = await api.call('datasets.list', {});
      const stillThere = this.datasets.some((d) => d.id === this.selectedDatasetId);
      if (!stillThere) this.selectDataset(this.datasets[0]?.id ?? null);
    } catch (err) {
      this.loadError = toApiError(err);
    }
  }

  async refreshJobs(): Promise<void> {
    try {
      const fresh = await api.call('jobs.list', {});
      if (this.loadError?.code === 'network') this.loadError = null; // the service is back
      const before = new Map(this.jobs.map((j) => [j.jobId, j]));
      this.jobs = fresh;
      // A job that finished while events were lost still has to trigger the follow-up refreshes.
      for (const j of fresh) {
        const was = before.get(j.jobId);
        if (was && isPendingJob(was) && !isPendingJob(j)) this.notifyFinished(j);
      }
    } catch (err) {
      this.loadError = toApiError(err);
    }
  }

  onJobFinished(listener: (job: JobInfo) => void): () => void {
    this.finishedListeners.add(listener);
    return () => this.finishedListeners.delete(listener);
  }

  onProgress(listener: (event: Extract<JobEvent, { type: 'progress' }>) => void): () => void {
    this.progressListeners.add(listener);
    return () => this.progressListeners.delete(listener);
  }

  async cancelJob(jobId: string): Promise<void> {
    await api.call('jobs.cancel', { jobId });
    await this.refreshJobs();
  }

  dismiss(jobId: string): void {
    this.dismissed = [...this.dismissed, jobId];
  }

  private handleEvent(e: JobEvent): void {
    if (e.type === 'progress') {
      const i = this.jobs.findIndex((j) => j.jobId === e.jobId);
      if (i >= 0) {
        const j = this.jobs[i];
        this.jobs[i] = {
          ...j,
          phase: e.phase,
          done: e.done,
          total: e.total,
          etaSeconds: e.etaSeconds,
          runId: e.runId ?? j.runId,
          backboneId: e.backboneId ?? j.backboneId
        };
      } else {
        void this.refreshJobs(); // a job started elsewhere (e.g. the first-start import)
      }
      if (e.metrics) this.metrics[e.jobId] = e.metrics;
      for (const l of this.progressListeners) l(e);
    } else if (e.type === 'queued' || e.type === 'started') {
      this.upsert(e.job); // a new place in the queue, or its slot
    } else if (e.type === 'finished') {
      this.upsert(e.job);
      this.notifyFinished(e.job);
    }
  }

  private upsert(job: JobInfo): void {
    const i = this.jobs.findIndex((j) => j.jobId === job.jobId);
    if (i >= 0) this.jobs[i] = job;
    else this.jobs = [...this.jobs, job];
  }

  private notifyFinished(job: JobInfo): void {
    // Both the event and the repair poll can report the same ending; act on it once.
    if (this.notified.has(job.jobId)) return;
    this.notified.add(job.jobId);
    if (job.kind === 'import') {
      void this.refreshInfo();
      void this.refreshDatasets();
    }
    for (const l of this.finishedListeners) l(job);
  }
}

function readSelected(): number | null {
  const raw = localStorage.getItem(SELECTED_KEY);
  const n = raw == null ? NaN : Number(raw);
  return Number.isInteger(n) && n > 0 ? n : null;
}

export const wb = new Workbench();
