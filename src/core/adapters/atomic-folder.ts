// Writes a folder atomically: everything goes into a temp folder beside the destination, which is renamed
// into place only once complete, so a reader (or a crash) never sees half an export. Every error names the path.
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { crashPoint } from '../crash-point';

/** An error of the file system, said in words and naming the path. */
export function fsError(path: string, e: unknown): Error {
  const code = (e as NodeJS.ErrnoException).code;
  const why: Record<string, string> = {
    ENOSPC: 'no space left on the device',
    EDQUOT: 'disk quota exceeded',
    EACCES: 'permission denied',
    EPERM: 'permission denied',
    EROFS: 'read-only file system',
    ENOENT: 'no such file or folder',
    ENOTDIR: 'a part of the path is not a folder'
  };
  return new Error(`${path}: ${code && why[code] ? why[code] : ((e as Error).message ?? String(e))}`);
}

/**
 * Runs `fill(tmpDir)` and moves the result to `dest`. Refuses an existing `dest` unless `force`, in which case
 * the old folder is replaced (moved aside first, removed once the new one is in place).
 */
export async function writeFolderAtomically(dest: string, force: boolean, fill: (tmp: string) => Promise<void> | void): Promise<string> {
  const out = resolve(dest);
  const parent = dirname(out);
  if (!existsSync(parent)) throw new Error(`${parent}: no such folder (create it first, or choose another destination)`);
  if (!statSync(parent).isDirectory()) throw new Error(`${parent}: not a folder`);
  if (existsSync(out) && !force) throw new Error(`${out}: already exists (use --force, or "Overwrite", to replace it)`);
  const tmp = join(parent, `.${basename(out)}.tmp-${process.pid}-${Date.now()}`);
  try {
    mkdirSync(tmp);
  } catch (e) {
    throw fsError(parent, e);
  }
  try {
    await fill(tmp);
    // The export is complete but not yet in place: a kill here must leave no `dest` (test/safety).
    crashPoint('adapter-export');
    let old: string | null = null;
    if (existsSync(out)) {
      old = join(parent, `.${basename(out)}.old-${process.pid}-${Date.now()}`);
      renameSync(out, old);
    }
    try {
      renameSync(tmp, out);
    } catch (e) {
      if (old) renameSync(old, out);
      throw fsError(out, e);
    }
    if (old) rmSync(old, { recursive: true, force: true });
    return out;
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}
