// The ablation.* API methods: an ALMOSTREC ablation study is created as one queued run per variant and
// trained by ONE 'ablation' job that runs them in sequence (core/jobs/ablation-job.ts), so starting a study
// never puts six trainings on the machine at once. Cancel is the ordinary jobs.cancel of that job.
import type { AblationStudy, AblationStudyVariant } from '../../shared/ablation';
import { isPendingJob } from '../../shared/jobs';
import type { BackendInfo, DatasetSummary, JobInfo } from '../../shared/types';
import type { Catalog } from '../../core/catalog';
import { createAblationStudy, groupAblationStudies, readAblationStudy } from '../../core/jobs/ablation-study';
import { ApiFailure, notFound } from './api-errors';
import type { JobManager } from './job-manager';
import type { Handlers } from './workbench-service';

export interface AblationDeps {
  catalog: Catalog;
  jobs: JobManager;
  backend: () => BackendInfo | null;
  requireDataset: (datasetId: number) => DatasetSummary;
  /** Deletes a run's checkpoint folder. */
  removeRunFiles: (runId: number) => void;
}

type AblationMethods = 'ablation.start' | 'ablation.list' | 'ablation.get' | 'ablation.resume' | 'ablation.delete';

/** The running or queued job of a study, if any. */
export function studyJob(jobs: JobManager, studyId: number): JobInfo | null {
  return jobs.list().find((j) => j.kind === 'ablation' && isPendingJob(j) && j.studyId === studyId) ?? null;
}

/** A study's state: its job's while one runs or waits, else what its runs say (a failure outweighs a cancel). */
export function studyStatus(variants: readonly AblationStudyVariant[], job: JobInfo | null): AblationStudy['status'] {
  if (job) return job.status === 'queued' ? 'queued' : 'running';
  const statuses = variants.map((v) => v.run.status);
  if (statuses.every((s) => s === 'succeeded')) return 'succeeded';
  if (statuses.includes('failed')) return 'failed';
  if (statuses.includes('cancelled')) return 'cancelled';
  return statuses.includes('running') ? 'running' : 'queued';
}

export function createAblationHandlers(d: AblationDeps): Pick<Handlers, AblationMethods> {
  const c = d.catalog;
  const withJob = (s: NonNullable<ReturnType<typeof readAblationStudy>>): AblationStudy => {
    const job = studyJob(d.jobs, s.id);
    return { ...s, jobId: job?.jobId ?? null, status: studyStatus(s.variants, job) };
  };
  const require = (studyId: number) => {
    const s = readAblationStudy(c, studyId);
    if (!s) throw notFound(`Ablation study ${studyId}`);
    return s;
  };
  /** Another job (a resumed or evaluated variant) still works on one of the study's runs. */
  const assertNoVariantJob = (s: { variants: readonly AblationStudyVariant[] }): void => {
    const pending = d.jobs.list().filter(isPendingJob);
    const busy = s.variants.find((v) => pending.some((j) => j.runId === v.run.id));
    if (busy) throw new ApiFailure('conflict', `Run ${busy.run.id} (${busy.label}) is used by another job; cancel it first`);
  };
  const startJob = (studyId: number, datasetId: number, runIds: number[], title: string): JobInfo =>
    d.jobs.start('ablation', title, { kind: 'ablation', studyId, runIds }, { datasetId, studyId });

  return {
    'ablation.start': ({ datasetId, config, gru4recRunId }) => {
      const ds = d.requireDataset(datasetId);
      const created = createAblationStudy(c, ds.id, config, { gru4recRunId, backend: d.backend() });
      const { studyId, runIds } = created;
      const job = startJob(studyId, ds.id, runIds, `Ablation study ${studyId} on ${ds.name} (${runIds.length} variants, one after another)`);
      return { jobId: job.jobId, ...created };
    },
    'ablation.list': ({ datasetId }) => {
      d.requireDataset(datasetId);
      return groupAblationStudies(c.listRuns(datasetId)).map(withJob);
    },
    'ablation.get': ({ studyId }) => withJob(require(studyId)),
    'ablation.resume': ({ studyId }) => {
      const s = require(studyId);
      const pending = studyJob(d.jobs, studyId);
      if (pending) throw new ApiFailure('conflict', `Ablation study ${studyId} is already ${pending.status === 'queued' ? 'queued' : 'training'}`);
      assertNoVariantJob(s);
      if (s.variants.every((v) => v.run.status === 'succeeded')) throw new ApiFailure('conflict', `Every variant of ablation study ${studyId} has finished`);
      const runIds = s.variants.map((v) => v.run.id);
      return { jobId: startJob(studyId, s.datasetId, runIds, `Resuming ablation study ${studyId} on ${s.datasetName}`).jobId };
    },
    'ablation.delete': ({ studyId }) => {
      const s = require(studyId);
      const pending = studyJob(d.jobs, studyId);
      if (pending) throw new ApiFailure('conflict', `Ablation study ${studyId} is ${pending.status === 'queued' ? 'queued' : 'training'}; cancel it first`);
      assertNoVariantJob(s);
      let deleted = 0;
      for (const v of s.variants) {
        if (c.deleteRun(v.run.id)) {
          d.removeRunFiles(v.run.id);
          deleted++;
        }
      }
      return { deleted };
    }
  };
}
