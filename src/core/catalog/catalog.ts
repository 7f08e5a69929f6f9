// The SQLite catalog: one connection per process/thread (WAL lets the main process and workers share
// the file). Datasets are written by the importers through `db`; everything else goes through here.
import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3, { type Database } from 'better-sqlite3';
import type { BackboneDetail, BackboneSummary, PretrainPoint } from '../../shared/backbones';
import type { RecommendationRow } from '../../shared/figures/recommendations-csv';
import type {
  BackendInfo,
  DatasetSummary,
  EpochRecord,
  HistoryEntry,
  ItemSummary,
  LlmCase,
  Metrics,
  ModelKind,
  RunDetail,
  RunSummary,
  UserSummary
} from '../../shared/types';
import type { SequenceData, UserSequence } from '../data/types';
import type { AdapterSummary } from '../../shared/adapters';
import * as adapters from './adapters';
import * as backbones from './backbones';
import { getLlmCase, saveLlmCase } from './llm-cases';
import { migrate } from './migrations';
import * as ownership from './ownership';
import { ITEM_COLUMNS, toDataset, toItem, toUser, type DatasetRow, type ItemRow, type UserRow } from './rows';
import * as runs from './runs';

/** How long a connection waits for another one's write lock before SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 10_000;

/** Escapes LIKE wildcards so a user's query matches literally. */
function likeLiteral(q: string): string {
  return q.replace(/[\\%_]/g, (c) => `\\${c}`);
}

export class Catalog {
  private constructor(readonly db: Database) {}

