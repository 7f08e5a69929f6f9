// Backbone bookkeeping: one row per backbone (pretrained in the app or a registered llava-hf folder) and
// the per-step pretraining history the UI charts. Files live elsewhere; these rows only point at them.
import type { Database } from 'better-sqlite3';
import type { BackboneDetail, BackboneSource, BackboneStatus, BackboneSummary, HeldOutReport, PretrainPoint } from '../../shared/backbones';
import type { BackendInfo } from '../../shared/types';
import { toBackbone, toPretrainPoint, type BackboneRow, type PretrainPointRow } from './rows';

export interface NewBackbone {
  name: string;
  source: BackboneSource;
  datasetId: number | null;
  path: string;
  config: Record<string, number>;
  architecture?: string | null;
  parameters?: number | null;
  /** Default: 'queued' for a backbone still to pretrain, 'succeeded' for a registered (ready) folder. */
  status?: BackboneStatus;
}

export interface BackbonePatch {
  status: BackboneStatus;
  startedAt: string | null;
  endedAt: string | null;
  error: string | null;
  architecture: string | null;
  parameters: number | null;
  path: string;
  config: Record<string, number>;
  /** Held-out caption loss per pretraining stage. */
  heldOut: HeldOutReport | null;
  /** What the pretraining ran on. */
  backend: BackendInfo | null;
}

const BACKBONE_SELECT = `SELECT b.id, b.name, b.source, b.status, b.dataset_id, d.name AS dataset_name, b.path, b.config,
  b.architecture, b.parameters, b.created_at, b.started_at, b.ended_at, b.error, b.backend
  FROM backbones b LEFT JOIN datasets d ON d.id = b.dataset_id`;

export function createBackbone(db: Database, b: NewBackbone): number {
  try {
    const info = db
      .prepare(
        `INSERT INTO backbones (name, source, status, dataset_id, path, config, architecture, parameters, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
      )
      .run(
        b.name,
        b.source,
        b.status ?? (b.source === 'pretrained' ? 'queued' : 'succeeded'),
        b.datasetId,
        b.path,
        JSON.stringify(b.config),
        b.architecture ?? null,
        b.parameters ?? null,
        new Date().toISOString()
      );
    return Number(info.lastInsertRowid);
  } catch (err) {
    // SQLite's own message ("UNIQUE constraint failed: backbones.name") would reach the user as-is.
    if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw new Error(`A backbone named "${b.name}" already exists`);
    throw err;
  }
}

const PATCH_COLUMNS: Record<keyof BackbonePatch, { column: string; encode: (v: unknown) => unknown }> = {
  status: { column: 'status', encode: (v) => v },
  startedAt: { column: 'started_at', encode: (v) => v },
  endedAt: { column: 'ended_at', encode: (v) => v },
  error: { column: 'error', encode: (v) => v },
  architecture: { column: 'architecture', encode: (v) => v },
  parameters: { column: 'parameters', encode: (v) => v },
  path: { column: 'path', encode: (v) => v },
  config: { column: 'config', encode: (v) => JSON.stringify(v) },
  heldOut: { column: 'held_out', encode: (v) => (v === null ? null : JSON.stringify(v)) },
  backend: { column: 'backend', encode: (v) => (v === null ? null : JSON.stringify(v)) }
};

export function updateBackbone(db: Database, backboneId: number, patch: Partial<BackbonePatch>): void {
  const sets: string[] = [];
  const values: unknown[] = [];
  for (const [key, value] of Object.entries(patch) as [keyof BackbonePatch, unknown][]) {
    const spec = PATCH_COLUMNS[key];
    if (!spec) throw new Error(`updateBackbone: unknown field '${String(key)}'`);
    if (value === undefined) continue;
    sets.push(`${spec.column} = ?`);
    values.push(spec.encode(value));
  }
  if (sets.length === 0) return;
  const info = db.prepare(`UPDATE backbones SET ${sets.join(', ')} WHERE id = ?`).run(...values, backboneId);
  if (info.changes === 0) throw new Error(`updateBackbone: backbone ${backboneId} does not exist`);
}

/** Upserts by step: a resumed job re-runs the steps after its last checkpoint and rewrites them. */
export function appendPretrainPoints(db: Database, backboneId: number, points: readonly PretrainPoint[]): void {
  const insert = db.prepare(
    'INSERT OR REPLACE INTO backbone_history (backbone_id, step, stage, loss, learning_rate, seconds) VALUES (?, ?, ?, ?, ?, ?)'
  );
  db.transaction(() => {
    for (const p of points) insert.run(backboneId, p.step, p.stage, p.loss, p.learningRate, p.seconds);
  })();
}

/** Drops the steps after `afterStep` (those a resume from that checkpoint will redo). */
export function truncatePretrainHistory(db: Database, backboneId: number, afterStep: number): void {
  db.prepare('DELETE FROM backbone_history WHERE backbone_id = ? AND step > ?').run(backboneId, afterStep);
}

export function getBackbone(db: Database, backboneId: number): BackboneDetail | null {
  const row = db.prepare(`${BACKBONE_SELECT} WHERE b.id = ?`).get(backboneId) as BackboneRow | undefined;
  if (!row) return null;
  const history = (
    db
      .prepare('SELECT step, stage, loss, learning_rate, seconds FROM backbone_history WHERE backbone_id = ? ORDER BY step')
      .all(backboneId) as PretrainPointRow[]
  ).map(toPretrainPoint);
  const heldOut = db.prepare('SELECT held_out FROM backbones WHERE id = ?').get(backboneId) as { held_out: string | null };
  return { ...toBackbone(row), history, heldOut: heldOut.held_out === null ? null : (JSON.parse(heldOut.held_out) as HeldOutReport) };
}

export function findBackboneByName(db: Database, name: string): BackboneSummary | null {
  const row = db.prepare(`${BACKBONE_SELECT} WHERE b.name = ?`).get(name) as BackboneRow | undefined;
  return row ? toBackbone(row) : null;
}

export function listBackbones(db: Database): BackboneSummary[] {
  return (db.prepare(`${BACKBONE_SELECT} ORDER BY b.id DESC`).all() as BackboneRow[]).map(toBackbone);
}

/** The row and its history only; the caller decides what happens to the folder. */
export function deleteBackbone(db: Database, backboneId: number): boolean {
  return db.prepare('DELETE FROM backbones WHERE id = ?').run(backboneId).changes > 0;
}
