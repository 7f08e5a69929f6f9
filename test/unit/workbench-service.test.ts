// The API implementation behind both transports: input validation, error shapes, and the case-study
// assembly from stored run results. Jobs are not started here (the e2e test drives them through workers).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importDataset } from '../../src/core/importers';
import { WorkbenchService } from '../../src/main/services/workbench-service';

let dir: string;
let service: WorkbenchService;
let datasetId: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'almostrec-svc-'));
  service = new WorkbenchService({
    dataDir: dir,
    dbPath: join(dir, 'catalog.sqlite'),
    workerPath: join(dir, 'no-worker.js'),
    transport: 'http',
    version: '9.9.9',
    autoImport: false
  });
  const fixture = resolve(__dirname, '../fixtures/importers/ml-latest');
  ({ datasetId } = await importDataset(service.catalog, { format: 'movielens-latest', path: fixture, name: 'tiny', options: {} }));
});

afterAll(async () => {
  await service.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('WorkbenchService', () => {
  it('rejects unknown methods and invalid input with typed errors', async () => {
    expect(await service.handle('nope.nope', {})).toMatchObject({ ok: false, error: { code: 'not_found' } });
    const bad = await service.handle('items.search', { datasetId: -1, limit: 10_000 });
    expect(bad).toMatchObject({ ok: false, error: { code: 'invalid_input' } });
    expect(bad.ok ? '' : bad.error.message).toMatch(/datasetId/);
    const extra = await service.handle('runs.list', { datasetId, surprise: true });
    expect(extra).toMatchObject({ ok: false, error: { code: 'invalid_input' } });
    const badConfig = await service.handle('train.start', { model: 'sasrec', datasetId, config: { dropout: 3 } });
    expect(badConfig).toMatchObject({ ok: false, error: { code: 'invalid_input' } });
  });

  it('refuses an ALMOSTREC run whose backbone or sequential run is not usable, saying what to fix', async () => {
    const c = service.catalog;
    const start = async (config: Record<string, number>): Promise<string> => {
      const r = await service.handle('train.start', { model: 'almostrec', datasetId, config });
      expect(r).toMatchObject({ ok: false, error: { code: 'invalid_input' } });
      return r.ok ? '' : r.error.message;
    };
    const runsBefore = c.listRuns().length;
    expect(await start({})).toMatch(/^ALMOSTREC needs a backbone: set backboneId/);
    expect(await start({ backboneId: 999 })).toBe('ALMOSTREC: backbone 999 not found');
    const backboneId = c.createBackbone({ name: 'half-done', source: 'pretrained', datasetId, path: join(dir, 'b'), config: {} });
    expect(await start({ backboneId })).toBe(`ALMOSTREC: backbone ${backboneId} (half-done) is queued; it must finish pretraining first`);
    c.updateBackbone(backboneId, { status: 'succeeded' });
    expect(await start({ backboneId })).toMatch(/^ALMOSTREC needs a sequential run: set seqRunId/);
    const bpr = c.createRun({ datasetId, model: 'bpr', config: {}, backend: null });
    expect(await start({ backboneId, seqRunId: bpr })).toBe(`ALMOSTREC: run ${bpr} is a bpr run; M comes from a SASRec or GRU4Rec run`);
    const sasrec = c.createRun({ datasetId, model: 'sasrec', config: {}, backend: null });
    expect(await start({ backboneId, seqRunId: sasrec })).toBe(`ALMOSTREC: run ${sasrec} is queued; its item embeddings exist once it has finished`);
    c.updateRun(sasrec, { status: 'succeeded' });
    expect(await start({ backboneId, seqRunId: sasrec })).toMatch(`ALMOSTREC: run ${sasrec} has no item_embeddings artifact`);
    c.addArtifact(sasrec, 'item_embeddings', join(dir, 'gone.safetensors'), '0'.repeat(64));
    expect(await start({ backboneId, seqRunId: sasrec })).toBe(`ALMOSTREC: run ${sasrec}'s item embeddings ${join(dir, 'gone.safetensors')} are missing`);
    // Nothing was queued for any of them.
    expect(c.listRuns().length).toBe(runsBefore + 2);
    c.deleteRun(bpr);
    c.deleteRun(sasrec);
    c.deleteBackbone(backboneId);
  });

  it('reports app info and lists the imported dataset', async () => {
    const info = await service.handle('app.info', {});
    expect(info).toMatchObject({ ok: true, result: { version: '9.9.9', transport: 'http', defaultDataset: { name: 'ml-latest-small', imported: false } } });
    const list = await service.handle('datasets.list', {});
    expect(list.ok && (list.result as { name: string }[]).map((d) => d.name)).toEqual(['tiny']);
  });

  it('refuses a second dataset with the same name and unknown ids', async () => {
    const dup = await service.handle('datasets.import', { format: 'movielens-latest', path: '/x', name: 'tiny' });
    expect(dup).toMatchObject({ ok: false, error: { code: 'conflict' } });
    expect(await service.handle('runs.get', { runId: 999 })).toMatchObject({ ok: false, error: { code: 'not_found' } });
    expect(await service.handle('eval.start', { runId: 999 })).toMatchObject({ ok: false, error: { code: 'not_found' } });
  });

  it('assembles a case study from stored recommendations and ranks', async () => {
    const c = service.catalog;
    const user = c.searchUsers(datasetId, '', 1).users[0];
    const history = c.getUserHistory(datasetId, user.id);
    const heldOut = history[history.length - 1];
    const other = c.searchItems(datasetId, '', 0, 50).items.find((i) => !history.some((h) => h.item.id === i.id))!;
    const runId = c.createRun({ datasetId, model: 'popularity', config: {}, backend: null });
    c.saveRecommendations(runId, [
      { userId: user.id, rank: 0, itemId: other.id, score: 3 },
      { userId: user.id, rank: 1, itemId: heldOut.item.id, score: 2 }
    ]);
    c.saveUserRanks(runId, 'test', [{ userId: user.id, itemId: heldOut.item.id, rank: 1 }]);
    const res = await service.handle('caseStudy.get', { datasetId, userId: user.id, runIds: [runId], k: 10 });
    expect(res.ok).toBe(true);
    if (!res.ok) return;
    const cs = res.result as import('../../src/shared/types').CaseStudy;
    expect(cs.heldOut.role).toBe('test');
    expect(cs.heldOut.item.id).toBe(heldOut.item.id);
    expect(cs.history).toHaveLength(history.length - 1);
    expect(cs.history.at(-1)!.role).toBe('valid');
    expect(cs.columns[0].targetRank).toBe(1);
    expect(cs.columns[0].recommendations.map((r) => r.hit)).toEqual([false, true]);
    const noRecs = c.createRun({ datasetId, model: 'popularity', config: {}, backend: null });
    expect(await service.handle('caseStudy.get', { datasetId, userId: user.id, runIds: [noRecs] })).toMatchObject({ ok: false, error: { code: 'not_found' } });
  });

  it('starts an LLM case for finished LLM runs only, and serves the stored one with the matched poster', async () => {
    const c = service.catalog;
    const user = c.searchUsers(datasetId, '', 1).users[0];
    const start = (runId: number, userId = user.id) => service.handle('caseStudy.llm.start', { runId, userId });
    const sasrec = c.createRun({ datasetId, model: 'sasrec', config: {}, backend: null });
    c.updateRun(sasrec, { status: 'succeeded' });
    expect(await start(sasrec)).toMatchObject({ ok: false, error: { code: 'invalid_input', message: `Run ${sasrec} is a sasrec run; only the LLM models read a prompt` } });
    const llara = c.createRun({ datasetId, model: 'llara', config: {}, backend: null });
    expect(await start(llara)).toMatchObject({ ok: false, error: { code: 'conflict', message: `Run ${llara} is queued; only finished runs have a case study` } });
    c.updateRun(llara, { status: 'succeeded' });
    expect(await start(llara, 999_999)).toMatchObject({ ok: false, error: { code: 'not_found' } });
    expect(await service.handle('caseStudy.llm.get', { runId: 999_999, userId: user.id })).toMatchObject({ ok: false, error: { code: 'not_found' } });
    expect(await service.handle('caseStudy.llm.get', { runId: llara, userId: user.id })).toEqual({ ok: true, result: null });

    // What the job stores comes back as is, with the matched candidate's poster read from the catalog.
    const poster = c.searchItems(datasetId, '', 0, 50).items.find((i) => i.imageUrl !== null)!;
    const named = { id: poster.id, externalId: poster.externalId, title: poster.title, hasImage: true };
    const stored = {
      runId: llara,
      userId: user.id,
      model: 'llara' as const,
      prompt: `<s> history [ID:${poster.title}]`,
      heldOut: named,
      targetRank: 0,
      rankSource: 'stored' as const,
      llara: { generated: poster.title, matched: named, candidates: [named], hit: true },
      createdAt: new Date().toISOString()
    };
    c.saveLlmCase(stored);
    expect(await service.handle('caseStudy.llm.get', { runId: llara, userId: user.id })).toEqual({ ok: true, result: { ...stored, matchedImageUrl: poster.imageUrl } });
    // The case dies with its run.
    c.deleteRun(llara);
    expect(c.getLlmCase(llara, user.id)).toBeNull();
    c.deleteRun(sasrec);
  });

  it('marks runs left running by a previous process as failed and resumable', async () => {
    const runId = service.catalog.createRun({ datasetId, model: 'sasrec', config: {}, backend: null });
    service.catalog.updateRun(runId, { status: 'running' });
    const again = new WorkbenchService({ dataDir: dir, dbPath: join(dir, 'catalog.sqlite'), workerPath: join(dir, 'x.js'), transport: 'ipc', version: '1', autoImport: false });
    const run = again.catalog.getRun(runId)!;
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(/Resume/);
    await again.close();
  });
});
