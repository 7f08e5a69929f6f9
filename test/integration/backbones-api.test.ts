// The backbones API as the UI uses it in browser mode: HTTP POST /api/<method> and job events over the
// WebSocket, served by the real WorkbenchService with the built job worker (npm run build; `npm test`
// builds first). A tiny pretraining on the importer fixture, registering the tiny llava-hf fixture, the
// registration errors a user sees, visual tokens, and deletion that never touches a registered folder.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { importDataset } from '../../src/core/importers';
import { computeThreads } from '../../src/core/tensor/backend';
import { startHttpServer, type RunningServer } from '../../src/main/server/http-server';
import { WorkbenchService } from '../../src/main/services/workbench-service';
import type { JobEvent } from '../../src/shared/api';
import type { BackboneDetail, BackboneSummary } from '../../src/shared/backbones';
import type { ApiErrorShape, JobInfo } from '../../src/shared/types';

const root = resolve(__dirname, '..', '..');
const workerPath = join(root, 'out', 'main', 'job-worker.js');
const HF_FIXTURE = join(root, 'test', 'fixtures', 'hf-llava-tiny', 'model');
const TINY = { hiddenSize: 32, numLayers: 1, numHeads: 2, numKvHeads: 1, intermediateSize: 64, maxTokens: 32, batchSize: 2, stage0Steps: 2, stage1Steps: 2, stage2Steps: 2, heldOutPercent: 20 };

let dir: string;
let service: WorkbenchService;
let server: RunningServer;
let socket: WebSocket;
let datasetId: number;
const events: JobEvent[] = [];

beforeAll(async () => {
  if (!existsSync(workerPath)) execFileSync('npx', ['electron-vite', 'build'], { cwd: root, stdio: 'ignore' });
  dir = mkdtempSync(join(tmpdir(), 'almostrec-backbones-api-'));
  const ui = join(dir, 'ui');
  mkdirSync(ui);
  writeFileSync(join(ui, 'index.html'), '<!doctype html><title>t</title>');
  service = new WorkbenchService({ dataDir: dir, dbPath: join(dir, 'catalog.sqlite'), workerPath, transport: 'http', version: '1', autoImport: false });
  ({ datasetId } = await importDataset(service.catalog, { format: 'movielens-latest', path: join(root, 'test', 'fixtures', 'importers', 'ml-latest'), name: 'tiny', options: {} }));
  server = await startHttpServer(service, { rendererDir: ui });
  socket = new WebSocket(`${server.url.replace('http', 'ws')}events?token=${server.token}`);
  socket.on('message', (m) => events.push(JSON.parse(String(m)) as JobEvent));
  await new Promise<void>((r) => socket.on('open', () => r()));
});

afterAll(async () => {
  socket?.close();
  await server?.close();
  await service?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

type Reply<T> = { ok: true; result: T } | { ok: false; error: ApiErrorShape };

async function call<T>(method: string, input: unknown): Promise<Reply<T>> {
  const res = await fetch(`${server.url}api/${method}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${server.token}` },
    body: JSON.stringify(input)
  });
  return (await res.json()) as Reply<T>;
}

async function ok<T>(method: string, input: unknown): Promise<T> {
  const r = await call<T>(method, input);
  if (!r.ok) throw new Error(`${method}: ${r.error.code}: ${r.error.message}`);
  return r.result;
}

async function error(method: string, input: unknown): Promise<ApiErrorShape> {
  const r = await call(method, input);
  if (r.ok) throw new Error(`${method} unexpectedly succeeded`);
  return r.error;
}

