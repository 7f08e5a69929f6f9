// Shared by the kill -9 proofs (crash-*.test.ts): the built CLI and browser-mode server as real child
// processes on a throwaway data folder, frozen at a test-only crash point (src/core/crash-point.ts) and
// SIGKILLed there; and a checksum of the catalog's tables to show what else survived untouched.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'vitest';

export const root = resolve(__dirname, '..', '..');
export const bin = join(root, 'bin', 'almostrec.cjs');
export const browserMain = join(root, 'out', 'main', 'browser.js');

export function requireBuild(): void {
  if (!existsSync(join(root, 'out', 'main', 'cli.js')) || !existsSync(browserMain)) {
    throw new Error('The app is not built: run "npm run build" before the safety tests');
  }
}

export interface Home {
  dir: string;
  db: string;
  /** `almostrec <args> --db <catalog>`, waited for. */
  cli(...args: string[]): { code: number | null; stdout: string; stderr: string; lines: string[] };
  remove(): void;
}

export function createHome(prefix: string): Home {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const db = join(dir, 'catalog.sqlite');
  return {
    dir,
    db,
    cli(...args) {
      const r = spawnSync(process.execPath, [bin, ...args, '--db', db], { encoding: 'utf8', timeout: 180_000 });
      return { code: r.status, stdout: r.stdout, stderr: r.stderr, lines: r.stdout.split('\n').filter(Boolean) };
    },
    remove: () => rmSync(dir, { recursive: true, force: true })
  };
}

export const json = <T = Record<string, unknown>>(line: string) => JSON.parse(line) as T;

/**
 * A sequential dataset with real signal (each user walks the item ring with a stride of 1, 2 or 3), so a
 * model's metrics depend on every step it took: 90 users × 14 interactions over 40 items.
 */
export function writeEventsCsv(path: string): void {
  const rows = ['user,item,ts'];
  for (let u = 0; u < 90; u++) {
    const stride = 1 + (u % 3);
    for (let k = 0; k < 14; k++) rows.push(`u${u},i${(u * 7 + k * stride) % 40},${1_000_000 + u * 100 + k}`);
  }
  writeFileSync(path, rows.join('\n') + '\n');
}

export interface Crashable {
  child: ChildProcess;
  exited: Promise<number | null>;
  output: () => string;
  /** Resolves once the process has frozen at its crash point (it writes the marker file first). */
  frozen(timeoutMs?: number): Promise<void>;
}

/** Starts `args` under node with the crash point `point` (e.g. "train-step@9"; "" for none). */
export function spawnCrashable(args: string[], point: string, env: Record<string, string> = {}): Crashable {
  const marker = join(mkdtempSync(join(tmpdir(), 'crash-marker-')), 'frozen');
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env, ALMOSTREC_TEST_CRASH_POINT: point, ALMOSTREC_TEST_CRASH_FILE: marker },
    stdio: ['ignore', 'pipe', 'pipe']
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  let gone = false;
  const exited = new Promise<number | null>((r) =>
    child.on('exit', (code) => {
      gone = true;
      r(code);
    })
  );
  return {
    child,
    exited,
    output: () => out,
    async frozen(timeoutMs = 120_000) {
      const start = Date.now();
      while (!existsSync(marker) || readFileSync(marker, 'utf8').trim() === '') {
        if (gone) throw new Error(`process exited before the crash point ${point}: ${out}`);
        if (Date.now() - start > timeoutMs) {
          child.kill('SIGKILL');
          throw new Error(`crash point ${point} not reached in ${timeoutMs} ms: ${out}`);
        }
        await new Promise((r) => setTimeout(r, 25));
      }
      expect(readFileSync(marker, 'utf8')).toBe(`${child.pid} ${point.split('@')[0]}\n`);
    }
  };
}

/** spawnCrashable, resolved once frozen. */
export async function startFrozen(args: string[], point: string, env: Record<string, string> = {}): Promise<Crashable> {
  const c = spawnCrashable(args, point, env);
  await c.frozen();
  return c;
}

