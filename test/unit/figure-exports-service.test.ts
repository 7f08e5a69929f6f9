// runs.recommendations (the Runs view's CSV) and caseStudy.get read through the shared case-study reader:
// every test user's stored top-k with the hit flag, refusals for unknown and unfinished runs.
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTrainingJob } from '../../src/core/jobs/run-jobs';
import type { RecommendationRow } from '../../src/shared/figures/recommendations-csv';
import { recommendationsCsv } from '../../src/shared/figures/recommendations-csv';
import type { CaseStudy } from '../../src/shared/types';
import type { WorkbenchService } from '../../src/main/services/workbench-service';
import { apiCalls, serviceWithTinyDataset, type ServiceWithDataset } from './service-fixture';

let fx: ServiceWithDataset;
let runId: number;
const { ok, refused } = apiCalls((): WorkbenchService => fx.service);

beforeAll(async () => {
  fx = await serviceWithTinyDataset('almostrec-figures-', 'fake-job-worker.mjs');
  const c = fx.service.catalog;
  runId = c.createRun({ datasetId: fx.datasetId, model: 'popularity', config: {}, backend: null });
  await runTrainingJob(c, runId, { dataDir: fx.dir, onProgress: () => {}, onLog: () => {}, signal: { aborted: false }, resume: false });
});
afterAll(async () => {
  await fx?.service.close();
  rmSync(fx.dir, { recursive: true, force: true });
});

describe('runs.recommendations', () => {
  it('lists every test user with ranks from 1, ids of the files, and the held-out item as the hit', async () => {
    const res = await ok<{ runId: number; model: string; datasetName: string; rows: RecommendationRow[] }>('runs.recommendations', { runId });
    expect(res).toMatchObject({ runId, model: 'popularity', datasetName: 'tiny' });
    const c = fx.service.catalog;
    const users = c.searchUsers(fx.datasetId, '', 100).users;
    expect(new Set(res.rows.map((r) => r.user))).toEqual(new Set(users.map((u) => u.externalId)));
    for (const u of users) {
      const heldOut = c.getUserHistory(fx.datasetId, u.id).at(-1)!.item;
      const mine = res.rows.filter((r) => r.user === u.externalId);
      const stored = c.getRecommendations(runId, u.id, 20);
      expect(mine.map((r) => r.rank)).toEqual(stored.map((_, i) => i + 1));
      const items = c.getItems(stored.map((s) => s.itemId));
      expect(mine.map((r) => [r.itemId, r.title, r.score])).toEqual(stored.map((s) => [items.get(s.itemId)!.externalId, items.get(s.itemId)!.title, s.score]));
      expect(mine.map((r) => r.hit)).toEqual(stored.map((s) => s.itemId === heldOut.id));
    }
    // The fixture leaves each user one unseen item, the held-out one: every row is a hit.
    expect(res.rows.length).toBeGreaterThan(0);
    expect(res.rows.every((r) => r.hit)).toBe(true);
    const csv = recommendationsCsv(res.rows).trimEnd().split('\r\n');
    expect(csv[0]).toBe('user,rank,item_id,title,score,hit');
    expect(csv).toHaveLength(res.rows.length + 1);
  });

  it('refuses unknown and unfinished runs, and a k out of range', async () => {
    expect(await refused('runs.recommendations', { runId: 999 })).toMatchObject({ code: 'not_found', message: 'Run 999 not found' });
    const queued = fx.service.catalog.createRun({ datasetId: fx.datasetId, model: 'popularity', config: {}, backend: null });
    expect(await refused('runs.recommendations', { runId: queued })).toMatchObject({ code: 'conflict' });
    expect(await refused('runs.recommendations', { runId, k: 0 })).toMatchObject({ code: 'invalid_input' });
  });
});

describe('caseStudy.get through the shared reader', () => {
  it('answers as before, and refuses with the same codes', async () => {
    const user = fx.service.catalog.searchUsers(fx.datasetId, '', 1).users[0];
    const study = await ok<CaseStudy>('caseStudy.get', { datasetId: fx.datasetId, userId: user.id, runIds: [runId], k: 10 });
    expect(study.heldOut.role).toBe('test');
    expect(study.columns[0].recommendations[0]).toMatchObject({ rank: 0, hit: true, item: { id: study.heldOut.item.id } });
    expect(await refused('caseStudy.get', { datasetId: fx.datasetId, userId: 99_999, runIds: [] })).toMatchObject({ code: 'not_found', message: 'User 99999 not found' });
    expect(await refused('caseStudy.get', { datasetId: 77, userId: user.id, runIds: [] })).toMatchObject({ code: 'not_found', message: 'Dataset 77 not found' });
    expect(await refused('caseStudy.get', { datasetId: fx.datasetId, userId: user.id, runIds: [999] })).toMatchObject({ code: 'not_found' });
  });
});
