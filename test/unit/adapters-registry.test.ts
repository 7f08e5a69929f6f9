// The adapter registry (migration 6, catalog/adapters.ts), the dataset fingerprint, the atomic folder writer
// and the adapters.* API methods, on runs whose adapter files are written here (training is covered by
// test/integration/adapters-cli.test.ts).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fsError, writeFolderAtomically } from '../../src/core/adapters/atomic-folder';
import { exportAdapter } from '../../src/core/adapters/export-adapter';
import { datasetFingerprint } from '../../src/core/adapters/fingerprints';
import { Catalog, migrate, MIGRATIONS } from '../../src/core/catalog';
import { contentHash } from '../../src/core/catalog/adapters';
import { importDataset } from '../../src/core/importers';
import type { AdapterSummary } from '../../src/shared/adapters';
import type { ModelKind } from '../../src/shared/types';
import { apiCalls, serviceWithTinyDataset, type ServiceWithDataset } from './service-fixture';

const ML_LATEST = resolve(__dirname, '../fixtures/importers/ml-latest');
const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** A finished run of `model` with adapter files (and a checkpoint, not part of the adapter) in `<dir>/runs/<id>`. */
function finishedRun(catalog: Catalog, dir: string, datasetId: number, model: ModelKind, files: Record<string, string>, config: object = { backboneId: 7, seqRunId: 3 }): number {
  const runId = catalog.createRun({ datasetId, model, config, backend: null });
  const runDir = join(dir, 'runs', String(runId));
  mkdirSync(join(runDir, 'lora'), { recursive: true });
  const best = join(runDir, 'best.safetensors');
  writeFileSync(best, 'weights');
  catalog.addArtifact(runId, 'checkpoint', best, sha(best));
  const kinds: Record<string, string> = { 'lora/adapter_model.safetensors': 'lora_adapter', 'lora/adapter_config.json': 'lora_adapter_config', 'almostrec.safetensors': 'almostrec_tensors', 'almostrec.json': 'almostrec_manifest' };
  for (const [rel, text] of Object.entries(files)) {
    writeFileSync(join(runDir, rel), text);
    catalog.addArtifact(runId, kinds[rel], join(runDir, rel), sha(join(runDir, rel)));
  }
  catalog.updateRun(runId, { status: 'succeeded', checkpointPath: best, endedAt: '2026-12-07T00:00:00.000Z' });
  return runId;
}

const FILES = { 'lora/adapter_model.safetensors': 'A and B', 'lora/adapter_config.json': '{"peft_type": "LORA"}', 'almostrec.safetensors': 'heads', 'almostrec.json': '{}' };

