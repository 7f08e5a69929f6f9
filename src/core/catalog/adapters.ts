// The adapter registry's rows (migration 6): one per finished run of a backbone model. A row points at the
// run's adapter files (artifact rows, paths relative to the run folder) with their sizes and one content hash;
// backbone, dataset, sequential run and metrics are read from the run, so they can never disagree with it.
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { dirname, relative, sep } from 'node:path';
import type { Database } from 'better-sqlite3';
import type { AdapterFile, AdapterSummary } from '../../shared/adapters';
import { MODEL_KINDS, usesBackbone, type ModelKind } from '../../shared/models';
import { getRun, listRuns, type ArtifactRow } from './runs';

/** The artifact kinds that make up an adapter (the export functions of src/core/models/*-export.ts write them). */
export function isAdapterArtifact(kind: string): boolean {
  return kind === 'lora_adapter' || kind === 'lora_adapter_config' || kind.endsWith('_tensors') || kind.endsWith('_manifest');
}

/** Whether runs of this kind leave an adapter: the models on a backbone (ALMOSTREC, E4SRec, TALLRec, LLaRA, VIP5). */
export function leavesAdapter(model: string): boolean {
  return (MODEL_KINDS as readonly string[]).includes(model) && usesBackbone(model as ModelKind);
}

/**
 * The content hash of an adapter: sha256 over "<relative path>\t<sha256 of the file>\n" in path order. The
 * same files give the same hash in any catalog (an imported adapter keeps its exporter's hash).
 */
export function contentHash(files: readonly Pick<AdapterFile, 'path' | 'sha256'>[]): string {
  const h = createHash('sha256');
  for (const f of [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) h.update(`${f.path}\t${f.sha256}\n`);
  return h.digest('hex');
}

/** The adapter files among a run's artifacts (the newest row per path), relative to the run folder; null if one is missing. */
export function adapterFiles(artifacts: readonly ArtifactRow[], runDir: string): AdapterFile[] | null {
  const byPath = new Map<string, ArtifactRow>();
  for (const a of artifacts) if (isAdapterArtifact(a.kind)) byPath.set(a.path, a);
  const files: AdapterFile[] = [];
  for (const a of byPath.values()) {
    let bytes: number;
    try {
      bytes = statSync(a.path).size;
    } catch {
      return null;
    }
    files.push({ path: relative(runDir, a.path).split(sep).join('/'), bytes, sha256: a.sha256 });
  }
  return files.sort((a, b) => (a.path < b.path ? -1 : 1));
}

function artifactsOf(db: Database, runId: number): ArtifactRow[] {
  return db.prepare('SELECT kind, path, sha256 FROM artifacts WHERE run_id = ? ORDER BY id').all(runId) as ArtifactRow[];
}

/**
 * Registers (or refreshes, after a re-export) the adapter of a finished run; returns false when the run
 * leaves none (not a backbone model, not finished, no adapter artifact, or a file gone from disk).
 */
export function registerAdapter(db: Database, runId: number, opts: { source?: 'trained' | 'imported'; name?: string; origin?: AdapterSummary['origin'] } = {}): boolean {
  const run = getRun(db, runId);
  if (!run || run.status !== 'succeeded' || !leavesAdapter(run.model) || !run.checkpointPath) return false;
  const files = adapterFiles(artifactsOf(db, runId), dirname(run.checkpointPath));
  if (!files || files.length === 0) return false;
  const size = files.reduce((s, f) => s + f.bytes, 0);
  db.prepare(
    `INSERT INTO adapters (run_id, name, source, files, size_bytes, content_hash, origin, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (run_id) DO UPDATE SET files = excluded.files, size_bytes = excluded.size_bytes, content_hash = excluded.content_hash`
  ).run(
    runId,
    opts.name ?? `${run.model} run ${runId}`,
    opts.source ?? 'trained',
    JSON.stringify(files),
    size,
    contentHash(files),
    opts.origin ? JSON.stringify(opts.origin) : null,
    run.endedAt ?? new Date().toISOString()
  );
  return true;
}

/** Registers every finished backbone-model run that has no row yet (migration 6; idempotent). */
export function backfillAdapters(db: Database): number {
  let added = 0;
  const known = new Set((db.prepare('SELECT run_id FROM adapters').all() as { run_id: number }[]).map((r) => r.run_id));
  for (const run of listRuns(db)) if (!known.has(run.id) && run.status === 'succeeded' && leavesAdapter(run.model) && registerAdapter(db, run.id)) added++;
  return added;
}

interface AdapterRow {
  run_id: number;
  name: string;
  source: 'trained' | 'imported';
  files: string;
  size_bytes: number;
  content_hash: string;
  origin: string | null;
  created_at: string;
}

const positiveId = (v: unknown): number | null => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : null);

function toAdapter(db: Database, row: AdapterRow): AdapterSummary | null {
  const run = getRun(db, row.run_id);
  if (!run) return null;
  const backboneId = positiveId(run.config.backboneId);
  const backbone = backboneId === null ? undefined : (db.prepare('SELECT name FROM backbones WHERE id = ?').get(backboneId) as { name: string } | undefined);
  return {
    runId: row.run_id,
    name: row.name,
    model: run.model,
    datasetId: run.datasetId,
    datasetName: run.datasetName,
    backboneId,
    backboneName: backbone?.name ?? (typeof run.config.backboneName === 'string' ? run.config.backboneName : null),
    seqRunId: positiveId(run.config.seqRunId),
    source: row.source,
    contentHash: row.content_hash,
    sizeBytes: row.size_bytes,
    files: JSON.parse(row.files) as AdapterFile[],
    valid: run.valid,
    test: run.test,
    createdAt: row.created_at,
    origin: row.origin ? (JSON.parse(row.origin) as AdapterSummary['origin']) : null
  };
}

export function listAdapters(db: Database, filter: { backboneId?: number; datasetId?: number } = {}): AdapterSummary[] {
  const rows = db.prepare('SELECT * FROM adapters ORDER BY run_id DESC').all() as AdapterRow[];
  return rows
    .map((r) => toAdapter(db, r))
    .filter((a): a is AdapterSummary => a !== null)
    .filter((a) => (filter.backboneId === undefined || a.backboneId === filter.backboneId) && (filter.datasetId === undefined || a.datasetId === filter.datasetId));
}

export function getAdapter(db: Database, runId: number): AdapterSummary | null {
  const row = db.prepare('SELECT * FROM adapters WHERE run_id = ?').get(runId) as AdapterRow | undefined;
  return row ? toAdapter(db, row) : null;
}

export function renameAdapter(db: Database, runId: number, name: string): boolean {
  return db.prepare('UPDATE adapters SET name = ? WHERE run_id = ?').run(name, runId).changes > 0;
}
