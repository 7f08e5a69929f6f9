// The backbones.* API methods in the service, with a stand-in worker that speaks the job protocol: rows and
// folders, job bookkeeping (events carry the backbone id and the step metrics), conflicts, cancel, resume,
// and that a registered folder is never deleted. The real pretraining is exercised by the integration test.
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkbenchService } from '../../src/main/services/workbench-service';
import type { JobEvent } from '../../src/shared/api';
import type { BackboneDetail, BackboneSummary } from '../../src/shared/backbones';
import { apiCalls, serviceWithTinyDataset } from './service-fixture';

const workerPath = resolve(__dirname, '../fixtures/workers/fake-backbone-worker.mjs');
const tiny = { hiddenSize: 32, numLayers: 1, numHeads: 2, numKvHeads: 1, intermediateSize: 64, maxTokens: 32, batchSize: 2, stage1Steps: 2, stage2Steps: 2 };

let dir: string;
let service: WorkbenchService;
let datasetId: number;
const events: JobEvent[] = [];

beforeAll(async () => {
  ({ dir, service, datasetId } = await serviceWithTinyDataset('almostrec-bb-svc-', 'fake-backbone-worker.mjs'));
  service.onEvent((e) => events.push(e));
});

afterAll(async () => {
  await service.close();
  rmSync(dir, { recursive: true, force: true });
});

const { ok, refused } = apiCalls(() => service);

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 20));
  expect(cond()).toBe(true);
};

