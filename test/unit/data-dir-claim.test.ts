// One catalog per data folder: a second catalog file in a folder that holds another catalog's runs and
// backbones is refused (by the CLI too), since both number their runs from 1 and would overwrite each other.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { DATA_DIR_MARKER, claimDataDir } from '../../src/core/catalog';

const dirs: string[] = [];
const fresh = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'almostrec-claim-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('claimDataDir', () => {
  test('the first catalog claims the folder; it may open again, also through a symlinked path; another is refused', () => {
    const dir = fresh();
    claimDataDir(dir, join(dir, 'a.db'));
    expect(readFileSync(join(dir, DATA_DIR_MARKER), 'utf8').trim()).toMatch(/a\.db$/);
    expect(() => claimDataDir(dir, join(dir, 'a.db'))).not.toThrow();
    const link = join(fresh(), 'link');
    symlinkSync(dir, link);
    expect(() => claimDataDir(link, join(link, 'a.db'))).not.toThrow();
    expect(() => claimDataDir(dir, join(dir, 'b.db'))).toThrow(/holds the run and backbone files of the catalog .*a\.db.*b\.db would overwrite them/);
    expect(readFileSync(join(dir, DATA_DIR_MARKER), 'utf8').trim()).toMatch(/a\.db$/);
    const missing = join(fresh(), 'not', 'yet');
    claimDataDir(missing, join(missing, 'catalog.sqlite'));
    expect(existsSync(join(missing, DATA_DIR_MARKER))).toBe(true);
  });

  test('the CLI refuses a second catalog in the same folder before touching it', () => {
    const bin = join(__dirname, '..', '..', 'out', 'main', 'cli.js');
    if (!existsSync(bin)) throw new Error('The app is not built: run "npm run build" first');
    const dir = fresh();
    mkdirSync(join(dir, 'runs'));
    const cli = (db: string) => spawnSync(process.execPath, [bin, 'datasets', '--db', join(dir, db), '--json'], { encoding: 'utf8', timeout: 60_000 });
    expect(cli('one.db').status).toBe(0);
    const second = cli('two.db');
    expect(second.status).not.toBe(0);
    expect(second.stderr).toMatch(/one\.db .*two\.db would overwrite them/s);
    expect(existsSync(join(dir, 'two.db'))).toBe(false);
    expect(cli('one.db').status).toBe(0);
  });
});
