// What a finished run stores for the case study when a user has fewer unseen items than the stored top-k:
// only real items. The small importer fixture's 5-core split leaves every user exactly one unseen item (the
// held-out one), so each user's stored list is that item alone — never the evaluator's padding.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { Catalog } from '../../src/core/catalog';
import { importDataset } from '../../src/core/importers';
import { runTrainingJob, STORED_TOP_K } from '../../src/core/jobs/run-jobs';

const dir = mkdtempSync(join(tmpdir(), 'almostrec-recs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('stores no padding when fewer than k items are left to recommend', async () => {
  const catalog = Catalog.open(join(dir, 'catalog.sqlite'));
  try {
    const { datasetId } = await importDataset(catalog, { format: 'movielens-latest', path: resolve(__dirname, '../fixtures/importers/ml-latest'), name: 'tiny', options: {} });
    const runId = catalog.createRun({ datasetId, model: 'popularity', config: {}, backend: null });
    await runTrainingJob(catalog, runId, { dataDir: dir, onProgress: () => {}, onLog: () => {}, signal: { aborted: false }, resume: false });
    const users = catalog.searchUsers(datasetId, '', 100).users;
    expect(users).toHaveLength(6);
    for (const u of users) {
      const heldOut = catalog.getUserHistory(datasetId, u.id).at(-1)!;
      const recs = catalog.getRecommendations(runId, u.id, STORED_TOP_K);
      expect(recs.map((r) => [r.rank, r.itemId])).toEqual([[0, heldOut.item.id]]);
      expect(Number.isFinite(recs[0].score)).toBe(true);
    }
  } finally {
    catalog.close();
  }
});
