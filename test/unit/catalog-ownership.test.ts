// Job ownership (src/core/catalog/ownership.ts): which unfinished runs and pretraining a starting process
// marks interrupted — only those whose owner is gone — and the lease a running job keeps alive.
import { hostname } from 'node:os';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Catalog, HEARTBEAT_MS, LEASE_MS } from '../../src/core/catalog';
import { sweepOrphans } from '../../src/core/catalog/ownership';
import { holdLease } from '../../src/core/jobs/job-lease';

let catalog: Catalog;
let datasetId: number;

beforeEach(() => {
  catalog = Catalog.open(':memory:');
  datasetId = Number(
    catalog.db.prepare(`INSERT INTO datasets (name, format, source_path, imported_at, stats) VALUES ('d', 'generic', '/x', '2026-01-01', '{}')`).run().lastInsertRowid
  );
});
afterEach(() => catalog.close());

const ALIVE = 4242;
const DEAD = 4243;
const alive = (pid: number) => pid === ALIVE;
const NOW = Date.parse('2026-12-07T12:00:00Z');

function run(status: string, owner: { pid: number | null; host: string | null; heartbeat: number | null }): number {
  const id = catalog.createRun({ datasetId, model: 'sasrec', config: {}, backend: null });
  catalog.db.prepare('UPDATE runs SET status = ?, owner_pid = ?, owner_host = ?, heartbeat_at = ? WHERE id = ?').run(status, owner.pid, owner.host, owner.heartbeat, id);
  return id;
}
const row = (id: number) => catalog.db.prepare('SELECT status, error, owner_pid FROM runs WHERE id = ?').get(id) as { status: string; error: string | null; owner_pid: number | null };

describe('sweepOrphans', () => {
  it('marks interrupted only the runs whose owner is gone', () => {
    const host = hostname();
    const live = run('running', { pid: ALIVE, host, heartbeat: NOW - 1000 });
    const liveQueued = run('queued', { pid: ALIVE, host, heartbeat: NOW - 3 * LEASE_MS }); // a queue may wait long
    const dead = run('running', { pid: DEAD, host, heartbeat: NOW - 1000 });
    const deadQueued = run('queued', { pid: DEAD, host, heartbeat: NOW });
    const elsewhere = run('running', { pid: DEAD, host: 'other-host', heartbeat: NOW - 1000 }); // pid not checkable: lease holds
    const expired = run('running', { pid: ALIVE, host: 'other-host', heartbeat: NOW - LEASE_MS - 1 });
    const reused = run('running', { pid: ALIVE, host, heartbeat: NOW - LEASE_MS - 1 }); // pid alive but silent: reused
    const legacy = run('running', { pid: null, host: null, heartbeat: null }); // from before owners existed
    const mine = run('running', { pid: process.pid, host, heartbeat: NOW }); // at start-up: an earlier process with this pid
    const finished = run('succeeded', { pid: DEAD, host, heartbeat: NOW });

    // Once this process runs jobs, its own rows are its live jobs; at its start-up they cannot be.
    const swept = sweepOrphans(catalog.db, { atStartup: false, now: NOW, alive });
    expect(swept.runs.sort((a, b) => a - b)).toEqual([dead, deadQueued, expired, reused, legacy].sort((a, b) => a - b));
    expect(row(mine).status).toBe('running');
    expect(sweepOrphans(catalog.db, { atStartup: true, now: NOW, alive }).runs).toEqual([mine]);
    for (const id of [live, liveQueued, elsewhere]) expect(row(id).status).not.toBe('failed');
    expect(row(finished).status).toBe('succeeded');
    expect(row(dead)).toEqual({ status: 'failed', owner_pid: null, error: `Interrupted: process ${DEAD} on ${host} stopped (killed or crashed) while this run was running. Resume it to continue from its last checkpoint.` });
    expect(row(expired).error).toMatch(/^Interrupted: process 4242 on other-host has not renewed its lease for 10 minutes/);
    expect(row(legacy).error).toMatch(/^Interrupted: the process running it stopped while this run was running/);
    // A second sweep finds nothing more to do.
    expect(sweepOrphans(catalog.db, { atStartup: true, now: NOW, alive })).toEqual({ runs: [], backbones: [] });
  });

  it('treats pretraining the same way and leaves registered backbones alone', () => {
    const pretrained = catalog.createBackbone({ name: 'p', source: 'pretrained', datasetId, path: '/b/p', config: {} });
    const registered = catalog.createBackbone({ name: 'r', source: 'huggingface', datasetId: null, path: '/b/r', config: {} });
    catalog.db.prepare(`UPDATE backbones SET status = 'running', owner_pid = ?, owner_host = ? WHERE id = ?`).run(DEAD, hostname(), pretrained);
    expect(sweepOrphans(catalog.db, { atStartup: true, alive })).toEqual({ runs: [], backbones: [pretrained] });
    expect(catalog.getBackbone(pretrained)).toMatchObject({ status: 'failed', error: expect.stringMatching(/^Interrupted: .* while this pretraining was running/) });
    expect(catalog.getBackbone(registered)?.status).toBe('succeeded');
  });
});

describe('holdLease', () => {
  afterEach(() => vi.useRealTimers());

  it('claims the row for this process and renews its heartbeat on a timer and on progress', () => {
    vi.useFakeTimers({ toFake: ['Date', 'setInterval', 'clearInterval'], now: NOW });
    const id = run('failed', { pid: DEAD, host: 'other-host', heartbeat: 0 });
    const heartbeat = () => (catalog.db.prepare('SELECT heartbeat_at FROM runs WHERE id = ?').get(id) as { heartbeat_at: number }).heartbeat_at;
    const seen: number[] = [];
    const lease = holdLease(catalog, 'runs', id, (p) => seen.push(p.done));
    try {
      expect(row(id).owner_pid).toBe(process.pid);
      expect(heartbeat()).toBe(NOW);
      vi.advanceTimersByTime(HEARTBEAT_MS);
      expect(heartbeat()).toBe(NOW + HEARTBEAT_MS);
      // A step that holds the thread past the timer's turn still renews, through its progress report.
      vi.setSystemTime(NOW + 3 * HEARTBEAT_MS);
      lease.onProgress({ phase: 'train', done: 1, total: 2 });
      expect(heartbeat()).toBe(NOW + 3 * HEARTBEAT_MS);
      expect(seen).toEqual([1]);
    } finally {
      lease.release();
    }
    vi.advanceTimersByTime(10 * HEARTBEAT_MS);
    expect(heartbeat()).toBe(NOW + 3 * HEARTBEAT_MS);
  });
});
