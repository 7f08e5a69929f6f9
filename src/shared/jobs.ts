// Which slot lane each job kind waits in, shared by the job queue (main) and the UI that explains it.
import type { JobInfo, JobKind, JobLane } from './types';

/**
 * Heavy jobs train or run a model over the whole dataset for minutes to hours and use every core they get;
 * light ones (an import, an evaluation of a finished run) are short, so they keep their own slot and do not
 * wait hours behind a training.
 */
export const JOB_LANE: Readonly<Record<JobKind, JobLane>> = {
  train: 'heavy',
  pretrain: 'heavy',
  ablation: 'heavy',
  'backbone-features': 'heavy',
  'llm-case': 'heavy',
  import: 'light',
  evaluate: 'light'
};

/** A job that has not ended: running, or waiting in the queue (a second start must join it, not repeat it). */
export function isPendingJob(job: Pick<JobInfo, 'status'>): boolean {
  return job.status === 'running' || job.status === 'queued';
}
