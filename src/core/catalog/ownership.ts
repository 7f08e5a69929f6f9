// Job ownership (issue 13): every run and pretraining in flight names the process that runs it (pid + host)
// and a heartbeat that process renews. A process that starts (the app, any CLI command) marks interrupted
// only what a dead owner left unfinished; a live owner's work (the CLI training while the app opens) is
// left alone. Hand-written: a lease is three columns and two queries, no library needed.
import { hostname } from 'node:os';
import type { Database } from 'better-sqlite3';

export type OwnedTable = 'runs' | 'backbones';

/** How often a running job renews its heartbeat. */
export const HEARTBEAT_MS = 5_000;
/**
 * A running job whose heartbeat is older than this has lost its owner even if its pid looks alive (the pid
 * reused by another process, or an owner on another host, whose pid cannot be checked from here).
 * Generous: a training step or a backbone load may hold the owner's thread for minutes.
 */
export const LEASE_MS = 10 * 60_000;

export interface Owner {
  pid: number;
  host: string;
}

export const thisProcess = (): Owner => ({ pid: process.pid, host: hostname() });

/** Records this process as the owner of a row (creation of a queued job, or its start), heartbeat now. */
export function claim(db: Database, table: OwnedTable, id: number): void {
  const me = thisProcess();
  db.prepare(`UPDATE ${table} SET owner_pid = ?, owner_host = ?, heartbeat_at = ? WHERE id = ?`).run(me.pid, me.host, Date.now(), id);
}

/** Renews this process's lease on a row it owns; a row another process has taken over is not touched. */
export function renew(db: Database, table: OwnedTable, id: number): void {
  const me = thisProcess();
  db.prepare(`UPDATE ${table} SET heartbeat_at = ? WHERE id = ? AND owner_pid = ? AND owner_host = ?`).run(Date.now(), id, me.pid, me.host);
}

/** Whether a local pid is a running process (EPERM: it is, but someone else's). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

interface OwnedRow {
  id: number;
  status: string;
  owner_pid: number | null;
  owner_host: string | null;
  heartbeat_at: number | null;
}

export interface SweepOptions {
  /**
   * True when this process has not started any job yet (its start-up): a row naming this very pid was then
   * left by an earlier process that had the same pid, and is gone. Otherwise such a row is this process's own.
   */
  atStartup: boolean;
  now?: number;
  alive?: (pid: number) => boolean;
}

/** Why a row's owner is gone, or null while it lives. */
function goneReason(r: OwnedRow, now: number, alive: (pid: number) => boolean, atStartup: boolean): string | null {
  if (r.owner_pid === null || r.owner_host === null) return 'the process running it stopped';
  const who = `process ${r.owner_pid} on ${r.owner_host}`;
  const me = thisProcess();
  if (r.owner_host === me.host && r.owner_pid === me.pid) return atStartup ? `${who} stopped (killed or crashed)` : null;
  if (r.owner_host === me.host && !alive(r.owner_pid)) return `${who} stopped (killed or crashed)`;
  if (r.status === 'running' && (r.heartbeat_at === null || now - r.heartbeat_at > LEASE_MS)) {
    return `${who} has not renewed its lease for ${Math.round((now - (r.heartbeat_at ?? 0)) / 60_000)} minutes`;
  }
  return null;
}

export interface SweepResult {
  runs: number[];
  backbones: number[];
}

/**
 * Marks 'failed' with an "Interrupted: …" error (resumable from the last checkpoint) every unfinished run
 * and pretraining whose owner is gone. Each update re-checks the row it read, so a job that moved on
 * meanwhile is left as it is.
 */
export function sweepOrphans(db: Database, { atStartup, now = Date.now(), alive = pidAlive }: SweepOptions): SweepResult {
  const result: SweepResult = { runs: [], backbones: [] };
  const tables: [OwnedTable, string, string][] = [
    ['runs', "status IN ('running', 'queued')", 'run'],
    ['backbones', "source = 'pretrained' AND status IN ('running', 'queued')", 'pretraining']
  ];
  db.transaction(() => {
    for (const [table, unfinished, what] of tables) {
      const rows = db.prepare(`SELECT id, status, owner_pid, owner_host, heartbeat_at FROM ${table} WHERE ${unfinished}`).all() as OwnedRow[];
      const mark = db.prepare(
        `UPDATE ${table} SET status = 'failed', ended_at = ?, error = ?, owner_pid = NULL, owner_host = NULL, heartbeat_at = NULL
         WHERE id = ? AND status = ? AND owner_pid IS ? AND owner_host IS ? AND heartbeat_at IS ?`
      );
      for (const r of rows) {
        const reason = goneReason(r, now, alive, atStartup);
        if (reason === null) continue;
        const error = `Interrupted: ${reason} while this ${what} was ${r.status}. Resume it to continue from its last checkpoint.`;
        const changed = mark.run(new Date(now).toISOString(), error, r.id, r.status, r.owner_pid, r.owner_host, r.heartbeat_at).changes;
        if (changed) result[table].push(r.id);
      }
    }
  })();
  return result;
}

/** True for the error a sweep records (the UI and CLI show such a run as interrupted). */
export const isInterruptedError = (error: string | null | undefined): boolean => error?.startsWith('Interrupted:') ?? false;
