// The importers on the real datasets in ../shared/datasets (read in place: their licences forbid copying
// them into the repository). Skipped only where that folder does not exist.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/core/catalog';
import { importDataset } from '../../src/core/importers';

const DATASETS = path.resolve(__dirname, '../..', '../shared/datasets');

describe.skipIf(!fs.existsSync(DATASETS))('real datasets', () => {
  let catalog: Catalog;
  beforeAll(() => {
    catalog = Catalog.open(':memory:');
  });
  afterAll(() => catalog.close());

  it('ml-latest-small: 100,836 ratings, 5-core 610 users / 3,650 items / 90,274 interactions', async () => {
    const t0 = performance.now();
    const { datasetId, warnings } = await importDataset(catalog, {
      format: 'movielens-latest',
      path: path.join(DATASETS, 'ml-latest-small'),
      name: 'ml-latest-small',
      options: {}
    });
    const ms = performance.now() - t0;
    const ds = catalog.getDataset(datasetId)!;
    expect(ds.stats).toMatchObject({ users: 610, items: 9742, interactions: 100836, itemsWithImage: 3628, itemsWithText: 9244 });
    expect(ds.stats.filtered).toMatchObject({ users: 610, items: 3650, interactions: 90274 });
    expect(new Date(ds.stats.firstTimestamp! * 1000).toISOString()).toBe('1996-03-29T18:36:55.000Z');
    expect(warnings).toEqual([]);
    const toy = catalog.searchItems(datasetId, 'toy story (1995)', 0, 5).items[0];
    expect(toy).toMatchObject({ externalId: '1', genres: ['Adventure', 'Animation', 'Children', 'Comedy', 'Fantasy'] });
    expect(toy.imageUrl).toMatch(/^data:image\/jpeg;base64,/);
    expect(toy.text).toMatch(/^Led by Woody/);
    expect(ms).toBeLessThan(30_000);
    console.log(`ml-latest-small import: ${ms.toFixed(0)} ms`);
  });

  it('ml-100k (movielens-100k-mm): 943 users, 1,682 items, 100,000 ratings, posters from ../items.csv', async () => {
    const { datasetId, warnings } = await importDataset(catalog, {
      format: 'movielens-100k',
      path: path.join(DATASETS, 'movielens-100k-mm', 'ml-100k'),
      name: 'ml-100k',
      options: {}
    });
    const ds = catalog.getDataset(datasetId)!;
    expect(ds.stats).toMatchObject({ users: 943, items: 1682, interactions: 100000, itemsWithText: 1664 });
    expect(ds.stats.filtered).toMatchObject({ users: 943, interactions: 99287 });
    expect(ds.stats.itemsWithImage).toBeGreaterThan(1300);
    expect(warnings).toEqual([]);
    const seq = catalog.loadSequences(datasetId);
    expect(seq.users).toHaveLength(943);
    expect(Math.min(...seq.users.map((u) => u.items.length))).toBeGreaterThanOrEqual(5);
  });

  it('microlens-50k: 50,000 users, 19,220 items, 359,708 interactions in line order', async () => {
    const { datasetId } = await importDataset(catalog, {
      format: 'microlens',
      path: path.join(DATASETS, 'microlens-50k'),
      name: 'microlens-50k',
      options: {}
    });
    const ds = catalog.getDataset(datasetId)!;
    expect(ds.stats).toMatchObject({ users: 50000, items: 19220, interactions: 359708, firstTimestamp: null });
    const f = ds.stats.filtered!;
    expect(f.users + f.removedUsers).toBe(50000);
    expect(f.interactions + f.removedInteractions).toBe(359708);
    // Each kept user's history is their line's items, in line order, minus what the filter removed.
    const lines = new Map(
      fs.readFileSync(path.join(DATASETS, 'microlens-50k', 'MicroLens-50k_pairs.tsv'), 'utf8')
        .split('\n')
        .map((l) => l.split('\t'))
        .map(([u, items]) => [u, (items ?? '').trim().split(' ')] as const)
    );
    const users = catalog.searchUsers(datasetId, '', 20).users;
    expect(users.length).toBe(20);
    for (const u of users) {
      const ids = catalog.getUserHistory(datasetId, u.id).map((h) => h.item.externalId);
      expect(ids.length).toBeGreaterThanOrEqual(5);
      expect(lines.get(u.externalId)!.filter((x) => ids.includes(x))).toEqual(ids);
    }
  });
});
