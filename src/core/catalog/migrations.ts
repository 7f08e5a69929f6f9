// Versioned schema. PRAGMA user_version holds the number of migrations applied; each migration runs in
// its own transaction together with the version bump, so a crash never leaves a half-migrated file.
// Append new migrations at the end; never edit one that has shipped.
import type { Database } from 'better-sqlite3';
import { backfillAdapters } from './adapters';

export type Migration = (db: Database) => void;

export const MIGRATIONS: readonly Migration[] = [
  function initialSchema(db) {
    db.exec(`
      CREATE TABLE datasets (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        format TEXT NOT NULL,
        source_path TEXT NOT NULL,
        imported_at TEXT NOT NULL,
        warnings TEXT NOT NULL DEFAULT '[]',
        stats TEXT NOT NULL
      );
      CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
        external_id TEXT NOT NULL,
        interactions INTEGER NOT NULL DEFAULT 0,      -- all interactions in the source
        kept_interactions INTEGER NOT NULL DEFAULT 0, -- length of the 5-core sequence (0 = filtered out)
        UNIQUE (dataset_id, external_id)
      );
      CREATE TABLE items (
        id INTEGER PRIMARY KEY,
        dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
        external_id TEXT NOT NULL,
        title TEXT NOT NULL,
        text TEXT,
        genres TEXT NOT NULL DEFAULT '[]',
        image BLOB,
        image_mime TEXT,
        interactions INTEGER NOT NULL DEFAULT 0,
        UNIQUE (dataset_id, external_id)
      );
      CREATE INDEX items_by_popularity ON items (dataset_id, interactions DESC, title);
      CREATE TABLE interactions (
        id INTEGER PRIMARY KEY,
        dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
        timestamp REAL,            -- unix seconds; NULL when the source has none (MicroLens pairs)
        rating REAL,
        ordinal INTEGER NOT NULL   -- order in the source file(s): breaks timestamp ties
      );
      CREATE INDEX interactions_by_user ON interactions (user_id, timestamp, ordinal);
      CREATE INDEX interactions_by_item ON interactions (item_id);
      CREATE INDEX interactions_by_dataset ON interactions (dataset_id);
      -- The 5-core leave-one-out split, computed once at import: one row per kept interaction.
      CREATE TABLE splits (
        interaction_id INTEGER PRIMARY KEY REFERENCES interactions(id) ON DELETE CASCADE,
        dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
        user_id INTEGER NOT NULL,
        position INTEGER NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('train', 'valid', 'test'))
      );
      CREATE UNIQUE INDEX splits_by_user ON splits (dataset_id, user_id, position);
      CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
        model TEXT NOT NULL,
        config TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
        backend TEXT,
        created_at TEXT NOT NULL,
        started_at TEXT,
        ended_at TEXT,
        checkpoint_path TEXT,
        error TEXT,
        best_epoch INTEGER
      );
      CREATE INDEX runs_by_dataset ON runs (dataset_id);
      CREATE TABLE run_epochs (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        epoch INTEGER NOT NULL,
        loss REAL NOT NULL,
        valid_ndcg10 REAL,
        seconds REAL NOT NULL,
        PRIMARY KEY (run_id, epoch)
      ) WITHOUT ROWID;
      CREATE TABLE run_metrics (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        split TEXT NOT NULL CHECK (split IN ('valid', 'test')),
        metric TEXT NOT NULL,
        k INTEGER NOT NULL,        -- 0 for metrics without a cut-off (MRR)
        value REAL NOT NULL,
        PRIMARY KEY (run_id, split, metric, k)
      ) WITHOUT ROWID;
      -- user/item ids below are not foreign keys: these rows die with their run, which dies with its
      -- dataset; skipping the extra keys keeps dataset deletion from scanning them per user.
      CREATE TABLE run_user_ranks (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        split TEXT NOT NULL CHECK (split IN ('valid', 'test')),
        user_id INTEGER NOT NULL,
        item_id INTEGER NOT NULL,
        rank INTEGER NOT NULL,
        PRIMARY KEY (run_id, split, user_id)
      ) WITHOUT ROWID;
      CREATE TABLE recommendations (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        user_id INTEGER NOT NULL,
        rank INTEGER NOT NULL,
        item_id INTEGER NOT NULL,
        score REAL NOT NULL,
        PRIMARY KEY (run_id, user_id, rank)
      ) WITHOUT ROWID;
      CREATE TABLE artifacts (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        path TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        created_at TEXT NOT NULL
      );
      CREATE INDEX artifacts_by_run ON artifacts (run_id);
      CREATE TABLE vision_features (
        item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
        encoder_id TEXT NOT NULL,
        dims TEXT NOT NULL,        -- JSON shape of the tensor
        tensor BLOB NOT NULL,      -- little-endian float32
        PRIMARY KEY (item_id, encoder_id)
      ) WITHOUT ROWID;
    `);
  },
  function backbones(db) {
    // A backbone outlives the dataset it was pretrained on (its folder is self-contained), hence SET NULL.
    // AUTOINCREMENT: ids are never reused, so nothing keyed by a deleted backbone's id (its folder name,
    // cached visual tokens) can be mistaken for a new backbone's.
    db.exec(`
      CREATE TABLE backbones (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        source TEXT NOT NULL CHECK (source IN ('pretrained', 'huggingface')),
        status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
        dataset_id INTEGER REFERENCES datasets(id) ON DELETE SET NULL,
        path TEXT NOT NULL,
        config TEXT NOT NULL DEFAULT '{}',
        architecture TEXT,
        parameters INTEGER,
        created_at TEXT NOT NULL,
        started_at TEXT,
        ended_at TEXT,
        error TEXT
      );
      CREATE INDEX backbones_by_dataset ON backbones (dataset_id);
      CREATE TABLE backbone_history (
        backbone_id INTEGER NOT NULL REFERENCES backbones(id) ON DELETE CASCADE,
        step INTEGER NOT NULL,
        stage INTEGER NOT NULL CHECK (stage IN (1, 2)),
        loss REAL NOT NULL,
        learning_rate REAL NOT NULL,
        seconds REAL NOT NULL,
        PRIMARY KEY (backbone_id, step)
      ) WITHOUT ROWID;
    `);
  },
  function pretrainLanguageStage(db) {
    // Pretraining gained stage 0 (the decoder on text only) and a held-out caption loss per stage. SQLite
    // cannot change a CHECK constraint in place: the history table is rebuilt with its rows.
    db.exec(`
      CREATE TABLE backbone_history_v3 (
        backbone_id INTEGER NOT NULL REFERENCES backbones(id) ON DELETE CASCADE,
        step INTEGER NOT NULL,
        stage INTEGER NOT NULL CHECK (stage IN (0, 1, 2)),
        loss REAL NOT NULL,
        learning_rate REAL NOT NULL,
        seconds REAL NOT NULL,
        PRIMARY KEY (backbone_id, step)
      ) WITHOUT ROWID;
      INSERT INTO backbone_history_v3 (backbone_id, step, stage, loss, learning_rate, seconds)
        SELECT backbone_id, step, stage, loss, learning_rate, seconds FROM backbone_history;
      DROP TABLE backbone_history;
      ALTER TABLE backbone_history_v3 RENAME TO backbone_history;
      ALTER TABLE backbones ADD COLUMN held_out TEXT;  -- JSON HeldOutReport, null when none was measured
    `);
  },
  function llmCases(db) {
    // The case study's reading of an LLM run for one user (the 'llm-case' job; shared LlmCase as JSON):
    // computed in a worker, read back by the API. It dies with its run, as recommendations do.
    db.exec(`
      CREATE TABLE run_llm_cases (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        user_id INTEGER NOT NULL,
        result TEXT NOT NULL,
        PRIMARY KEY (run_id, user_id)
      ) WITHOUT ROWID;
    `);
  },
  function jobOwners(db) {
    // The process that runs (or queued) a run or a pretraining, and when it last said so (ms since the
    // epoch): a process that starts sweeps only what a dead owner left, never another live process's work.
    // NULL owner: written before owners existed, or no job holds it.
    db.exec(`
      ALTER TABLE runs ADD COLUMN owner_pid INTEGER;
      ALTER TABLE runs ADD COLUMN owner_host TEXT;
      ALTER TABLE runs ADD COLUMN heartbeat_at INTEGER;
      ALTER TABLE backbones ADD COLUMN owner_pid INTEGER;
      ALTER TABLE backbones ADD COLUMN owner_host TEXT;
      ALTER TABLE backbones ADD COLUMN heartbeat_at INTEGER;
    `);
  },
  function adapters(db) {
    // The adapter registry (issue 14): one row per finished run of a backbone model, keyed by its run (it
    // dies with it). Backbone, dataset, sequential run and metrics are the run's; the row adds what the run
    // lacks: a name, the adapter's files with their sizes, a content hash, and where an imported one came from.
    db.exec(`
      CREATE TABLE adapters (
        run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        source TEXT NOT NULL CHECK (source IN ('trained', 'imported')),
        files TEXT NOT NULL,         -- JSON AdapterFile[] (paths relative to the run folder)
        size_bytes INTEGER NOT NULL,
        content_hash TEXT NOT NULL,
        origin TEXT,                 -- JSON, imported adapters only
        created_at TEXT NOT NULL
      ) WITHOUT ROWID;
    `);
    // Runs that finished before the registry existed are registered now, from their artifact rows.
    backfillAdapters(db);
  },
  function backboneBackend(db) {
    // What a pretraining ran on (JSON BackendInfo; threads 2 where a replica computed a shard of every step),
    // as runs record it. NULL: registered checkpoints, and backbones pretrained before it was recorded.
    db.exec('ALTER TABLE backbones ADD COLUMN backend TEXT;');
  }
];

/** Applies the migrations the file has not seen yet. Refuses a file written by a newer app. */
export function migrate(db: Database, migrations: readonly Migration[] = MIGRATIONS): number {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > migrations.length) {
    throw new Error(
      `catalog schema version ${current} is newer than this app supports (${migrations.length}); update the app`
    );
  }
  for (let v = current; v < migrations.length; v++) {
    db.transaction(() => {
      migrations[v](db);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
  return migrations.length;
}
