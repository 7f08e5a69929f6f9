// One catalog per data folder. Run checkpoints and backbones live in <data folder>/runs/<id> and
// <data folder>/backbones/<id>, keyed by ids that every catalog numbers from 1: two catalogs sharing a folder
// (`--db a.db` and `--db b.db` side by side) would overwrite each other's files silently. The folder
// therefore names the catalog that owns it in a marker file, and any other catalog is refused.
import { existsSync, mkdirSync, readFileSync, realpathSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

export const DATA_DIR_MARKER = '.almostrec-catalog';

/** The catalog file as the marker records it: absolute, its folder's symlinks resolved (the file may not exist yet). */
function canonical(dbPath: string): string {
  const abs = resolve(dbPath);
  const dir = dirname(abs);
  return join(existsSync(dir) ? realpathSync(dir) : dir, basename(abs));
}

/**
 * Claims `dataDir` (created when missing) for the catalog at `dbPath`, or throws when the folder already
 * belongs to another catalog file. A folder without a marker is claimed by the first catalog that opens it.
 */
export function claimDataDir(dataDir: string, dbPath: string): void {
  mkdirSync(dataDir, { recursive: true });
  const marker = join(dataDir, DATA_DIR_MARKER);
  const me = canonical(dbPath);
  if (existsSync(marker)) {
    const owner = readFileSync(marker, 'utf8').trim();
    if (owner === me) return;
    throw new Error(
      `${dataDir} holds the run and backbone files of the catalog ${owner} (${marker}); the catalog ${me} would overwrite them. ` +
        `Give each catalog its own folder (move ${me} elsewhere), or delete ${marker} if ${owner} and its files are gone.`
    );
  }
  const tmp = `${marker}.${process.pid}.tmp`;
  writeFileSync(tmp, `${me}\n`);
  renameSync(tmp, marker);
}
