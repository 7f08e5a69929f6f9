// The ablation.* API methods in the service, with a stand-in worker that speaks the job protocol: a study
// is ONE job (never a job per variant), its runs are guarded while it trains, a cancel leaves every
// unfinished variant cancelled, resume and delete. The real sequencing is tested in ablation.test.ts.
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkbenchService } from '../../src/main/services/workbench-service';
import type { AblationStudy } from '../../src/shared/ablation';
import type { ApiOutput } from '../../src/shared/api';
import { finishedBackbone, finishedSeqRun } from './ablation-refs';
import { apiCalls, serviceWithTinyDataset } from './service-fixture';

let dir: string;
let service: WorkbenchService;
let datasetId: number;
let backboneId: number;
let sasrec: number;

beforeAll(async () => {
  ({ dir, service, datasetId } = await serviceWithTinyDataset('almostrec-ablation-svc-', 'fake-ablation-worker.mjs'));
  backboneId = finishedBackbone(service.catalog, dir, datasetId);
  sasrec = finishedSeqRun(service.catalog, dir, datasetId, 'sasrec');
});

afterAll(async () => {
  await service.close();
  rmSync(dir, { recursive: true, force: true });
});

const { ok, refused } = apiCalls(() => service);

describe('ablation API', () => {
  it('refuses a study whose full model could not train, saying what to fix', async () => {
    expect(await refused('ablation.start', { datasetId, config: { seqRunId: sasrec } })).toMatchObject({
      code: 'invalid_input',
      message: expect.stringMatching(/^ALMOSTREC needs a backbone/)
    });
    expect(await refused('ablation.start', { datasetId, config: { backboneId, seqRunId: sasrec, nope: 1 } })).toMatchObject({ code: 'invalid_input' });
    expect(await refused('ablation.start', { datasetId: 99, config: {} })).toMatchObject({ code: 'not_found' });
    expect(service.catalog.listRuns(datasetId).filter((r) => r.model === 'almostrec')).toEqual([]);
  });

  it('starts one job for the whole study, guards its runs, and a cancel leaves the unfinished variants cancelled', async () => {
    const config = { backboneId, seqRunId: sasrec, epochs: 1, layout: 1 }; // interleaved: the concat layout is a variant
    const started = await ok<ApiOutput<'ablation.start'>>('ablation.start', { datasetId, config });
    expect(started.variants).toEqual(['full', 'no-images', 'no-text', 'no-pretrained-ids', 'no-lora', 'concat']);
    expect(started.skipped).toEqual([{ id: 'gru4rec', reason: 'no finished GRU4Rec run on this dataset: train GRU4Rec first' }]);
    const running = service.jobs.list().filter((j) => j.status === 'running');
    expect(running).toHaveLength(1);
    expect(running[0]).toMatchObject({ jobId: started.jobId, kind: 'ablation', studyId: started.studyId, datasetId, runId: null });

    const [listed] = await ok<AblationStudy[]>('ablation.list', { datasetId });
    expect(listed).toMatchObject({ id: started.studyId, jobId: started.jobId, status: 'running', datasetName: 'tiny' });
    expect(listed.variants.map((v) => [v.variant, v.run.id, v.run.status])).toEqual(started.variants.map((v, i) => [v, started.runIds[i], 'queued']));

    const busy = { code: 'conflict', message: 'A job is still running on this run; cancel it first' };
    expect(await refused('runs.delete', { runId: started.runIds[3] })).toEqual(busy);
    expect(await refused('train.resume', { runId: started.runIds[3] })).toEqual(busy);
    expect(await refused('ablation.resume', { studyId: started.studyId })).toMatchObject({ code: 'conflict' });
    expect(await refused('ablation.delete', { studyId: started.studyId })).toMatchObject({ code: 'conflict' });

    expect((await ok<{ cancelled: boolean }>('jobs.cancel', { jobId: started.jobId })).cancelled).toBe(true);
    expect((await service.jobs.wait(started.jobId)).status).toBe('cancelled');
    const after = await ok<AblationStudy>('ablation.get', { studyId: started.studyId });
    expect(after.status).toBe('cancelled');
    expect(after.jobId).toBeNull();
    expect(after.variants.map((v) => v.run.status)).toEqual(started.runIds.map(() => 'cancelled'));

    // Resume: the same runs in the same order, in one new job.
    const { jobId } = await ok<{ jobId: string }>('ablation.resume', { studyId: started.studyId });
    expect(service.jobs.get(jobId)).toMatchObject({ kind: 'ablation', studyId: started.studyId, status: 'running' });
    await ok('jobs.cancel', { jobId });
    await service.jobs.wait(jobId);

    // A variant resumed on its own (or evaluated) guards the whole study against resume and delete.
    const single = await ok<{ jobId: string }>('train.resume', { runId: started.runIds[0] });
    const variantBusy = { code: 'conflict', message: expect.stringMatching(new RegExp(`^Run ${started.runIds[0]} .* is used by another job`)) };
    expect(await refused('ablation.delete', { studyId: started.studyId })).toMatchObject(variantBusy);
    expect(await refused('ablation.resume', { studyId: started.studyId })).toMatchObject(variantBusy);
    await ok('jobs.cancel', { jobId: single.jobId });
    await service.jobs.wait(single.jobId);

    expect(await ok<{ deleted: number }>('ablation.delete', { studyId: started.studyId })).toEqual({ deleted: 6 });
    expect(await refused('ablation.get', { studyId: started.studyId })).toMatchObject({ code: 'not_found' });
    expect(await ok<AblationStudy[]>('ablation.list', { datasetId })).toEqual([]);
  });
});
