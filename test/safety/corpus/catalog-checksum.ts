// A fingerprint of every table of a catalog file: the proof that a failed import wrote nothing.
import { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';

/** Table name → SHA-256 of all its rows in storage order (rowid, or every column for WITHOUT ROWID). */
export function tableChecksums(db: Database.Database): Record<string, string> {
  const tables = db
    .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name")
    .all() as { name: string; sql: string | null }[];
  const out: Record<string, string> = {};
  for (const { name, sql } of tables) {
    const quoted = `"${name.replaceAll('"', '""')}"`;
    let order = 'rowid';
    if (/WITHOUT\s+ROWID/i.test(sql ?? '')) {
      const columns = (db.prepare(`PRAGMA table_info(${quoted})`).all() as unknown[]).length;
      order = Array.from({ length: columns }, (_, i) => i + 1).join(', ');
    }
    const hash = createHash('sha256');
    for (const row of db.prepare(`SELECT * FROM ${quoted} ORDER BY ${order}`).raw().iterate() as Iterable<unknown[]>) {
      for (const cell of row) {
        if (Buffer.isBuffer(cell)) hash.update(`\u0001blob ${cell.length}:`).update(cell);
        else hash.update(`\u0001${typeof cell}:${String(cell)}`);
      }
      hash.update('\n');
    }
    out[name] = hash.digest('hex');
  }
  return out;
}

export function integrityCheck(db: Database.Database): string {
  return (db.prepare('PRAGMA integrity_check').all() as { integrity_check: string }[]).map((r) => r.integrity_check).join('; ');
}