/** The job's 'finished' event, as the UI receives it. */
async function finished(jobId: string, timeoutMs: number): Promise<JobInfo> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const e = events.find((x): x is Extract<JobEvent, { type: 'finished' }> => x.type === 'finished' && x.job.jobId === jobId);
    if (e) return e.job;
    if (Date.now() > end) throw new Error(`job ${jobId} did not finish within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('backbones over HTTP', () => {
  let pretrainedId: number;

  it('pretrains a tiny backbone: live step metrics, stored history for the three stages, held-out loss per stage, a llava-hf folder', async () => {
    const { jobId, backboneId } = await ok<{ jobId: string; backboneId: number }>('backbones.pretrain', { datasetId, name: 'compact-tiny', config: TINY });
    pretrainedId = backboneId;
    const job = await finished(jobId, 300_000);
    expect(job.error, job.error?.message).toBeNull();
    expect(job).toMatchObject({ kind: 'pretrain', status: 'succeeded', backboneId, datasetId });

    const steps = events.filter((e): e is Extract<JobEvent, { type: 'progress' }> => e.type === 'progress' && e.jobId === jobId && e.metrics?.step !== undefined);
    expect(steps.length).toBeGreaterThan(0);
    for (const e of steps) {
      expect(e.backboneId).toBe(backboneId);
      expect(Object.keys(e.metrics!)).toEqual(expect.arrayContaining(['loss', 'stage', 'step', 'learningRate']));
      expect(Number.isFinite(e.metrics!.loss)).toBe(true);
    }

    const b = await ok<BackboneDetail>('backbones.get', { backboneId });
    expect(b).toMatchObject({ name: 'compact-tiny', source: 'pretrained', status: 'succeeded', datasetName: 'tiny', error: null });
    expect(b.path).toBe(join(dir, 'backbones', String(backboneId)));
    expect(b.architecture).toBeTruthy();
    expect(b.parameters).toBeGreaterThan(0);
    expect(b.startedAt).not.toBeNull();
    expect(b.endedAt).not.toBeNull();
    // What ran: on the CPU backends a replica worker (found next to the built job worker) takes the second core.
    expect(b.backend).not.toBeNull();
    if (['wasm', 'cpu'].includes(b.backend!.name)) expect(b.backend!.threads).toBe(computeThreads());
    expect(b.history.map((p) => p.stage)).toEqual([0, 0, 1, 1, 2, 2]);
    expect(b.heldOut).toMatchObject({ items: 1 }); // 20% of the fixture's 7 items
    expect(b.heldOut!.points.map((p) => [p.after, p.step])).toEqual([['start', 0], [0, 2], [1, 4], [2, 6]]);
    for (const p of b.heldOut!.points) expect(Number.isFinite(p.text)).toBe(true);
    for (let i = 1; i < b.history.length; i++) expect(b.history[i].step).toBeGreaterThan(b.history[i - 1].step);
    for (const p of b.history) expect(Number.isFinite(p.loss) && Number.isFinite(p.learningRate)).toBe(true);
    expect(existsSync(join(b.path, 'config.json'))).toBe(true);

    const list = await ok<BackboneSummary[]>('backbones.list', {});
    expect(list.map((x) => x.name)).toEqual(['compact-tiny']);
  }, 330_000);

  it('registers the tiny llava-hf fixture', async () => {
    const b = await ok<BackboneSummary>('backbones.register', { path: HF_FIXTURE, name: 'llava-tiny' });
    expect(b).toMatchObject({ name: 'llava-tiny', source: 'huggingface', status: 'succeeded', datasetId: null, path: HF_FIXTURE });
    expect(b.architecture).toBeTruthy();
    expect(b.parameters).toBeGreaterThan(0);
    expect(await error('backbones.register', { path: HF_FIXTURE, name: 'llava-tiny' })).toMatchObject({ code: 'conflict' });
  });

  it('refuses a wrong path or a folder without config.json, naming the path', async () => {
    const missing = join(dir, 'nowhere');
    const e1 = await error('backbones.register', { path: missing, name: 'a' });
    expect(e1.code).toBe('not_found');
    expect(e1.message).toContain(missing);

    const empty = join(dir, 'not-a-model');
    mkdirSync(empty);
    writeFileSync(join(empty, 'README.md'), 'no model here');
    const e2 = await error('backbones.register', { path: empty, name: 'b' });
    expect(['invalid_input', 'not_found']).toContain(e2.code);
    expect(e2.message).toContain(empty);
    expect(e2.message).toContain('config.json');
    expect((await ok<BackboneSummary[]>('backbones.list', {})).map((x) => x.name)).toEqual(['llava-tiny', 'compact-tiny']);
  });

  it('caches the pretrained backbone’s visual tokens for the dataset', async () => {
    const { jobId } = await ok<{ jobId: string }>('backbones.encodeFeatures', { backboneId: pretrainedId, datasetId, k: 4 });
    const job = await finished(jobId, 120_000);
    expect(job.error, job.error?.message).toBeNull();
    expect(job).toMatchObject({ kind: 'backbone-features', status: 'succeeded', backboneId: pretrainedId, datasetId });
  }, 150_000);

  it('deletes the pretrained backbone with its folder and the registered one without touching the fixture', async () => {
    const folder = join(dir, 'backbones', String(pretrainedId));
    expect(await ok('backbones.delete', { backboneId: pretrainedId })).toEqual({ deleted: true });
    expect(existsSync(folder)).toBe(false);
    const registered = (await ok<BackboneSummary[]>('backbones.list', {})).find((x) => x.name === 'llava-tiny')!;
    expect(await ok('backbones.delete', { backboneId: registered.id })).toEqual({ deleted: true });
    expect(existsSync(join(HF_FIXTURE, 'config.json'))).toBe(true);
    expect(existsSync(join(HF_FIXTURE, 'model.safetensors'))).toBe(true);
    expect(await ok('backbones.list', {})).toEqual([]);
  });
});
