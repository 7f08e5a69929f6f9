// Run bookkeeping: runs, per-epoch history, metrics, per-user ranks, recommendations, artifacts.
import type { Database } from 'better-sqlite3';
import type { RecommendationRow } from '../../shared/figures/recommendations-csv';
import type { BackendInfo, EpochRecord, Metrics, ModelKind, RunDetail, RunStatus, RunSummary } from '../../shared/types';
import { METRIC_KEYS, toEpoch, toRun, type EpochRow, type MetricRow, type RunRow } from './rows';

export type SplitKind = 'valid' | 'test';

export interface RunPatch {
  status: RunStatus;
  startedAt: string;
  endedAt: string;
  error: string | null;
  checkpointPath: string | null;
  backend: BackendInfo;
  bestEpoch: number | null;
  config: object;
}

const RUN_SELECT = `SELECT r.id, r.dataset_id, d.name AS dataset_name, r.model, r.config, r.status, r.backend,
  r.started_at, r.ended_at, r.checkpoint_path, r.error, r.best_epoch
  FROM runs r JOIN datasets d ON d.id = r.dataset_id`;

export function createRun(
  db: Database,
  r: { datasetId: number; model: ModelKind; config: object; backend: BackendInfo | null }
): number {
  const info = db
    .prepare(
      `INSERT INTO runs (dataset_id, model, config, status, backend, created_at) VALUES (?, ?, ?, 'queued', ?, ?)`
    )
    .run(r.datasetId, r.model, JSON.stringify(r.config), r.backend ? JSON.stringify(r.backend) : null, new Date().toISOString());
  return Number(info.lastInsertRowid);
}

const PATCH_COLUMNS: Record<keyof RunPatch, { column: string; encode: (v: unknown) => unknown }> = {
  status: { column: 'status', encode: (v) => v },
  startedAt: { column: 'started_at', encode: (v) => v },
  endedAt: { column: 'ended_at', encode: (v) => v },
  error: { column: 'error', encode: (v) => v },
  checkpointPath: { column: 'checkpoint_path', encode: (v) => v },
  backend: { column: 'backend', encode: (v) => JSON.stringify(v) },
  bestEpoch: { column: 'best_epoch', encode: (v) => v },
  config: { column: 'config', encode: (v) => JSON.stringify(v) }
};

export function updateRun(db: Database, runId: number, patch: Partial<RunPatch>): void {
  const sets: string[] = [];
  const values: unknown[] = [];
  for (const [key, value] of Object.entries(patch) as [keyof RunPatch, unknown][]) {
    const spec = PATCH_COLUMNS[key];
    if (!spec) throw new Error(`updateRun: unknown field '${String(key)}'`);
    if (value === undefined) continue;
    sets.push(`${spec.column} = ?`);
    values.push(spec.encode(value));
  }
  if (sets.length === 0) return;
  const info = db.prepare(`UPDATE runs SET ${sets.join(', ')} WHERE id = ?`).run(...values, runId);
  if (info.changes === 0) throw new Error(`updateRun: run ${runId} does not exist`);
}

function metricsOf(db: Database, runIds: number[]): Map<number, MetricRow[]> {
  const out = new Map<number, MetricRow[]>();
  if (runIds.length === 0) return out;
  const rows = db
    .prepare(
      `SELECT run_id, split, metric, k, value FROM run_metrics WHERE run_id IN (SELECT value FROM json_each(?))`
    )
    .all(JSON.stringify(runIds)) as (MetricRow & { run_id: number })[];
  for (const r of rows) {
    const list = out.get(r.run_id) ?? [];
    list.push(r);
    out.set(r.run_id, list);
  }
  return out;
}

export function listRuns(db: Database, datasetId?: number): RunSummary[] {
  const rows = (
    datasetId === undefined
      ? db.prepare(`${RUN_SELECT} ORDER BY r.id DESC`).all()
      : db.prepare(`${RUN_SELECT} WHERE r.dataset_id = ? ORDER BY r.id DESC`).all(datasetId)
  ) as RunRow[];
  const metrics = metricsOf(db, rows.map((r) => r.id));
  return rows.map((r) => toRun(r, metrics.get(r.id) ?? []));
}

export function getRun(db: Database, runId: number): RunDetail | null {
  const row = db.prepare(`${RUN_SELECT} WHERE r.id = ?`).get(runId) as RunRow | undefined;
  if (!row) return null;
  const history = (
    db.prepare('SELECT epoch, loss, valid_ndcg10, seconds FROM run_epochs WHERE run_id = ? ORDER BY epoch').all(runId) as EpochRow[]
  ).map(toEpoch);
  return { ...toRun(row, metricsOf(db, [runId]).get(runId) ?? []), history, checkpointPath: row.checkpoint_path };
}

