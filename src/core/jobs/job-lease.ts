// The heartbeat of a run or pretraining this process runs (ownership in src/core/catalog/ownership.ts):
// renewed on a timer and, because a training step may hold the thread past a timer's turn, on progress.
import { HEARTBEAT_MS, type Catalog, type OwnedTable } from '../catalog';
import type { ProgressFn } from '../progress';

export interface JobLease {
  /** The job's progress callback, renewing the lease on the way (at most every HEARTBEAT_MS). */
  onProgress: ProgressFn;
  /** Stops renewing (the job has ended and recorded how). */
  release(): void;
}

/** Claims `id` in `table` for this process and keeps the claim alive until release(). */
export function holdLease(catalog: Catalog, table: OwnedTable, id: number, onProgress: ProgressFn): JobLease {
  catalog.claimOwnership(table, id);
  let last = Date.now();
  const beat = () => {
    last = Date.now();
    try {
      catalog.renewOwnership(table, id);
    } catch {
      // Busy or closed catalog: the next beat retries; a lease lasts many beats (LEASE_MS).
    }
  };
  const timer = setInterval(beat, HEARTBEAT_MS);
  timer.unref();
  return {
    onProgress: (p) => {
      if (Date.now() - last >= HEARTBEAT_MS) beat();
      onProgress(p);
    },
    release: () => clearInterval(timer)
  };
}
