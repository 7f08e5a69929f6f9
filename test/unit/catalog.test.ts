// Catalog: schema/migrations, concurrency settings, item/user lookups, runs bookkeeping, deletion.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog, migrate, MIGRATIONS } from '../../src/core/catalog';
import { importDataset } from '../../src/core/importers';
import type { BackendInfo, Metrics } from '../../src/shared/types';

const FIXTURES = path.resolve(__dirname, '../fixtures/importers');
const backend: BackendInfo = { name: 'cpu', threads: 1, device: 'CPU', simd: false };
const metrics = (x: number): Metrics => ({ hr10: x, ndcg10: x / 2, hr20: x * 1.5, ndcg20: x / 1.5, mrr: x / 3 });

let tmp: string;
let catalog: Catalog;
let datasetId: number;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'almostrec-catalog-'));
  catalog = Catalog.open(path.join(tmp, 'nested', 'catalog.sqlite'));
  ({ datasetId } = await importDataset(catalog, { format: 'movielens-latest', path: path.join(FIXTURES, 'ml-latest'), name: 'tiny', options: {} }));
});
afterAll(() => {
  catalog.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const userId = (ext: string): number =>
  (catalog.db.prepare('SELECT id FROM users WHERE dataset_id = ? AND external_id = ?').get(datasetId, ext) as { id: number }).id;
const itemId = (ext: string): number =>
  (catalog.db.prepare('SELECT id FROM items WHERE dataset_id = ? AND external_id = ?').get(datasetId, ext) as { id: number }).id;

describe('schema', () => {
  it('creates the folder, uses WAL, foreign keys, a busy timeout, and the latest schema version', () => {
    expect(fs.existsSync(path.join(tmp, 'nested', 'catalog.sqlite'))).toBe(true);
    expect(catalog.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(catalog.db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(catalog.db.pragma('busy_timeout', { simple: true })).toBe(10000);
    expect(catalog.db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    const tables = (catalog.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((t) => t.name);
    for (const t of ['datasets', 'users', 'items', 'interactions', 'splits', 'runs', 'run_epochs', 'run_metrics', 'run_user_ranks', 'recommendations', 'artifacts', 'vision_features']) {
      expect(tables).toContain(t);
    }
  });

  it('runs only new migrations, and refuses a file from a newer app', () => {
    const db = new BetterSqlite3(':memory:');
    const applied: number[] = [];
    const steps = [() => applied.push(1), () => applied.push(2)];
    expect(migrate(db, steps.slice(0, 1))).toBe(1);
    expect(migrate(db, steps)).toBe(2);
    expect(applied).toEqual([1, 2]);
    expect(() => migrate(db, steps.slice(0, 1))).toThrow(/newer than this app supports/);
    db.close();
  });

  it('reopens an existing file and sees a second connection’s writes', () => {
    const other = Catalog.open(path.join(tmp, 'nested', 'catalog.sqlite'));
    try {
      expect(other.findDatasetByName('tiny')?.id).toBe(datasetId);
      const runId = other.createRun({ datasetId, model: 'popularity', config: {}, backend: null });
      expect(catalog.getRun(runId)?.status).toBe('queued');
      other.deleteRun(runId);
    } finally {
      other.close();
    }
  });
});

describe('datasets, items and users', () => {
  it('lists and finds datasets', () => {
    expect(catalog.listDatasets().map((d) => d.name)).toEqual(['tiny']);
    expect(catalog.getDataset(datasetId)?.sourcePath).toBe(path.join(FIXTURES, 'ml-latest'));
    expect(catalog.findDatasetByName('nope')).toBeNull();
    expect(catalog.getDataset(999)).toBeNull();
  });

  it('searches items by title or id, case-insensitive, most interacted first then title', () => {
    const all = catalog.searchItems(datasetId, '', 0, 100);
    expect(all.total).toBe(7);
    // items 1-4 have 7 interactions, 5-6 have 6, item 7 has 4; ties by title.
    expect(all.items.map((i) => i.externalId)).toEqual(['1', '2', '4', '3', '5', '6', '7']);
    expect(all.items[0].interactions).toBe(7);
    expect(catalog.searchItems(datasetId, 'BETA', 0, 10).items.map((i) => i.title)).toEqual(['Beta, The (1991)']);
    expect(catalog.searchItems(datasetId, '7', 0, 10).items.map((i) => i.externalId)).toEqual(['7']);
    expect(catalog.searchItems(datasetId, '%', 0, 10).total).toBe(0); // LIKE wildcards are literal
    const page = catalog.searchItems(datasetId, '', 2, 2);
    expect(page).toMatchObject({ total: 7 });
    expect(page.items.map((i) => i.externalId)).toEqual(['4', '3']);
  });

  it('gets items by id', () => {
    const ids = [itemId('1'), itemId('7'), 123456];
    const got = catalog.getItems(ids);
    expect([...got.keys()].sort()).toEqual([ids[0], ids[1]].sort());
    expect(got.get(ids[1])?.title).toBe('Eta (1996)');
  });

  it('searches users by id prefix in numeric order', () => {
    const r = catalog.searchUsers(datasetId, '', 3);
    expect(r.total).toBe(6);
    expect(r.users.map((u) => u.externalId)).toEqual(['1', '2', '3']);
    expect(r.users[0].interactions).toBe(6);
    expect(catalog.searchUsers(datasetId, '4', 10).users.map((u) => u.externalId)).toEqual(['4']);
    expect(catalog.getUser(userId('2'))).toEqual({ id: userId('2'), externalId: '2', interactions: 6 });
    expect(catalog.getUser(999999)).toBeNull();
  });
});

describe('runs', () => {
  it('creates, updates, lists and reads runs with history and metrics', () => {
    const a = catalog.createRun({ datasetId, model: 'sasrec', config: { epochs: 3 }, backend });
    const b = catalog.createRun({ datasetId, model: 'popularity', config: {}, backend: null });
    catalog.updateRun(a, { status: 'running', startedAt: '2026-01-01T00:00:00Z', checkpointPath: '/x/ckpt', bestEpoch: 2, config: { epochs: 4 } });
    expect(() => catalog.updateRun(424242, { status: 'failed' })).toThrow(/does not exist/);
    catalog.appendEpoch(a, { epoch: 1, loss: 9, validNdcg10: 0.1, seconds: 2 });
    catalog.appendEpoch(a, { epoch: 2, loss: 8, validNdcg10: null, seconds: 2 });
    catalog.appendEpoch(a, { epoch: 3, loss: 7, validNdcg10: 0.3, seconds: 2 });
    catalog.clearEpochsAfter(a, 2);
    catalog.appendEpoch(a, { epoch: 2, loss: 7.5, validNdcg10: 0.2, seconds: 3 }); // resume repeats epoch 2
    catalog.saveMetrics(a, 'valid', metrics(0.2));
    catalog.saveMetrics(a, 'valid', metrics(0.4)); // replaces
    catalog.saveMetrics(a, 'test', metrics(0.3));

    const runs = catalog.listRuns(datasetId);
    expect(runs.map((r) => r.id)).toEqual([b, a]);
    expect(runs[0]).toMatchObject({ model: 'popularity', status: 'queued', valid: null, test: null, backend: null });
    const detail = catalog.getRun(a)!;
    expect(detail).toMatchObject({
      datasetName: 'tiny',
      status: 'running',
      startedAt: '2026-01-01T00:00:00Z',
      endedAt: null,
      checkpointPath: '/x/ckpt',
      bestEpoch: 2,
      config: { epochs: 4 },
      backend
    });
    expect(detail.valid).toEqual(metrics(0.4));
    expect(detail.test).toEqual(metrics(0.3));
    expect(detail.history).toEqual([
      { epoch: 1, loss: 9, validNdcg10: 0.1, seconds: 2 },
      { epoch: 2, loss: 7.5, validNdcg10: 0.2, seconds: 3 }
    ]);
    catalog.updateRun(a, { status: 'succeeded', endedAt: '2026-01-01T01:00:00Z', error: null });
    expect(catalog.listRuns().find((r) => r.id === a)?.status).toBe('succeeded');
    expect(catalog.deleteRun(b)).toBe(true);
    expect(catalog.deleteRun(b)).toBe(false);
    expect(catalog.getRun(b)).toBeNull();
  });

  it('stores per-user ranks, recommendations and artifacts', () => {
    const run = catalog.createRun({ datasetId, model: 'popularity', config: {}, backend: null });
    const u1 = userId('1');
    const u2 = userId('2');
    catalog.saveUserRanks(run, 'test', [{ userId: u1, itemId: itemId('6'), rank: 4 }, { userId: u2, itemId: itemId('5'), rank: 0 }]);
    catalog.saveUserRanks(run, 'valid', [{ userId: u1, itemId: itemId('5'), rank: 9 }]);
    expect(catalog.getUserRank(run, 'test', u1)).toBe(4);
    expect(catalog.getUserRank(run, 'valid', u1)).toBe(9);
    expect(catalog.getUserRank(run, 'valid', u2)).toBeNull();
    const recs = [3, 1, 2].map((rank) => ({ userId: u1, rank, itemId: itemId(String(rank)), score: 10 - rank }));
    catalog.saveRecommendations(run, recs);
    expect(catalog.getRecommendations(run, u1, 2)).toEqual([
      { rank: 1, itemId: itemId('1'), score: 9 },
      { rank: 2, itemId: itemId('2'), score: 8 }
    ]);
    catalog.saveRecommendations(run, [{ userId: u2, rank: 1, itemId: itemId('4'), score: 1 }]); // replaces all
    expect(catalog.getRecommendations(run, u1, 10)).toEqual([]);
    catalog.addArtifact(run, 'checkpoint', '/x/a.bin', 'ab'.repeat(32));
    expect(catalog.db.prepare('SELECT kind, path FROM artifacts WHERE run_id = ?').all(run)).toEqual([{ kind: 'checkpoint', path: '/x/a.bin' }]);
  });
});

describe('deleteDataset', () => {
  it('removes the dataset and everything that hangs off it', async () => {
    const { datasetId: other } = await importDataset(catalog, { format: 'microlens', path: path.join(FIXTURES, 'microlens'), name: 'other', options: {} });
    const run = catalog.createRun({ datasetId: other, model: 'popularity', config: {}, backend: null });
    catalog.saveMetrics(run, 'test', metrics(0.1));
    const item = catalog.searchItems(other, '', 0, 1).items[0].id;
    catalog.db.prepare("INSERT INTO vision_features (item_id, encoder_id, dims, tensor) VALUES (?, 'clip', '[2]', ?)").run(item, Buffer.alloc(8));
    const count = (sql: string): number => (catalog.db.prepare(sql).get() as { n: number }).n;
    const before = count('SELECT COUNT(*) AS n FROM interactions');
    expect(catalog.deleteDataset(other)).toBe(true);
    expect(catalog.deleteDataset(other)).toBe(false);
    expect(catalog.getDataset(other)).toBeNull();
    expect(count('SELECT COUNT(*) AS n FROM interactions')).toBe(before - 44);
    expect(count(`SELECT COUNT(*) AS n FROM items WHERE dataset_id = ${other}`)).toBe(0);
    expect(count(`SELECT COUNT(*) AS n FROM splits WHERE dataset_id = ${other}`)).toBe(0);
    expect(count(`SELECT COUNT(*) AS n FROM runs WHERE id = ${run}`)).toBe(0);
    expect(count(`SELECT COUNT(*) AS n FROM run_metrics WHERE run_id = ${run}`)).toBe(0);
    expect(count('SELECT COUNT(*) AS n FROM vision_features')).toBe(0);
    expect(catalog.db.pragma('foreign_key_check')).toEqual([]);
    expect(catalog.findDatasetByName('tiny')).not.toBeNull();
  });
});
