// The exact protocol of DESIGN.md §4: ordering (timestamp, ties by file order), the iterative 5-core
// filter, leave-one-out roles, and what loadSequences hands to the models.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/core/catalog';
import { coreFilter } from '../../src/core/data/five-core';
import { orderUserSequences, roleAt } from '../../src/core/data/sequence-order';
import { splitInput, trainPart } from '../../src/core/data/types';
import { importDataset } from '../../src/core/importers';

const FIXTURES = path.resolve(__dirname, '../fixtures/importers');

describe('coreFilter', () => {
  it('repeats until stable: removing an item can drop a user below 5', () => {
    // users 0-5 × items 0-5 (all kept); user 6 has items 0-3 + item 6; item 6 has 4 interactions.
    const pairs: [number, number][] = [];
    for (let u = 0; u < 6; u++) for (let i = 0; i < 6; i++) pairs.push([u, i]);
    pairs.push([6, 0], [6, 1], [6, 2], [6, 3], [6, 6], [0, 6], [1, 6], [2, 6]);
    const r = coreFilter(Int32Array.from(pairs, (p) => p[0]), Int32Array.from(pairs, (p) => p[1]), 7, 7);
    expect(r).toMatchObject({ users: 6, items: 6, interactions: 36, removedUsers: 1, removedItems: 1, removedInteractions: 8 });
    expect(r.rounds).toBe(2);
    pairs.forEach(([u, i], k) => expect(r.keep[k]).toBe(u < 6 && i < 6 ? 1 : 0));
  });

  it('can remove everything when no item reaches 5', () => {
    // A chain: each user has 5 items, but item counts are too small everywhere.
    const users = Int32Array.from({ length: 10 }, (_, k) => Math.floor(k / 5));
    const items = Int32Array.from({ length: 10 }, (_, k) => k);
    const r = coreFilter(users, items, 2, 10);
    expect(r).toMatchObject({ users: 0, items: 0, interactions: 0, removedUsers: 2, removedItems: 10 });
  });

  it('keeps exactly-5 users and items', () => {
    const users = Int32Array.from({ length: 25 }, (_, k) => Math.floor(k / 5));
    const items = Int32Array.from({ length: 25 }, (_, k) => k % 5);
    expect(coreFilter(users, items, 5, 5).interactions).toBe(25);
  });
});

describe('orderUserSequences', () => {
  it('orders by timestamp and breaks ties by file order, never by item id', () => {
    const userOf = Int32Array.from([1, 0, 0, 0, 1, 0]);
    const ts = Float64Array.from([5, 100, 100, 50, 5, 100]);
    const [u0, u1] = orderUserSequences(userOf, ts, 2);
    expect(Array.from(u0)).toEqual([3, 1, 2, 5]);
    expect(Array.from(u1)).toEqual([0, 4]);
  });

  it('uses file order alone when there are no timestamps, and honours the keep mask', () => {
    const userOf = Int32Array.from([0, 0, 0, 0]);
    const ts = Float64Array.from([NaN, NaN, NaN, NaN]);
    expect(Array.from(orderUserSequences(userOf, ts, 1, Uint8Array.from([1, 0, 1, 1]))[0])).toEqual([0, 2, 3]);
  });

  it('assigns leave-one-out roles', () => {
    expect([0, 1, 2, 3, 4].map((p) => roleAt(p, 5))).toEqual(['train', 'train', 'train', 'valid', 'test']);
  });
});

describe('catalog splits on the fixture', () => {
  let catalog: Catalog;
  let datasetId: number;
  beforeAll(async () => {
    catalog = Catalog.open(':memory:');
    ({ datasetId } = await importDataset(catalog, {
      format: 'movielens-latest',
      path: path.join(FIXTURES, 'ml-latest'),
      name: 'tiny',
      options: {}
    }));
  });
  afterAll(() => catalog.close());

  const userId = (ext: string): number => catalog.searchUsers(datasetId, ext, 50).users.find((u) => u.externalId === ext)!.id;

  it('stores the ordered, filtered history with roles', () => {
    const history = catalog.getUserHistory(datasetId, userId('1'));
    // t=50 item 2; t=100 items 3 then 1 (file order); item 7 removed by the filter.
    expect(history.map((h) => h.item.externalId)).toEqual(['2', '3', '1', '4', '5', '6']);
    expect(history.map((h) => h.timestamp)).toEqual([50, 100, 100, 200, 300, 400]);
    expect(history.map((h) => h.role)).toEqual(['train', 'train', 'train', 'train', 'valid', 'test']);
    expect(history[0].rating).toBe(3);
  });

  it('drops the user the filter removed from search and history', () => {
    expect(catalog.searchUsers(datasetId, '', 50).users.map((u) => u.externalId)).toEqual(['1', '2', '3', '4', '5', '6']);
    const removed = catalog.db.prepare("SELECT id FROM users WHERE dataset_id = ? AND external_id = '7'").get(datasetId) as { id: number };
    expect(catalog.getUser(removed.id)).toMatchObject({ externalId: '7', interactions: 0 });
    expect(catalog.getUserHistory(datasetId, removed.id)).toEqual([]);
  });

  it('loadSequences re-indexes items 1..N in catalog-id order and matches the history', () => {
    const seq = catalog.loadSequences(datasetId);
    expect(seq.numItems).toBe(6);
    expect(seq.itemIds[0]).toBe(0);
    expect(Array.from(seq.itemIds.subarray(1))).toEqual([...seq.itemIds.subarray(1)].sort((a, b) => a - b));
    expect(seq.users.map((u) => u.userId)).toEqual([...seq.users.map((u) => u.userId)].sort((a, b) => a - b));
    expect(seq.users).toHaveLength(6);
    for (const u of seq.users) {
      const history = catalog.getUserHistory(datasetId, u.userId);
      expect(Array.from(u.items, (ix) => seq.itemIds[ix])).toEqual(history.map((h) => h.item.id));
      expect(Array.from(u.timestamps)).toEqual(history.map((h) => h.timestamp));
      expect(seq.itemIds[splitInput(u, 'test').target]).toBe(history.find((h) => h.role === 'test')!.item.id);
      expect(seq.itemIds[splitInput(u, 'valid').target]).toBe(history.find((h) => h.role === 'valid')!.item.id);
      expect(trainPart(u).length).toBe(history.filter((h) => h.role === 'train').length);
    }
  });
});