/** kill -9, and wait until the process is gone. */
export async function killHard(f: Crashable): Promise<void> {
  process.kill(f.child.pid!, 'SIGKILL');
  await f.exited;
}

export interface Exclude {
  /** Rows of these runs (runs.id, and run_id in the run tables) are the job's own. */
  runIds?: number[];
  backboneIds?: number[];
  /** Whole tables a job may add cache rows to (never removes any). */
  tables?: string[];
}

/**
 * SHA-256 per table of the catalog's rows, in a fixed order, without the rows `exclude` names: equal
 * before and after a kill means nothing else was lost or changed. Read-only, beside the live writers (WAL).
 */
export function tableChecksums(dbPath: string, exclude: Exclude = {}): Record<string, string> {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const tables = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`).all() as { name: string }[]).map((t) => t.name);
    const out: Record<string, string> = {};
    for (const t of tables) {
      if (exclude.tables?.includes(t)) continue;
      const cols = (db.prepare(`SELECT name FROM pragma_table_info(?)`).all(t) as { name: string }[]).map((c) => c.name);
      const where: string[] = [];
      const list = (ids: number[]) => ids.join(',');
      if (exclude.runIds?.length) {
        if (t === 'runs') where.push(`id NOT IN (${list(exclude.runIds)})`);
        else if (cols.includes('run_id')) where.push(`run_id NOT IN (${list(exclude.runIds)})`);
      }
      if (exclude.backboneIds?.length) {
        if (t === 'backbones') where.push(`id NOT IN (${list(exclude.backboneIds)})`);
        else if (cols.includes('backbone_id')) where.push(`backbone_id NOT IN (${list(exclude.backboneIds)})`);
      }
      const rows = db.prepare(`SELECT * FROM "${t}" ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY ${cols.map((_, i) => i + 1).join(', ')}`).raw().all();
      const hash = createHash('sha256');
      for (const r of rows) hash.update(JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) + '\n');
      out[t] = `${rows.length}:${hash.digest('hex')}`;
    }
    return out;
  } finally {
    db.close();
  }
}

export function integrityCheck(dbPath: string): string {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    return db.pragma('integrity_check', { simple: true }) as string;
  } finally {
    db.close();
  }
}

/** What must match between an interrupted-and-resumed run and an uninterrupted one: every figure but time. */
export function trainedFigures(run: { status: string; bestEpoch: number | null; valid: unknown; test: unknown; history: { epoch: number; loss: number; validNdcg10: number | null }[] }) {
  return { status: run.status, bestEpoch: run.bestEpoch, valid: run.valid, test: run.test, history: run.history.map(({ epoch, loss, validNdcg10 }) => ({ epoch, loss, validNdcg10 })) };
}

/** Browser mode of the built app on `home` (ALMOSTREC_HOME), and a caller for its HTTP API with the token. */
export async function startServer(homeDir: string, point = '', env: Record<string, string> = {}): Promise<Crashable & { api<T>(method: string, input?: unknown): Promise<T> }> {
  const server = spawnCrashable([browserMain, '--no-open', '--no-import'], point, { ...env, ALMOSTREC_HOME: homeDir });
  const start = Date.now();
  let m: RegExpExecArray | null = null;
  while (!(m = /Open: (http:\/\/127\.0\.0\.1:\d+)\/\?token=([0-9a-f]+)/.exec(server.output()))) {
    if (Date.now() - start > 60_000) throw new Error(`browser mode did not start: ${server.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const [, base, token] = m;
  return Object.assign(server, {
    async api<T>(method: string, input: unknown = {}): Promise<T> {
      const res = await fetch(`${base}/api/${method}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(input) });
      const envelope = (await res.json()) as { ok: boolean; result?: T; error?: { message: string } };
      if (!envelope.ok) throw new Error(`${method}: ${envelope.error?.message}`);
      return envelope.result as T;
    }
  });
}

/** Stops a server normally (SIGTERM: it cancels its jobs and closes the catalog). */
export async function stopServer(server: Crashable): Promise<void> {
  server.child.kill('SIGTERM');
  await server.exited;
}
