// The 'llm-case' job's results (shared LlmCase), one per run and user: the job writes, the API reads.
import type { Database } from 'better-sqlite3';
import type { LlmCase } from '../../shared/types';

/** Stores (or replaces) the case of c.runId and c.userId. */
export function saveLlmCase(db: Database, c: LlmCase): void {
  db.prepare(
    `INSERT INTO run_llm_cases (run_id, user_id, result) VALUES (?, ?, ?)
     ON CONFLICT (run_id, user_id) DO UPDATE SET result = excluded.result`
  ).run(c.runId, c.userId, JSON.stringify(c));
}

export function getLlmCase(db: Database, runId: number, userId: number): LlmCase | null {
  const row = db.prepare('SELECT result FROM run_llm_cases WHERE run_id = ? AND user_id = ?').get(runId, userId) as { result: string } | undefined;
  return row ? (JSON.parse(row.result) as LlmCase) : null;
}
