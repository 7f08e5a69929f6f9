// The shipped dataset (resources/datasets/ml-latest-small): found by resolveEmbeddedDatasetDir, imports
// with the published 5-core counts, and its posters are exactly the 5-core items' posters.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Catalog } from '../../src/core/catalog';
import { EMBEDDED_DATASET, importDataset, resolveEmbeddedDatasetDir } from '../../src/core/importers';

describe('embedded dataset', () => {
  it('resolves from src/, from a bundle folder and from ALMOSTREC_RESOURCES; fails clearly otherwise', () => {
    const dir = resolveEmbeddedDatasetDir();
    expect(dir).toBe(path.resolve(__dirname, '../../resources/datasets/ml-latest-small'));
    expect(resolveEmbeddedDatasetDir(path.resolve(__dirname, '../../out/main'), {})).toBe(dir);
    expect(resolveEmbeddedDatasetDir(os.tmpdir(), { ALMOSTREC_RESOURCES: path.resolve(__dirname, '../../resources') })).toBe(dir);
    expect(() => resolveEmbeddedDatasetDir(os.tmpdir(), {})).toThrow(/embedded dataset ml-latest-small not found/);
    expect(fs.readFileSync(path.join(dir, 'ATTRIBUTION.md'), 'utf8')).toContain(
      'This product uses the TMDB API but is not endorsed or certified by TMDB.'
    );
  });

  it('imports with the 5-core counts, no warnings, and an image for every shipped poster', async () => {
    const dir = resolveEmbeddedDatasetDir();
    const catalog = Catalog.open(':memory:');
    try {
      const t0 = performance.now();
      const { datasetId, warnings } = await importDataset(catalog, { ...EMBEDDED_DATASET, path: dir, options: {} });
      const importMs = performance.now() - t0;
      const ds = catalog.getDataset(datasetId)!;
      expect(ds.stats.filtered).toEqual({ users: 610, items: 3650, interactions: 90274, removedUsers: 0, removedItems: 6074, removedInteractions: 10562 });
      expect(warnings).toEqual([]);
      const shipped = fs.readdirSync(path.join(dir, 'posters')).map((f) => f.replace(/\.jpg$/, '')).sort();
      const withImage = (
        catalog.db.prepare('SELECT external_id FROM items WHERE dataset_id = ? AND image IS NOT NULL').all(datasetId) as { external_id: string }[]
      )
        .map((r) => r.external_id)
        .sort();
      expect(withImage).toEqual(shipped);
      expect(shipped).toHaveLength(3628);

      const t1 = performance.now();
      const seq = catalog.loadSequences(datasetId);
      const loadMs = performance.now() - t1;
      expect(seq.users).toHaveLength(610);
      expect(seq.numItems).toBe(3650);
      expect(seq.users.reduce((s, u) => s + u.items.length, 0)).toBe(90274);
      expect(loadMs).toBeLessThan(1000);
      console.log(`embedded import ${importMs.toFixed(0)} ms, loadSequences ${loadMs.toFixed(0)} ms`);
    } finally {
      catalog.close();
    }
  });
});
