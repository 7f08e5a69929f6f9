// Issue 14 item 2 end to end through the built CLI: train a tiny ALMOSTREC in one catalog, export it as a
// PEFT folder and as a bundle, import the bundle into a second catalog holding the same dataset and the same
// backbone folder, and get the same top-k scores there; wrong dataset or backbone and overwrites are refused.
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Catalog } from '../../src/core/catalog';
import { loadRunModel } from '../../src/core/jobs/run-jobs';
import { initBackend } from '../../src/core/tensor/backend';
import { createCliCatalog, json, root, tinyLlavaFolder, type CliCatalog } from './cli-catalog';

const ML_LATEST = join(root, 'test', 'fixtures', 'importers', 'ml-latest');
let a: CliCatalog;
let b: CliCatalog;
let folder: string;
/**
 * Both runs' live models score every user's full history (mapped between the catalogs by external id) on
 * every item; the largest difference between the two catalogs' scores of the same item.
 */
async function maxScoreDifference(runA: number, runB: number): Promise<{ max: number; compared: number; exact: number; users: number }> {
  await initBackend();
  const [ca, cb] = [Catalog.open(join(a.dir, 'catalog.sqlite')), Catalog.open(join(b.dir, 'catalog.sqlite'))];
  try {
    const externalIds = (c: Catalog, ids: Int32Array) => {
      const items = c.getItems(Array.from(ids.subarray(1)));
      return Array.from(ids, (id, i) => (i === 0 ? '' : items.get(id)!.externalId));
    };
    const [ra, rb] = [ca.getRun(runA)!, cb.getRun(runB)!];
    const [da, db] = [ca.loadSequences(ra.datasetId), cb.loadSequences(rb.datasetId)];
    const [ea, eb] = [externalIds(ca, da.itemIds), externalIds(cb, db.itemIds)];
    const toB = ea.map((id) => eb.indexOf(id));
    const [ma, mb] = [await loadRunModel(ca, ra, da), await loadRunModel(cb, rb, db)];
    try {
      const histories = da.users.map((u) => u.items);
      const [sa, sb] = [await ma.model.scoreBatch(histories), await mb.model.scoreBatch(histories.map((h) => Int32Array.from(h, (i) => toB[i])))];
      const width = da.numItems + 1;
      let max = 0;
      let exact = 0;
      let compared = 0;
      for (let u = 0; u < histories.length; u++) {
        for (let i = 1; i < width; i++) {
          const d = Math.abs(sa[u * width + i] - sb[u * width + toB[i]]);
          max = Math.max(max, d);
          if (d === 0) exact++;
          compared++;
        }
      }
      return { max, compared, exact, users: histories.length };
    } finally {
      ma.dispose();
      mb.dispose();
    }
  } finally {
    ca.close();
    cb.close();
  }
}
const lastError = (r: { stderr: string }) => r.stderr.trim().split('\n').at(-1);

beforeAll(() => {
  a = createCliCatalog('adapters-a-', 300_000);
  b = createCliCatalog('adapters-b-', 300_000);
  folder = tinyLlavaFolder(a.dir);
  // The second catalog reads movies.csv in reverse: its item rows come in another order, so the import must
  // permute W^T's columns and M's rows by external id.
  const reversed = join(b.dir, 'ml-latest');
  cpSync(ML_LATEST, reversed, { recursive: true });
  const [header, ...movies] = readFileSync(join(reversed, 'movies.csv'), 'utf8').trim().split('\n');
  writeFileSync(join(reversed, 'movies.csv'), [header, ...movies.reverse()].join('\n') + '\n');
  for (const [c, path] of [[a, ML_LATEST], [b, reversed]] as const) {
    const imp = c.cli('import', 'movielens-latest', path, '--name', 'tiny');
    if (imp.code !== 0) throw new Error(imp.stderr);
  }
  const order = (c: CliCatalog) => {
    const db = new BetterSqlite3(join(c.dir, 'catalog.sqlite'), { readonly: true });
    try {
      return (db.prepare('SELECT external_id FROM items ORDER BY id').pluck().all() as string[]).join(',');
    } finally {
      db.close();
    }
  };
  if (order(a) === order(b)) throw new Error('the two catalogs hold the items in the same order; the permutation would go untested');
});
afterAll(() => {
  a?.remove();
  b?.remove();
});