describe('content hash and dataset fingerprint', () => {
  it('hashes paths and file hashes, in any order; a changed file changes it', () => {
    const files = [
      { path: 'b', sha256: '2'.repeat(64) },
      { path: 'a', sha256: '1'.repeat(64) }
    ];
    expect(contentHash(files)).toBe(contentHash([...files].reverse()));
    expect(contentHash(files)).toBe(createHash('sha256').update(`a\t${'1'.repeat(64)}\nb\t${'2'.repeat(64)}\n`).digest('hex'));
    expect(contentHash([{ ...files[0], sha256: '3'.repeat(64) }, files[1]])).not.toBe(contentHash(files));
  });

  it('fingerprints a dataset by external ids, whatever its catalog row ids; another dataset differs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'adapters-fp-'));
    try {
      const one = Catalog.open(join(dir, 'one.sqlite'));
      const two = Catalog.open(join(dir, 'two.sqlite'));
      // The second catalog imports another dataset first: every row id of "tiny" differs.
      const other = await importDataset(two, { format: 'microlens', path: resolve(__dirname, '../fixtures/importers/microlens'), name: 'other', options: {} });
      const a = await importDataset(one, { format: 'movielens-latest', path: ML_LATEST, name: 'tiny', options: {} });
      const b = await importDataset(two, { format: 'movielens-latest', path: ML_LATEST, name: 'tiny', options: {} });
      expect(datasetFingerprint(one, a.datasetId)).toMatch(/^[0-9a-f]{64}$/);
      expect(datasetFingerprint(two, b.datasetId)).toBe(datasetFingerprint(one, a.datasetId));
      expect(datasetFingerprint(two, other.datasetId)).not.toBe(datasetFingerprint(one, a.datasetId));
      // One interaction's timestamp changed, or one title: another fingerprint.
      const before = datasetFingerprint(two, b.datasetId);
      two.db.prepare("UPDATE items SET title = title || ' ' WHERE dataset_id = ? AND external_id = '1'").run(b.datasetId);
      expect(datasetFingerprint(two, b.datasetId)).not.toBe(before);
      expect(two.db.prepare('UPDATE interactions SET timestamp = timestamp + 1 WHERE id = (SELECT MIN(interaction_id) FROM splits WHERE dataset_id = ?)').run(b.datasetId).changes).toBe(1);
      expect(datasetFingerprint(two, b.datasetId)).not.toBe(datasetFingerprint(one, a.datasetId));
      one.close();
      two.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('migration 6', () => {
  it('backfills the finished runs of backbone models that a schema-5 catalog holds, with sizes and hashes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'adapters-mig-'));
    try {
      const dbPath = join(dir, 'catalog.sqlite');
      const db = new BetterSqlite3(dbPath);
      db.pragma('foreign_keys = ON');
      migrate(db, MIGRATIONS.slice(0, 5));
      db.close();
      // Runs written by a schema-5 app: through today's Catalog, whose migrations since we undo first (below).
      const old = Catalog.open(dbPath);
      old.db.exec('DROP TABLE adapters; ALTER TABLE backbones DROP COLUMN backend; PRAGMA user_version = 5;');
      const { datasetId } = await importDataset(old, { format: 'movielens-latest', path: ML_LATEST, name: 'tiny', options: {} });
      const ar = finishedRun(old, dir, datasetId, 'almostrec', FILES);
      const sasrec = finishedRun(old, dir, datasetId, 'sasrec', {}, {});
      const gone = finishedRun(old, dir, datasetId, 'e4srec', FILES);
      rmSync(join(dir, 'runs', String(gone), 'almostrec.json'));
      old.close();

      const catalog = Catalog.open(dbPath);
      const adapters = catalog.listAdapters();
      // The e4srec run lost a file: not registered (its size and hash could not be right).
      expect(adapters.map((a) => a.runId)).toEqual([ar]);
      const a = adapters[0];
      const sizes = Object.values(FILES).reduce((s, t) => s + Buffer.byteLength(t), 0);
      expect(a).toMatchObject({ name: `almostrec run ${ar}`, model: 'almostrec', datasetName: 'tiny', backboneId: 7, seqRunId: 3, source: 'trained', sizeBytes: sizes });
      expect(a.files.map((f) => f.path)).toEqual(['almostrec.json', 'almostrec.safetensors', 'lora/adapter_config.json', 'lora/adapter_model.safetensors']);
      expect(a.contentHash).toBe(contentHash(a.files));
      expect(catalog.getAdapter(sasrec)).toBeNull();
      // Filters, rename, and the row dies with its run.
      expect(catalog.listAdapters({ backboneId: 7, datasetId })).toHaveLength(1);
      expect(catalog.listAdapters({ backboneId: 8 })).toHaveLength(0);
      expect(catalog.renameAdapter(ar, 'my adapter')).toBe(true);
      expect(catalog.getAdapter(ar)!.name).toBe('my adapter');
      catalog.deleteRun(ar);
      expect(catalog.listAdapters()).toHaveLength(0);
      catalog.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('writeFolderAtomically', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'adapters-atomic-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('renames a complete folder into place, refuses an existing one unless forced, and leaves nothing on failure', async () => {
    const out = join(dir, 'out');
    await writeFolderAtomically(out, false, (tmp) => writeFileSync(join(tmp, 'a'), '1'));
    expect(readFileSync(join(out, 'a'), 'utf8')).toBe('1');
    await expect(writeFolderAtomically(out, false, () => {})).rejects.toThrow(`${out}: already exists (use --force, or "Overwrite", to replace it)`);
    // A fill that fails half-way: the old folder is untouched and no temp folder is left.
    await expect(
      writeFolderAtomically(out, true, (tmp) => {
        writeFileSync(join(tmp, 'a'), '2');
        throw new Error('disk full');
      })
    ).rejects.toThrow('disk full');
    expect(readFileSync(join(out, 'a'), 'utf8')).toBe('1');
    expect(readdirSync(dir)).toEqual(['out']);
    await writeFolderAtomically(out, true, (tmp) => writeFileSync(join(tmp, 'b'), '3'));
    expect(readdirSync(out)).toEqual(['b']);
    expect(readdirSync(dir)).toEqual(['out']);
  });

  it('says a file-system failure in words, naming the path (no space, no permission; root bypasses the latter here)', () => {
    const e = (code: string) => Object.assign(new Error(`${code}: raw`), { code });
    expect(fsError('/x/out', e('ENOSPC')).message).toBe('/x/out: no space left on the device');
    expect(fsError('/x/out', e('EACCES')).message).toBe('/x/out: permission denied');
    expect(fsError('/x/out', e('EROFS')).message).toBe('/x/out: read-only file system');
    expect(fsError('/x/out', e('EIO')).message).toBe('/x/out: EIO: raw');
  });

  it('names the path when the parent is missing or not a folder', async () => {
    await expect(writeFolderAtomically(join(dir, 'nope', 'out'), false, () => {})).rejects.toThrow(`${join(dir, 'nope')}: no such folder`);
    writeFileSync(join(dir, 'file'), '');
    await expect(writeFolderAtomically(join(dir, 'file', 'out'), false, () => {})).rejects.toThrow(`${join(dir, 'file')}: not a folder`);
  });
});

describe('adapters.* API', () => {
  let ctx: ServiceWithDataset;
  let runId: number;
  const { ok, refused } = apiCalls(() => ctx.service);
  beforeAll(async () => {
    ctx = await serviceWithTinyDataset('adapters-svc-', 'fake-ablation-worker.mjs');
    runId = finishedRun(ctx.service.catalog, ctx.dir, ctx.datasetId, 'tallrec', { 'lora/adapter_model.safetensors': 'A and B', 'lora/adapter_config.json': '{}' }, { backboneId: 1 });
    ctx.service.catalog.registerAdapter(runId);
  });
  afterAll(async () => {
    await ctx.service.close();
    rmSync(ctx.dir, { recursive: true, force: true });
  });

  it('lists, gets and renames', async () => {
    const list = await ok<AdapterSummary[]>('adapters.list', { datasetId: ctx.datasetId });
    expect(list.map((a) => [a.runId, a.model])).toEqual([[runId, 'tallrec']]);
    expect((await ok<AdapterSummary>('adapters.rename', { runId, name: '  tallrec on tiny ' })).name).toBe('tallrec on tiny');
    expect((await ok<AdapterSummary>('adapters.get', { runId })).name).toBe('tallrec on tiny');
    expect(await refused('adapters.get', { runId: 999 })).toMatchObject({ code: 'not_found' });
  });

  it('exports the PEFT folder atomically; refuses a relative path, an existing folder and a bundle of a non-ALMOSTREC run', async () => {
    const out = join(ctx.dir, 'peft-out');
    const r = await ok<{ path: string; files: string[] }>('adapters.export', { runId, format: 'peft', out });
    expect(r.path).toBe(out);
    expect(readdirSync(out).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    expect(readFileSync(join(out, 'adapter_model.safetensors'), 'utf8')).toBe('A and B');
    expect((await refused('adapters.export', { runId, format: 'peft', out })).message).toBe(`${out}: already exists (use --force, or "Overwrite", to replace it)`);
    expect((await refused('adapters.export', { runId, format: 'peft', out: 'relative/dir' })).message).toBe('Destination "relative/dir" must be an absolute folder path');
    expect((await refused('adapters.export', { runId, format: 'bundle', out: join(ctx.dir, 'b') })).message).toMatch(/is a tallrec run: bundles carry ALMOSTREC's W\^B, W\^T and M/);
    expect(existsSync(join(ctx.dir, 'b'))).toBe(false);
  });

  it('refuses to export a file changed since training, naming it', async () => {
    const other = finishedRun(ctx.service.catalog, ctx.dir, ctx.datasetId, 'almostrec', FILES);
    ctx.service.catalog.registerAdapter(other);
    const file = join(ctx.dir, 'runs', String(other), 'lora', 'adapter_model.safetensors');
    writeFileSync(file, 'tampered');
    await expect(exportAdapter(ctx.service.catalog, other, 'peft', join(ctx.dir, 'x'))).rejects.toThrow(`${file}: changed since training`);
    expect(existsSync(join(ctx.dir, 'x'))).toBe(false);
  });

  it('refuses to delete while a job of its run is pending, then deletes run and files', async () => {
    const job = ctx.service.jobs.start('train', 'busy', { kind: 'train', runId, resume: false }, { runId, datasetId: ctx.datasetId });
    expect(await refused('adapters.delete', { runId })).toMatchObject({ code: 'conflict', message: expect.stringMatching(/^A job is still (queued|running)/) });
    ctx.service.jobs.cancel(job.jobId);
    await ctx.service.jobs.wait(job.jobId);
    expect(await ok('adapters.delete', { runId })).toEqual({ deleted: true });
    expect(existsSync(join(ctx.dir, 'runs', String(runId)))).toBe(false);
    expect(await refused('adapters.get', { runId })).toMatchObject({ code: 'not_found' });
  });
});
