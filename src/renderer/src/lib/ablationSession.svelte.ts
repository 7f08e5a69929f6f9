// State of the Ablation view: the selected dataset's studies, the one shown, and what the last start left
// out. Lives outside the component so a study started from the Train view is selected when the view opens;
// the view itself reloads the list (on open, when a job ends, and by polling while a study runs).
import type { AblationStudy, SkippedVariant } from '../../../shared/ablation';
import type { JobInfo } from '../../../shared/types';
import { api, toApiError, type ApiError } from './api';
import { wb } from './workbench.svelte';

class AblationSession {
  studies = $state<AblationStudy[]>([]);
  /** null: the newest study. */
  selectedId = $state<number | null>(null);
  /** Variants the last started study left out, and why (only known when it starts). */
  skipped = $state<{ studyId: number; variants: SkippedVariant[] } | null>(null);
  /** What the last user action (start, resume, cancel, delete) failed with. */
  error = $state<ApiError | null>(null);
  /** What the last reload of the list failed with (shown in the Ablation view only). */
  loadError = $state<ApiError | null>(null);
  loading = $state(false);
  busy = $state(false);

  selected = $derived<AblationStudy | null>(this.studies.find((s) => s.id === this.selectedId) ?? this.studies[0] ?? null);
  job = $derived<JobInfo | null>(this.selected?.jobId ? (wb.jobs.find((j) => j.jobId === this.selected!.jobId) ?? null) : null);

  async refresh(): Promise<void> {
    const datasetId = wb.selectedDatasetId;
    if (datasetId == null) {
      this.studies = [];
      return;
    }
    this.loading = true;
    try {
      const list = await api.call('ablation.list', { datasetId });
      if (datasetId === wb.selectedDatasetId) this.studies = list;
    } catch (err) {
      this.loadError = toApiError(err);
    } finally {
      this.loading = false;
    }
  }

  /** Starts a study of `config` (the full model) and selects it. True when it started. */
  async start(datasetId: number, config: Record<string, number>, gru4recRunId: number | null): Promise<boolean> {
    return this.act(async () => {
      const res = await api.call('ablation.start', { datasetId, config, ...(gru4recRunId ? { gru4recRunId } : {}) });
      this.selectedId = res.studyId;
      this.skipped = { studyId: res.studyId, variants: res.skipped };
      await Promise.all([wb.refreshJobs(), this.refresh()]);
    });
  }

  resume(studyId: number): Promise<boolean> {
    return this.act(async () => {
      await api.call('ablation.resume', { studyId });
      await Promise.all([wb.refreshJobs(), this.refresh()]);
    });
  }

  cancel(): Promise<boolean> {
    const jobId = this.selected?.jobId;
    return this.act(async () => {
      if (jobId) await wb.cancelJob(jobId);
    });
  }

  remove(studyId: number): Promise<boolean> {
    return this.act(async () => {
      await api.call('ablation.delete', { studyId });
      if (this.selectedId === studyId) this.selectedId = null;
      await this.refresh();
    });
  }

  private async act(fn: () => Promise<void>): Promise<boolean> {
    this.error = null;
    this.busy = true;
    try {
      await fn();
      return true;
    } catch (err) {
      this.error = toApiError(err);
      return false;
    } finally {
      this.busy = false;
    }
  }
}

export const ablation = new AblationSession();