describe('backbones API', () => {
  it('pretrains: a queued row in its own folder, a job with the backbone id, step metrics in the events, cancel and resume', async () => {
    const { jobId, backboneId } = await ok<{ jobId: string; backboneId: number }>('backbones.pretrain', { datasetId, name: 'compact-tiny', config: tiny });
    const row = await ok<BackboneDetail>('backbones.get', { backboneId });
    expect(row).toMatchObject({ name: 'compact-tiny', source: 'pretrained', datasetId, datasetName: 'tiny', path: join(dir, 'backbones', String(backboneId)) });
    expect(row.config).toMatchObject({ ...tiny, seed: 42 }); // stored complete
    expect(service.jobs.get(jobId)).toMatchObject({ kind: 'pretrain', backboneId, datasetId, status: 'running', title: 'Pretraining compact-tiny on tiny' });

    await until(() => events.some((e) => e.type === 'progress' && e.jobId === jobId && e.metrics?.step === 3));
    const steps = events.filter((e): e is Extract<JobEvent, { type: 'progress' }> => e.type === 'progress' && e.jobId === jobId && e.metrics !== undefined);
    expect(steps.map((e) => [e.backboneId, e.metrics!.step, e.metrics!.stage])).toEqual([[backboneId, 1, 1], [backboneId, 2, 1], [backboneId, 3, 2]]);

    expect(await refused('backbones.pretrain', { datasetId, name: 'compact-tiny', config: tiny })).toEqual({
      code: 'conflict',
      message: 'A backbone named "compact-tiny" already exists'
    });
    expect(await refused('backbones.delete', { backboneId })).toMatchObject({ code: 'conflict', message: 'A job is still running on this backbone; cancel it first' });
    expect(await refused('backbones.resume', { backboneId })).toMatchObject({ code: 'conflict', message: expect.stringMatching(/only failed or cancelled/) });
    expect(await refused('datasets.delete', { datasetId })).toMatchObject({ code: 'conflict' });
    expect(await refused('backbones.encodeFeatures', { backboneId, datasetId, k: 4 })).toMatchObject({
      code: 'conflict',
      message: expect.stringMatching(/visual tokens need a finished backbone/)
    });

    expect((await ok<{ cancelled: boolean }>('jobs.cancel', { jobId })).cancelled).toBe(true);
    expect((await service.jobs.wait(jobId)).status).toBe('cancelled');
    // The stand-in worker never touches the row: the service records how the job ended.
    expect((await ok<BackboneDetail>('backbones.get', { backboneId })).status).toBe('cancelled');
    const finished = events.find((e) => e.type === 'finished' && e.job.jobId === jobId);
    expect(finished).toMatchObject({ job: { kind: 'pretrain', backboneId, status: 'cancelled' } });

    const resumed = await ok<{ jobId: string }>('backbones.resume', { backboneId });
    expect(service.jobs.get(resumed.jobId)).toMatchObject({ kind: 'pretrain', backboneId, title: 'Resuming pretraining of compact-tiny' });
    await ok('jobs.cancel', { jobId: resumed.jobId });
    await service.jobs.wait(resumed.jobId);
  });

  it('refuses bad pretraining input with the field named', async () => {
    expect(await refused('backbones.pretrain', { datasetId, name: 'x', config: { hiddenSize: 100, numHeads: 3, numKvHeads: 1 } })).toEqual({
      code: 'invalid_input',
      message: 'Invalid input — config.numHeads: hiddenSize 100 must be a multiple of numHeads 3',
      details: expect.any(Array)
    });
    expect(await refused('backbones.pretrain', { datasetId: 999, name: 'x' })).toMatchObject({ code: 'not_found', message: 'Dataset 999 not found' });
    expect(await refused('backbones.get', { backboneId: 999 })).toMatchObject({ code: 'not_found', message: 'Backbone 999 not found' });
    expect(service.catalog.findBackboneByName('x')).toBeNull();
  });

  it('computes visual tokens for a finished backbone, once at a time per dataset', async () => {
    const backboneId = service.catalog.createBackbone({ name: 'done', source: 'pretrained', datasetId, path: join(dir, 'backbones', 'x'), config: {}, status: 'succeeded' });
    const { jobId } = await ok<{ jobId: string }>('backbones.encodeFeatures', { backboneId, datasetId, k: 'all' });
    expect(service.jobs.get(jobId)).toMatchObject({ kind: 'backbone-features', backboneId, datasetId, title: 'Visual tokens (k = all) of done for tiny' });
    expect((await service.jobs.wait(jobId)).status).toBe('succeeded');
    expect(await refused('backbones.encodeFeatures', { backboneId, datasetId: 999 })).toMatchObject({ code: 'not_found' });
    expect(await refused('backbones.resume', { backboneId })).toMatchObject({ code: 'conflict', message: 'Backbone "done" is succeeded; only failed or cancelled pretraining can be resumed' });
  });

  it('deletes a pretrained backbone with its folder, and a registered one without touching its folder', async () => {
    const pre = service.catalog.createBackbone({ name: 'gone', source: 'pretrained', datasetId, path: join(dir, 'backbones', '0'), config: {}, status: 'failed' });
    const own = join(dir, 'backbones', String(pre));
    service.catalog.updateBackbone(pre, { path: own });
    mkdirSync(own, { recursive: true });
    writeFileSync(join(own, 'model.safetensors'), 'x');
    expect(await ok('backbones.delete', { backboneId: pre })).toEqual({ deleted: true });
    expect(existsSync(own)).toBe(false);
    expect(await ok('backbones.delete', { backboneId: pre })).toEqual({ deleted: false });

    const folder = join(dir, 'user-llava');
    mkdirSync(folder);
    writeFileSync(join(folder, 'config.json'), '{}');
    const hf = service.catalog.createBackbone({ name: 'user', source: 'huggingface', datasetId: null, path: folder, config: {} });
    expect(await refused('backbones.resume', { backboneId: hf })).toMatchObject({ code: 'conflict', message: expect.stringMatching(/registered checkpoint/) });
    expect(await ok('backbones.delete', { backboneId: hf })).toEqual({ deleted: true });
    expect(existsSync(join(folder, 'config.json'))).toBe(true);
  });

  it('refuses to register a missing folder or a taken name before reading anything', async () => {
    const missing = join(dir, 'no-such-model');
    expect(await refused('backbones.register', { path: missing, name: 'm' })).toEqual({ code: 'not_found', message: `Folder ${missing} not found` });
    service.catalog.createBackbone({ name: 'taken', source: 'huggingface', datasetId: null, path: dir, config: {} });
    expect(await refused('backbones.register', { path: dir, name: 'taken' })).toMatchObject({ code: 'conflict', message: 'A backbone named "taken" already exists' });
  });

  it('lists backbones newest first', async () => {
    const list = await ok<BackboneSummary[]>('backbones.list', {});
    expect(list.map((b) => b.name)).toEqual(['taken', 'done', 'compact-tiny']);
    expect(list[0]).not.toHaveProperty('history');
  });

  it('marks pretraining left running by a previous process as failed and resumable', async () => {
    const id = service.catalog.createBackbone({ name: 'interrupted', source: 'pretrained', datasetId, path: join(dir, 'backbones', 'i'), config: {} });
    service.catalog.updateBackbone(id, { status: 'running' });
    const again = new WorkbenchService({ dataDir: dir, dbPath: join(dir, 'catalog.sqlite'), workerPath, transport: 'ipc', version: '1', autoImport: false });
    try {
      expect(again.catalog.getBackbone(id)).toMatchObject({ status: 'failed', error: expect.stringMatching(/Resume it/) });
      expect(again.catalog.findBackboneByName('taken')?.status).toBe('succeeded'); // registered ones untouched
    } finally {
      await again.close();
    }
  });
});
