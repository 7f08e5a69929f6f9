// LLM case studies (caseStudy.llm.*) per run and user: the stored reading, or the job computing it. Kept
// outside the components so a result or a running job survives switching views. A job loads the run's
// backbone in a worker, so one runs per run at a time: asking for another user's case cancels the previous.
import { isPendingJob } from '../../../shared/jobs';
import type { ApiErrorShape, JobInfo, LlmCaseStudy } from '../../../shared/types';
import { api, toApiError } from './api';
import { wb } from './workbench.svelte';

export interface LlmCaseEntry {
  /** checking: asking for a stored case; running: its job (jobId) computes it; ready: `result` holds it. */
  state: 'checking' | 'running' | 'ready' | 'failed' | 'cancelled';
  runId: number;
  userId: number;
  jobId: string | null;
  result: LlmCaseStudy | null;
  error: ApiErrorShape | null;
}

const keyOf = (runId: number, userId: number): string => `${runId}:${userId}`;

class LlmCases {
  entries = $state<Record<string, LlmCaseEntry>>({});
  private listening = false;

  entry(runId: number, userId: number): LlmCaseEntry | null {
    return this.entries[keyOf(runId, userId)] ?? null;
  }

  /** Loads the stored case, or starts (or joins) the job computing it; again after a failure or a cancel. */
  async ensure(runId: number, userId: number): Promise<void> {
    const key = keyOf(runId, userId);
    const state = this.entries[key]?.state;
    if (state === 'checking' || state === 'running') return;
    this.listen();
    // A ready case stays on screen while it is read again: a deleted run's id can be reused by a new run.
    if (state !== 'ready') this.set(key, { state: 'checking', runId, userId, jobId: null, result: null, error: null });
    try {
      const stored = await api.call('caseStudy.llm.get', { runId, userId });
      if (stored) {
        this.set(key, { ...this.entries[key], state: 'ready', result: stored });
        return;
      }
      await this.cancelOthers(runId, userId);
      const { jobId } = await api.call('caseStudy.llm.start', { runId, userId });
      this.set(key, { ...this.entries[key], state: 'running', jobId });
      await wb.refreshJobs();
      // A job that ended before its id was known here announced it to nobody.
      const job = wb.jobs.find((j) => j.jobId === jobId);
      if (job && !isPendingJob(job)) await this.settle(job);
    } catch (err) {
      const { code, message } = toApiError(err);
      this.set(key, { ...this.entries[key], state: 'failed', error: { code, message } });
    }
  }

  private set(key: string, entry: LlmCaseEntry): void {
    this.entries[key] = entry;
  }

  private listen(): void {
    if (this.listening) return;
    this.listening = true;
    wb.onJobFinished((job) => {
      if (job.kind === 'llm-case') void this.settle(job);
    });
  }

  private async cancelOthers(runId: number, userId: number): Promise<void> {
    const others = Object.values(this.entries).filter((e) => e.runId === runId && e.userId !== userId && e.state === 'running' && e.jobId);
    await Promise.all(others.map((e) => wb.cancelJob(e.jobId!).catch(() => undefined)));
  }

  /** The entry whose job ended: its stored result, or why there is none. Idempotent (event and poll may both call). */
  private async settle(job: JobInfo): Promise<void> {
    const entry = Object.values(this.entries).find((e) => e.jobId === job.jobId && e.state === 'running');
    if (!entry) return;
    const key = keyOf(entry.runId, entry.userId);
    if (job.status === 'cancelled') return this.set(key, { ...entry, state: 'cancelled' });
    if (job.status !== 'succeeded') return this.set(key, { ...entry, state: 'failed', error: job.error ?? { code: 'internal', message: 'The job failed' } });
    try {
      const result = await api.call('caseStudy.llm.get', { runId: entry.runId, userId: entry.userId });
      if (result) this.set(key, { ...entry, state: 'ready', result });
      else this.set(key, { ...entry, state: 'failed', error: { code: 'internal', message: 'The job ended without storing its result' } });
    } catch (err) {
      const { code, message } = toApiError(err);
      this.set(key, { ...entry, state: 'failed', error: { code, message } });
    }
  }
}

export const llmCases = new LlmCases();
