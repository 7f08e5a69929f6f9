// The job queue as the API uses it: a second training waits 'queued' with its place in line, its run shows
// 'queued', a second click on the same run or study is refused instead of queuing a duplicate, and a queued
// job cancelled through jobs.cancel never starts. The stand-in worker trains nothing: busy until cancelled.
import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkbenchService } from '../../src/main/services/workbench-service';
import type { AblationStudy } from '../../src/shared/ablation';
import type { ApiOutput, JobEvent } from '../../src/shared/api';
import type { JobInfo } from '../../src/shared/types';
import { finishedBackbone, finishedSeqRun } from './ablation-refs';
import { apiCalls, serviceWithTinyDataset } from './service-fixture';

let dir: string;
let service: WorkbenchService;
let datasetId: number;
const events: JobEvent[] = [];

beforeAll(async () => {
  ({ dir, service, datasetId } = await serviceWithTinyDataset('almostrec-queue-svc-', 'fake-ablation-worker.mjs'));
  service.onEvent((e) => events.push(e));
});

afterAll(async () => {
  await service.close();
  rmSync(dir, { recursive: true, force: true });
});

const { ok, refused } = apiCalls(() => service);

const job = (jobId: string): JobInfo => service.jobs.get(jobId)!;

describe('job queue through the API', () => {
  it('queues a second training, guards its run and study, and cancels a queued job before it starts', async () => {
    const first = await ok<ApiOutput<'train.start'>>('train.start', { model: 'sasrec', datasetId, config: { epochs: 1 } });
    const second = await ok<ApiOutput<'train.start'>>('train.start', { model: 'sasrec', datasetId, config: { epochs: 1 } });
    expect(job(first.jobId).status).toBe('running');
    expect(job(second.jobId)).toMatchObject({ status: 'queued', queuePosition: 1, startedAt: null, runId: second.runId });
    expect((await ok<{ status: string }>('runs.get', { runId: second.runId })).status).toBe('queued');
    expect(events).toContainEqual({ type: 'queued', job: expect.objectContaining({ jobId: second.jobId, queuePosition: 1 }) });

    // A second click on the waiting run is refused, whatever it asks.
    expect(await refused('train.resume', { runId: second.runId })).toEqual({ code: 'conflict', message: 'A job is still queued (#1 in line) on this run; cancel it first' });
    expect(await refused('runs.delete', { runId: second.runId })).toMatchObject({ code: 'conflict' });

    // An ablation study waits behind both; while it waits it shows as queued and is guarded as if training.
    const backboneId = finishedBackbone(service.catalog, dir, datasetId);
    const seqRunId = finishedSeqRun(service.catalog, dir, datasetId, 'sasrec');
    const study = await ok<ApiOutput<'ablation.start'>>('ablation.start', { datasetId, config: { backboneId, seqRunId, epochs: 1 } });
    expect(job(study.jobId)).toMatchObject({ status: 'queued', queuePosition: 2 });
    expect(await ok<AblationStudy>('ablation.get', { studyId: study.studyId })).toMatchObject({ status: 'queued', jobId: study.jobId });
    expect(await refused('ablation.resume', { studyId: study.studyId })).toEqual({ code: 'conflict', message: `Ablation study ${study.studyId} is already queued` });
    expect(await refused('ablation.delete', { studyId: study.studyId })).toMatchObject({ code: 'conflict' });
    expect(service.jobs.list().filter((j) => j.status !== 'cancelled')).toHaveLength(3);

    // Cancel while queued: it never starts, its run is cancelled, and the study moves up.
    expect(await ok('jobs.cancel', { jobId: second.jobId })).toEqual({ cancelled: true });
    expect(job(second.jobId)).toMatchObject({ status: 'cancelled', startedAt: null, error: null });
    expect((await ok<{ status: string }>('runs.get', { runId: second.runId })).status).toBe('cancelled');
    expect(job(study.jobId).queuePosition).toBe(1);
    expect(events.some((e) => e.type === 'started' && e.job.jobId === second.jobId)).toBe(false);

    // Resumed, the run waits as 'queued' again, now behind the study.
    const resumed = await ok<ApiOutput<'train.resume'>>('train.resume', { runId: second.runId });
    expect(job(resumed.jobId)).toMatchObject({ status: 'queued', queuePosition: 2 });
    expect((await ok<{ status: string }>('runs.get', { runId: second.runId })).status).toBe('queued');

    // The first training ends: the study gets the slot, then (once cancelled) the resumed run.
    await ok('jobs.cancel', { jobId: first.jobId });
    await service.jobs.wait(first.jobId);
    expect(job(study.jobId).status).toBe('running');
    expect(await ok<AblationStudy>('ablation.get', { studyId: study.studyId })).toMatchObject({ status: 'running' });
    expect(job(resumed.jobId).queuePosition).toBe(1);
    await ok('jobs.cancel', { jobId: study.jobId });
    await service.jobs.wait(study.jobId);
    expect(job(resumed.jobId).status).toBe('running');
    await ok('jobs.cancel', { jobId: resumed.jobId });
    expect((await service.jobs.wait(resumed.jobId)).status).toBe('cancelled');
  });

  it('owns what a resume puts back in the queue, so that no sweep takes it for a dead process job', async () => {
    const c = service.catalog;
    const holder = await ok<ApiOutput<'train.start'>>('train.start', { model: 'sasrec', datasetId, config: { epochs: 1 } });
    // A run and a pretraining left unfinished by a process that is gone: the start-up sweep marks them interrupted.
    const runId = c.createRun({ datasetId, model: 'sasrec', config: {}, backend: null });
    const backboneId = c.createBackbone({ name: 'left-over', source: 'pretrained', datasetId, path: join(dir, 'left-over'), config: {} });
    c.sweepOrphans(true);
    expect(c.getRun(runId)?.status).toBe('failed');
    expect(c.getBackbone(backboneId)?.status).toBe('failed');

    const run = await ok<ApiOutput<'train.resume'>>('train.resume', { runId });
    const pretrain = await ok<ApiOutput<'backbones.resume'>>('backbones.resume', { backboneId });
    expect([job(run.jobId).status, job(pretrain.jobId).status]).toEqual(['queued', 'queued']);
    expect(c.sweepOrphans(false)).toEqual({ runs: [], backbones: [] });
    expect(c.getRun(runId)).toMatchObject({ status: 'queued', error: null });
    expect(c.getBackbone(backboneId)).toMatchObject({ status: 'queued', error: null });

    for (const id of [run.jobId, pretrain.jobId, holder.jobId]) await ok('jobs.cancel', { jobId: id });
    await service.jobs.wait(holder.jobId);
    expect(c.getRun(runId)?.status).toBe('cancelled');
  });

  it('refuses a second import under a name whose import is still pending', async () => {
    const input = { format: 'movielens-latest', path: resolve(__dirname, '../fixtures/importers/ml-latest'), name: 'twice' };
    // The stand-in worker refuses import jobs at once; the import lane is held so that this one waits.
    const holder = service.jobs.start('import', 'holder', { kind: 'train', runId: 1, resume: false });
    const first = await ok<ApiOutput<'datasets.import'>>('datasets.import', input);
    expect(job(first.jobId)).toMatchObject({ status: 'queued', queuePosition: 1 });
    expect(await refused('datasets.import', input)).toEqual({ code: 'conflict', message: 'A dataset named "twice" is already being imported' });
    await ok('jobs.cancel', { jobId: first.jobId });
    await ok('jobs.cancel', { jobId: holder.jobId });
    await service.jobs.wait(holder.jobId);
  });
});
