// State of the Backbones view: the list, the selected backbone and live pretraining curves. Lives outside
// the component so switching views keeps the curve of a pretraining in progress.
import type { BackboneDetail, BackboneSummary } from '../../../shared/backbones';
import { isPendingJob } from '../../../shared/jobs';
import type { JobInfo } from '../../../shared/types';
import { api, toApiError, type ApiError } from './api';
import { appendLive, liveFromMetrics, lossCurve, PRETRAIN_DEFAULTS, type LivePoint } from './backbones';
import { wb } from './workbench.svelte';

const BACKBONE_JOBS: readonly JobInfo['kind'][] = ['pretrain', 'backbone-features'];

class BackboneSession {
  list = $state<BackboneSummary[]>([]);
  selectedId = $state<number | null>(null);
  detail = $state<BackboneDetail | null>(null);
  /** Pretraining form values (kept while the user visits other views). */
  config = $state<Record<string, number>>({ ...PRETRAIN_DEFAULTS });
  /** Steps reported by progress events, per backbone, since the view last read the stored history. */
  live = $state<Record<number, LivePoint[]>>({});
  error = $state<ApiError | null>(null);
  loading = $state(false);

  private adopted = new Set<string>();

  selected = $derived(this.list.find((b) => b.id === this.selectedId) ?? null);
  /** The running or queued pretraining job of the selected backbone, if any. */
  job = $derived<JobInfo | null>(
    wb.jobs.find((j) => j.kind === 'pretrain' && isPendingJob(j) && j.backboneId === this.selectedId) ?? null
  );
  curve = $derived<LivePoint[]>(
    this.detail && this.detail.id === this.selectedId ? lossCurve(this.detail.history, this.live[this.detail.id] ?? []) : []
  );

  constructor() {
    wb.onProgress((e) => {
      const point = liveFromMetrics(e.metrics);
      if (e.backboneId == null || !point) return;
      const previous = this.live[e.backboneId]?.at(-1);
      this.live[e.backboneId] = appendLive(this.live[e.backboneId] ?? [], point);
      // A new stage began: the held-out loss of the one before (or of the start) is in the catalog now.
      if (e.backboneId === this.selectedId && previous?.stage !== point.stage) void this.loadDetail(e.backboneId);
    });
    wb.onJobFinished((job) => {
      if (!BACKBONE_JOBS.includes(job.kind)) return;
      void this.refresh();
      if (job.kind === 'pretrain' && job.backboneId != null) void this.settle(job.backboneId);
    });
  }

  async refresh(): Promise<void> {
    this.loading = true;
    try {
      this.list = await api.call('backbones.list', {});
      if (this.selectedId != null && !this.list.some((b) => b.id === this.selectedId)) this.select(null);
    } catch (err) {
      this.error = toApiError(err);
    } finally {
      this.loading = false;
    }
  }

  select(id: number | null): void {
    this.selectedId = id;
    this.detail = null;
    if (id != null) void this.loadDetail(id);
  }

  /** Follow a pretraining already running (e.g. after a reload) when nothing is selected; once per job, so
   *  the user can still close it. */
  adoptRunning(): void {
    if (this.selectedId != null) return;
    const running = wb.jobs.find((j) => j.kind === 'pretrain' && isPendingJob(j) && j.backboneId != null && !this.adopted.has(j.jobId));
    if (!running) return;
    this.adopted.add(running.jobId);
    this.select(running.backboneId);
  }

  async loadDetail(id: number): Promise<void> {
    try {
      const detail = await api.call('backbones.get', { backboneId: id });
      if (this.selectedId === id) this.detail = detail;
    } catch (err) {
      this.error = toApiError(err);
    }
  }

  /** A pretraining ended: the catalog now holds every step, so the live copy can go. */
  private async settle(id: number): Promise<void> {
    if (this.selectedId === id) await this.loadDetail(id);
    delete this.live[id];
  }
}

export const backbones = new BackboneSession();