  static open(dbPath: string): Catalog {
    if (dbPath !== ':memory:') fs.mkdirSync(path.dirname(path.resolve(dbPath)), { recursive: true });
    const db = new BetterSqlite3(dbPath, { timeout: BUSY_TIMEOUT_MS });
    try {
      if (dbPath !== ':memory:') db.pragma('journal_mode = WAL');
      db.pragma('foreign_keys = ON');
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      // WAL makes NORMAL durable enough (a power loss may drop the last commit, never corrupt the file).
      db.pragma('synchronous = NORMAL');
      migrate(db);
    } catch (e) {
      db.close();
      throw e;
    }
    return new Catalog(db);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  // ---- datasets ----

  listDatasets(): DatasetSummary[] {
    return (this.db.prepare('SELECT * FROM datasets ORDER BY id').all() as DatasetRow[]).map(toDataset);
  }

  getDataset(id: number): DatasetSummary | null {
    const row = this.db.prepare('SELECT * FROM datasets WHERE id = ?').get(id) as DatasetRow | undefined;
    return row ? toDataset(row) : null;
  }

  findDatasetByName(name: string): DatasetSummary | null {
    const row = this.db.prepare('SELECT * FROM datasets WHERE name = ?').get(name) as DatasetRow | undefined;
    return row ? toDataset(row) : null;
  }

  /** Deletes children explicitly, largest first: faster than letting per-row cascades find them. */
  deleteDataset(id: number): boolean {
    return this.db.transaction(() => {
      for (const table of ['runs', 'splits', 'interactions', 'users']) {
        this.db.prepare(`DELETE FROM ${table} WHERE dataset_id = ?`).run(id);
      }
      this.db.prepare('DELETE FROM vision_features WHERE item_id IN (SELECT id FROM items WHERE dataset_id = ?)').run(id);
      this.db.prepare('DELETE FROM items WHERE dataset_id = ?').run(id);
      return this.db.prepare('DELETE FROM datasets WHERE id = ?').run(id).changes > 0;
    })();
  }

  // ---- items and users ----

  /** Title or external id contains `query` (case-insensitive); most interacted first, then title. */
  searchItems(datasetId: number, query: string, offset: number, limit: number): { total: number; items: ItemSummary[] } {
    const q = `%${likeLiteral(query.trim())}%`;
    const where = `dataset_id = ? AND (title LIKE ? ESCAPE '\\' OR external_id LIKE ? ESCAPE '\\')`;
    const { total } = this.db.prepare(`SELECT COUNT(*) AS total FROM items WHERE ${where}`).get(datasetId, q, q) as {
      total: number;
    };
    const rows = this.db
      .prepare(`SELECT ${ITEM_COLUMNS} FROM items WHERE ${where} ORDER BY interactions DESC, title, id LIMIT ? OFFSET ?`)
      .all(datasetId, q, q, limit, offset) as ItemRow[];
    return { total, items: rows.map(toItem) };
  }

  getItems(itemIds: number[]): Map<number, ItemSummary> {
    const out = new Map<number, ItemSummary>();
    if (itemIds.length === 0) return out;
    const rows = this.db
      .prepare(`SELECT ${ITEM_COLUMNS} FROM items WHERE id IN (SELECT value FROM json_each(?))`)
      .all(JSON.stringify(itemIds)) as ItemRow[];
    for (const r of rows) out.set(r.id, toItem(r));
    return out;
  }

  /**
   * Users of the 5-core split (the ones with a held-out item) whose external id starts with `query`;
   * numeric ids sort numerically, others after them alphabetically.
   */
  searchUsers(datasetId: number, query: string, limit: number): { total: number; users: UserSummary[] } {
    const q = `${likeLiteral(query.trim())}%`;
    const where = `dataset_id = ? AND kept_interactions > 0 AND external_id LIKE ? ESCAPE '\\'`;
    const { total } = this.db.prepare(`SELECT COUNT(*) AS total FROM users WHERE ${where}`).get(datasetId, q) as {
      total: number;
    };
    const rows = this.db
      .prepare(
        `SELECT id, external_id, kept_interactions FROM users WHERE ${where}
         ORDER BY CASE WHEN external_id <> '' AND external_id NOT GLOB '*[^0-9]*' THEN 0 ELSE 1 END,
                  CAST(external_id AS INTEGER), external_id LIMIT ?`
      )
      .all(datasetId, q, limit) as UserRow[];
    return { total, users: rows.map(toUser) };
  }

  getUser(userId: number): UserSummary | null {
    const row = this.db.prepare('SELECT id, external_id, kept_interactions FROM users WHERE id = ?').get(userId) as
      | UserRow
      | undefined;
    return row ? toUser(row) : null;
  }

  /**
   * The user's 5-core sequence in protocol order with leave-one-out roles. Datasets without timestamps
   * report the position in the sequence as the timestamp.
   */
  getUserHistory(datasetId: number, userId: number): HistoryEntry[] {
    const rows = this.db
      .prepare(
        `SELECT s.role, s.position, x.timestamp AS ts, x.rating, it.id, it.external_id, it.title, it.text, it.genres,
                it.image, it.image_mime, it.interactions
         FROM splits s JOIN interactions x ON x.id = s.interaction_id JOIN items it ON it.id = x.item_id
         WHERE s.dataset_id = ? AND s.user_id = ? ORDER BY s.position`
      )
      .all(datasetId, userId) as (ItemRow & { role: HistoryEntry['role']; position: number; ts: number | null; rating: number | null })[];
    return rows.map((r) => ({ item: toItem(r), timestamp: r.ts ?? r.position, rating: r.rating, role: r.role }));
  }

  /** The 5-core sequences; items re-indexed 1..N in catalog-id order, users in catalog-id order. */
  loadSequences(datasetId: number): SequenceData {
    const rows = this.db
      .prepare(
        `SELECT s.user_id, x.item_id, x.timestamp, s.position
         FROM splits s JOIN interactions x ON x.id = s.interaction_id
         WHERE s.dataset_id = ? ORDER BY s.user_id, s.position`
      )
      .raw()
      .all(datasetId) as [number, number, number | null, number][];
    const distinct = new Set<number>();
    for (const r of rows) distinct.add(r[1]);
    const sortedItems = Int32Array.from(distinct).sort();
    const itemIds = new Int32Array(sortedItems.length + 1);
    itemIds.set(sortedItems, 1);
    const indexOf = new Map<number, number>();
    for (let i = 1; i < itemIds.length; i++) indexOf.set(itemIds[i], i);
    const users: UserSequence[] = [];
    for (let start = 0; start < rows.length; ) {
      let end = start;
      while (end < rows.length && rows[end][0] === rows[start][0]) end++;
      const items = new Int32Array(end - start);
      const timestamps = new Float64Array(end - start);
      for (let j = start; j < end; j++) {
        items[j - start] = indexOf.get(rows[j][1])!;
        timestamps[j - start] = rows[j][2] ?? rows[j][3];
      }
      users.push({ userId: rows[start][0], items, timestamps });
      start = end;
    }
    return { datasetId, numItems: sortedItems.length, itemIds, users };
  }

  // ---- job ownership (ownership.ts) ----

  /** This process now runs the run or pretraining: it must renew the claim (renewOwnership) while it does. */
  claimOwnership(table: ownership.OwnedTable, id: number): void {
    ownership.claim(this.db, table, id);
  }
  renewOwnership(table: ownership.OwnedTable, id: number): void {
    ownership.renew(this.db, table, id);
  }
  /** Marks interrupted what dead processes left unfinished (see ownership.sweepOrphans); returns the ids marked. */
  sweepOrphans(atStartup: boolean): ownership.SweepResult {
    return ownership.sweepOrphans(this.db, { atStartup });
  }

  // ---- runs ----

  /** A new run, queued and owned by this process until a job claims it (see ownership.ts). */
  createRun(r: { datasetId: number; model: ModelKind; config: object; backend: BackendInfo | null }): number {
    return this.db.transaction(() => {
      const id = runs.createRun(this.db, r);
      ownership.claim(this.db, 'runs', id);
      return id;
    })();
  }
  updateRun(runId: number, patch: Partial<runs.RunPatch>): void {
    runs.updateRun(this.db, runId, patch);
  }
  listRuns(datasetId?: number): RunSummary[] {
    return runs.listRuns(this.db, datasetId);
  }
  getRun(runId: number): RunDetail | null {
    return runs.getRun(this.db, runId);
  }
  deleteRun(runId: number): boolean {
    return runs.deleteRun(this.db, runId);
  }
  appendEpoch(runId: number, rec: EpochRecord): void {
    runs.appendEpoch(this.db, runId, rec);
  }
  clearEpochsAfter(runId: number, epoch: number): void {
    runs.clearEpochsAfter(this.db, runId, epoch);
  }
  saveMetrics(runId: number, split: runs.SplitKind, m: Metrics): void {
    runs.saveMetrics(this.db, runId, split, m);
  }
  saveUserRanks(runId: number, split: runs.SplitKind, rows: { userId: number; itemId: number; rank: number }[]): void {
    runs.saveUserRanks(this.db, runId, split, rows);
  }
  getUserRank(runId: number, split: runs.SplitKind, userId: number): number | null {
    return runs.getUserRank(this.db, runId, split, userId);
  }
  saveRecommendations(runId: number, rows: { userId: number; rank: number; itemId: number; score: number }[]): void {
    runs.saveRecommendations(this.db, runId, rows);
  }
  getRecommendations(runId: number, userId: number, k: number): { rank: number; itemId: number; score: number }[] {
    return runs.getRecommendations(this.db, runId, userId, k);
  }
  /** Every user's stored top-k of a run as the CSV export writes them. */
  listRecommendationRows(runId: number, k: number): RecommendationRow[] {
    return runs.listRecommendationRows(this.db, runId, k);
  }
  addArtifact(runId: number, kind: string, path: string, sha256: string): void {
    runs.addArtifact(this.db, runId, kind, path, sha256);
  }
  /** A run's artifacts, oldest first (a resumed run may list a kind twice: the last one is current). */
  getArtifacts(runId: number): runs.ArtifactRow[] {
    return runs.getArtifacts(this.db, runId);
  }

  saveLlmCase(c: LlmCase): void {
    saveLlmCase(this.db, c);
  }
  getLlmCase(runId: number, userId: number): LlmCase | null {
    return getLlmCase(this.db, runId, userId);
  }

  // ---- adapters (adapters.ts) ----

  /** Registers a finished run's adapter (or refreshes its files); false when the run leaves none. */
  registerAdapter(runId: number, opts?: Parameters<typeof adapters.registerAdapter>[2]): boolean {
    return adapters.registerAdapter(this.db, runId, opts);
  }
  listAdapters(filter?: { backboneId?: number; datasetId?: number }): AdapterSummary[] {
    return adapters.listAdapters(this.db, filter);
  }
  getAdapter(runId: number): AdapterSummary | null {
    return adapters.getAdapter(this.db, runId);
  }
  renameAdapter(runId: number, name: string): boolean {
    return adapters.renameAdapter(this.db, runId, name);
  }

  // ---- backbones ----

  /** A new backbone; one still to pretrain is owned by this process until its job claims it. */
  createBackbone(b: backbones.NewBackbone): number {
    return this.db.transaction(() => {
      const id = backbones.createBackbone(this.db, b);
      if (b.source === 'pretrained') ownership.claim(this.db, 'backbones', id);
      return id;
    })();
  }
  updateBackbone(backboneId: number, patch: Partial<backbones.BackbonePatch>): void {
    backbones.updateBackbone(this.db, backboneId, patch);
  }
  appendPretrainPoints(backboneId: number, points: readonly PretrainPoint[]): void {
    backbones.appendPretrainPoints(this.db, backboneId, points);
  }
  truncatePretrainHistory(backboneId: number, afterStep: number): void {
    backbones.truncatePretrainHistory(this.db, backboneId, afterStep);
  }
  getBackbone(backboneId: number): BackboneDetail | null {
    return backbones.getBackbone(this.db, backboneId);
  }
  findBackboneByName(name: string): BackboneSummary | null {
    return backbones.findBackboneByName(this.db, name);
  }
  listBackbones(): BackboneSummary[] {
    return backbones.listBackbones(this.db);
  }
  deleteBackbone(backboneId: number): boolean {
    return backbones.deleteBackbone(this.db, backboneId);
  }
}
