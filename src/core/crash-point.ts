// TEST-ONLY crash points for the kill -9 proofs (test/safety/crash-*.test.ts): a process must be killed at a
// known instant (mid-epoch, half-way through a checkpoint write, inside an import's transaction), which
// timing alone cannot hit on a loaded machine. Inert in production: without ALMOSTREC_TEST_CRASH_POINT in the
// environment crashPoint() returns at once and does nothing else.
import { writeFileSync } from 'node:fs';

/** `name` or `name@N`: the point (and which of its hits, 1-based; default 1) where the process freezes. */
export const CRASH_POINT_ENV = 'ALMOSTREC_TEST_CRASH_POINT';
/** A file the frozen process writes (its pid) so the test knows it is there and may kill it. */
export const CRASH_POINT_FILE_ENV = 'ALMOSTREC_TEST_CRASH_FILE';
/**
 * 'exit' instead of freezing: the thread ends at once (process.exit; in a job worker thread that ends the
 * worker alone, as a crash of the worker would, while the process and its server go on).
 */
export const CRASH_MODE_ENV = 'ALMOSTREC_TEST_CRASH_MODE';
export const CRASH_EXIT_CODE = 70;

export type CrashPointName = 'train-step' | 'checkpoint-write' | 'import-write' | 'pretrain-step' | 'adapter-export' | 'adapter-import';

let hits = 0;

/**
 * Freezes the calling thread for good (synchronously, so nothing after this point runs: no write completes,
 * no transaction commits) when the environment names this point and hit; the test then SIGKILLs the process.
 * In 'exit' mode the thread ends there instead.
 */
export function crashPoint(name: CrashPointName): void {
  const spec = process.env[CRASH_POINT_ENV];
  if (!spec) return;
  const [wanted, nth] = spec.split('@');
  if (wanted !== name || ++hits !== Number(nth ?? 1)) return;
  const file = process.env[CRASH_POINT_FILE_ENV];
  if (file) writeFileSync(file, `${process.pid} ${name}\n`);
  if (process.env[CRASH_MODE_ENV] === 'exit') process.exit(CRASH_EXIT_CODE);
  // Atomics.wait blocks this thread (main or worker) without spinning, until the kill.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
}