it('exports a trained ALMOSTREC and imports it into another catalog, scoring identically', async () => {
  const sasrec = a.cli('train', 'sasrec', '--dataset', 'tiny', '--epochs', '2', '--json');
  expect(sasrec.code, sasrec.stderr).toBe(0);
  const seqRun = String(json(sasrec.lines.at(-1)!).id);
  const trained = a.cli('train', 'almostrec', '--dataset', 'tiny', '--seq-run', seqRun, '--backbone', folder, '--epochs', '1', '--param', 'historyLength=5', '--json');
  expect(trained.code, trained.stderr).toBe(0);
  const runId = String(json(trained.lines.at(-1)!).id);

  // Registered with the run's success: backbone, dataset, sequential run, size and hash.
  const listed = a.cli('adapters', '--json').lines.map(json);
  expect(listed).toHaveLength(1);
  expect(listed[0]).toMatchObject({ runId: Number(runId), model: 'almostrec', datasetName: 'tiny', backboneName: 'llava-tiny', seqRunId: Number(seqRun), source: 'trained' });
  expect(listed[0].contentHash).toMatch(/^[0-9a-f]{64}$/);
  expect(listed[0].sizeBytes).toBeGreaterThan(0);

  const exports = join(a.dir, 'exports');
  mkdirSync(exports);
  const peft = a.cli('export', runId, '--format', 'peft', '--out', join(exports, 'peft'), '--json');
  expect(peft.code, peft.stderr).toBe(0);
  expect(readdirSync(join(exports, 'peft')).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
  const bundleDir = join(exports, 'bundle');
  const bundle = a.cli('export', runId, '--format', 'bundle', '--out', bundleDir, '--json');
  expect(bundle.code, bundle.stderr).toBe(0);
  expect(readdirSync(bundleDir).sort()).toEqual(['almostrec.json', 'almostrec.safetensors', 'bundle.json', 'peft']);

  // Refuses to overwrite unless --force; a missing parent folder is named; no temp folder is left behind.
  const again = a.cli('export', runId, '--format', 'bundle', '--out', bundleDir);
  expect(again.code).toBe(1);
  expect(lastError(again)).toBe(`almostrec: ${bundleDir}: already exists (use --force, or "Overwrite", to replace it)`);
  expect(a.cli('export', runId, '--format', 'bundle', '--out', bundleDir, '--force').code).toBe(0);
  const nowhere = join(a.dir, 'no-such-folder', 'x');
  expect(lastError(a.cli('export', runId, '--format', 'peft', '--out', nowhere))).toBe(`almostrec: ${join(a.dir, 'no-such-folder')}: no such folder (create it first, or choose another destination)`);
  expect(readdirSync(exports).sort()).toEqual(['bundle', 'peft']);

  // The second catalog has the same dataset but no backbone yet: refused naming both hashes.
  const noBackbone = b.cli('import-adapter', bundleDir);
  expect(noBackbone.code).toBe(1);
  expect(lastError(noBackbone)).toMatch(/backbone content hash [0-9a-f]{64} \("llava-tiny"\) matches no finished backbone of this catalog \(it holds none\)/);
  const reg = b.cli('backbone', 'register', folder, '--name', 'same-weights');
  expect(reg.code, reg.stderr).toBe(0);
  expect(b.cli('runs', '--json').lines).toHaveLength(0);

  const imported = b.cli('import-adapter', bundleDir, '--json');
  expect(imported.code, imported.stderr).toBe(0);
  const adapter = json(imported.lines.at(-1)!);
  expect(adapter).toMatchObject({ model: 'almostrec', source: 'imported', backboneName: 'same-weights', contentHash: listed[0].contentHash });
  expect(adapter.test).not.toBeNull();

  // `recommend` serves the imported run; its users have seen most of the fixture's items, so the scores are
  // compared below on every item, not only on the unseen ones recommend lists.
  const rec = b.cli('recommend', String(adapter.runId), '--user', '1', '--k', '10', '--json');
  expect(rec.code, rec.stderr).toBe(0);
  const diff = await maxScoreDifference(Number(runId), Number(adapter.runId));
  console.log(`imported adapter: ${diff.compared} scores compared over ${diff.users} users, max |Δ| = ${diff.max}, ${diff.exact} bit-identical`);
  expect(diff.compared).toBeGreaterThan(0);
  expect(diff.max).toBeLessThanOrEqual(1e-6);
  // Test metrics over the whole split agree as well.
  expect(adapter.test).toEqual(json(a.cli('runs', '--json').lines.find((l) => json(l).id === Number(runId))!).test);
}, 600_000);

it('refuses a bundle whose dataset fingerprint matches no dataset, naming both', () => {
  const c = createCliCatalog('adapters-c-', 120_000);
  try {
    const imp = c.cli('import', 'microlens', join(root, 'test', 'fixtures', 'importers', 'microlens'), '--name', 'other');
    expect(imp.code, imp.stderr).toBe(0);
    const bundleDir = join(a.dir, 'exports', 'bundle');
    expect(existsSync(bundleDir), "the first test exports the bundle").toBe(true);
    const r = c.cli('import-adapter', bundleDir);
    expect(r.code).toBe(1);
    expect(lastError(r)).toMatch(new RegExp(`^almostrec: ${join(bundleDir, 'bundle.json')}: dataset fingerprint [0-9a-f]{64} \\("tiny"\\) matches no dataset of this catalog \\("other" [0-9a-f]{64}\\); import the same dataset first$`));
    expect(c.cli('runs', '--json').lines).toHaveLength(0);
    // A damaged file is refused naming it.
    const damaged = join(c.dir, 'damaged');
    mkdirSync(damaged);
    writeFileSync(join(damaged, 'bundle.json'), '{"format": "almostrec-bundle/1"}');
    expect(lastError(c.cli('import-adapter', damaged))).toMatch(new RegExp(`^almostrec: ${join(damaged, 'bundle.json')}: `));
  } finally {
    c.remove();
  }
});