export function deleteRun(db: Database, runId: number): boolean {
  return db.prepare('DELETE FROM runs WHERE id = ?').run(runId).changes > 0;
}

export function appendEpoch(db: Database, runId: number, rec: EpochRecord): void {
  db.prepare(
    `INSERT INTO run_epochs (run_id, epoch, loss, valid_ndcg10, seconds) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (run_id, epoch) DO UPDATE SET loss = excluded.loss, valid_ndcg10 = excluded.valid_ndcg10,
       seconds = excluded.seconds`
  ).run(runId, rec.epoch, rec.loss, rec.validNdcg10, rec.seconds);
}

export function clearEpochsAfter(db: Database, runId: number, epoch: number): void {
  db.prepare('DELETE FROM run_epochs WHERE run_id = ? AND epoch > ?').run(runId, epoch);
}

export function saveMetrics(db: Database, runId: number, split: SplitKind, m: Metrics): void {
  const insert = db.prepare('INSERT INTO run_metrics (run_id, split, metric, k, value) VALUES (?, ?, ?, ?, ?)');
  db.transaction(() => {
    db.prepare('DELETE FROM run_metrics WHERE run_id = ? AND split = ?').run(runId, split);
    for (const { key, metric, k } of METRIC_KEYS) insert.run(runId, split, metric, k, m[key]);
  })();
}

export function saveUserRanks(
  db: Database,
  runId: number,
  split: SplitKind,
  rows: { userId: number; itemId: number; rank: number }[]
): void {
  const insert = db.prepare('INSERT INTO run_user_ranks (run_id, split, user_id, item_id, rank) VALUES (?, ?, ?, ?, ?)');
  db.transaction(() => {
    db.prepare('DELETE FROM run_user_ranks WHERE run_id = ? AND split = ?').run(runId, split);
    for (const r of rows) insert.run(runId, split, r.userId, r.itemId, r.rank);
  })();
}

export function getUserRank(db: Database, runId: number, split: SplitKind, userId: number): number | null {
  const row = db
    .prepare('SELECT rank FROM run_user_ranks WHERE run_id = ? AND split = ? AND user_id = ?')
    .get(runId, split, userId) as { rank: number } | undefined;
  return row ? row.rank : null;
}

export function saveRecommendations(
  db: Database,
  runId: number,
  rows: { userId: number; rank: number; itemId: number; score: number }[]
): void {
  const insert = db.prepare('INSERT INTO recommendations (run_id, user_id, rank, item_id, score) VALUES (?, ?, ?, ?, ?)');
  db.transaction(() => {
    db.prepare('DELETE FROM recommendations WHERE run_id = ?').run(runId);
    for (const r of rows) insert.run(runId, r.userId, r.rank, r.itemId, r.score);
  })();
}

export function getRecommendations(
  db: Database,
  runId: number,
  userId: number,
  k: number
): { rank: number; itemId: number; score: number }[] {
  return db
    .prepare(
      'SELECT rank, item_id AS itemId, score FROM recommendations WHERE run_id = ? AND user_id = ? ORDER BY rank LIMIT ?'
    )
    .all(runId, userId, k) as { rank: number; itemId: number; score: number }[];
}

/**
 * Every user's stored top-k of a run, users in catalog order, with the ids of the dataset's files and the
 * hit flag (the item is the user's held-out test item, from the run's test ranks). Rank 1-based.
 */
export function listRecommendationRows(db: Database, runId: number, k: number): RecommendationRow[] {
  const rows = db
    .prepare(
      `SELECT u.external_id AS user, r.rank + 1 AS rank, i.external_id AS itemId, i.title, r.score,
              (t.item_id IS NOT NULL AND t.item_id = r.item_id) AS hit
         FROM recommendations r
         JOIN users u ON u.id = r.user_id
         JOIN items i ON i.id = r.item_id
         LEFT JOIN run_user_ranks t ON t.run_id = r.run_id AND t.split = 'test' AND t.user_id = r.user_id
        WHERE r.run_id = ? AND r.rank < ?
        ORDER BY r.user_id, r.rank`
    )
    .all(runId, k) as (Omit<RecommendationRow, 'hit'> & { hit: number })[];
  return rows.map((r) => ({ ...r, hit: r.hit === 1 }));
}

export function addArtifact(db: Database, runId: number, kind: string, path: string, sha256: string): void {
  db.prepare('INSERT INTO artifacts (run_id, kind, path, sha256, created_at) VALUES (?, ?, ?, ?, ?)').run(
    runId,
    kind,
    path,
    sha256,
    new Date().toISOString()
  );
}

export interface ArtifactRow {
  kind: string;
  path: string;
  sha256: string;
}

export function getArtifacts(db: Database, runId: number): ArtifactRow[] {
  return db.prepare('SELECT kind, path, sha256 FROM artifacts WHERE run_id = ? ORDER BY id').all(runId) as ArtifactRow[];
}
