// kill -9 of `almostrec export` and `almostrec import-adapter` at their worst instants (issue 14: exports are
// atomic, imports transactional): an export complete in its temp folder but not yet renamed leaves no DIR and
// the catalog unchanged; an import with every file written but nothing committed leaves no row, and the next
// import of the same bundle succeeds.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { tinyLlavaFolder } from '../integration/cli-catalog';
import { bin, createHome, integrityCheck, json, killHard, requireBuild, root, startFrozen, tableChecksums, type Home } from './crash-helpers';

const ML_LATEST = join(root, 'test', 'fixtures', 'importers', 'ml-latest');
let a: Home;
let b: Home;
let folder: string;
let runId: string;

beforeAll(() => {
  requireBuild();
  a = createHome('almostrec-crash-adapters-a-');
  b = createHome('almostrec-crash-adapters-b-');
  folder = tinyLlavaFolder(a.dir);
  for (const h of [a, b]) expect(h.cli('import', 'movielens-latest', ML_LATEST, '--name', 'tiny').code).toBe(0);
  const seq = a.cli('train', 'sasrec', '--dataset', 'tiny', '--epochs', '1', '--json');
  expect(seq.code, seq.stderr).toBe(0);
  const ar = a.cli('train', 'almostrec', '--dataset', 'tiny', '--seq-run', String(json(seq.lines[0]).id), '--backbone', folder, '--epochs', '1', '--param', 'historyLength=5', '--json');
  expect(ar.code, ar.stderr).toBe(0);
  runId = String(json(ar.lines[0]).id);
  expect(b.cli('backbone', 'register', folder, '--name', 'same').code).toBe(0);
});
afterAll(() => {
  a?.remove();
  b?.remove();
});

it('an export killed after its files are written, before the rename, leaves no destination folder', async () => {
  const before = tableChecksums(a.db);
  const out = join(a.dir, 'bundle');
  const frozen = await startFrozen([bin, 'export', runId, '--format', 'bundle', '--out', out, '--db', a.db], 'adapter-export');
  // The complete export sits in its hidden temp folder beside the destination.
  const temp = readdirSync(a.dir).filter((n) => n.startsWith('.bundle.tmp-'));
  expect(temp).toHaveLength(1);
  expect(readdirSync(join(a.dir, temp[0])).sort()).toEqual(['almostrec.json', 'almostrec.safetensors', 'bundle.json', 'peft']);
  await killHard(frozen);
  expect(existsSync(out)).toBe(false);
  expect(tableChecksums(a.db)).toEqual(before);
  // Nothing stands in the way of the next export (no --force needed).
  const again = a.cli('export', runId, '--format', 'bundle', '--out', out);
  expect(again.code, again.stderr).toBe(0);
  expect(readdirSync(out).sort()).toEqual(['almostrec.json', 'almostrec.safetensors', 'bundle.json', 'peft']);
});

it('an import killed inside its transaction leaves the catalog as it was; importing again succeeds', async () => {
  const bundle = join(a.dir, 'bundle');
  expect(existsSync(join(bundle, 'bundle.json'))).toBe(true);
  const before = tableChecksums(b.db);
  const frozen = await startFrozen([bin, 'import-adapter', bundle, '--db', b.db], 'adapter-import');
  await killHard(frozen);
  expect(integrityCheck(b.db)).toBe('ok');
  expect(tableChecksums(b.db)).toEqual(before);
  expect(b.cli('runs', '--json').lines).toHaveLength(0);
  expect(b.cli('adapters', '--json').lines).toHaveLength(0);

  const imported = b.cli('import-adapter', bundle, '--json');
  expect(imported.code, imported.stderr).toBe(0);
  const adapter = json(imported.lines.at(-1)!);
  expect(adapter).toMatchObject({ source: 'imported', model: 'almostrec' });
  expect(adapter.test).not.toBeNull();
  // The killed import's folder (same run id) was replaced, not mixed into.
  expect(readdirSync(join(b.dir, 'runs', String(adapter.runId))).sort()).toEqual(['almostrec.json', 'almostrec.safetensors', 'best.safetensors', 'item_embeddings.safetensors', 'lora']);
});
