// The ablation job: trains a study's runs one after another in one worker, so a study never puts six
// CPU-heavy trainings on the machine at once. A variant that fails is recorded on its run and the next one
// still trains (the others are worth having; the job reports the failures at the end). A cancel stops the
// variant in training and marks every later one cancelled: none of them starts.
import { ablationVariantInfo, ablationVariantOf } from '../../shared/ablation';
import type { Catalog } from '../catalog';
import { runTrainingJob, type RunJobContext } from './run-jobs';
import { CancelledError } from '../progress';

/** Trains one run (runTrainingJob; tests pass a stand-in). */
export type TrainRun = (catalog: Catalog, runId: number, ctx: RunJobContext & { resume: boolean }) => Promise<void>;

export interface AblationJobRequest {
  studyId: number;
  /** Training order. */
  runIds: number[];
}

/** Marks the runs that have not started (or were left unfinished) cancelled, so none looks pending. */
function cancelRest(catalog: Catalog, runIds: readonly number[]): void {
  const endedAt = new Date().toISOString();
  for (const id of runIds) {
    const run = catalog.getRun(id);
    if (run && (run.status === 'queued' || run.status === 'running')) catalog.updateRun(id, { status: 'cancelled', endedAt });
  }
}

export async function runAblationJob(
  catalog: Catalog,
  { studyId, runIds }: AblationJobRequest,
  ctx: RunJobContext,
  trainRun: TrainRun = runTrainingJob
): Promise<{ succeeded: number[] }> {
  const n = runIds.length;
  const succeeded: number[] = [];
  const failures: string[] = [];
  for (const [i, runId] of runIds.entries()) {
    const run = catalog.getRun(runId);
    const variant = run ? ablationVariantOf(run.config) : null;
    const name = `${variant ? ablationVariantInfo(variant)!.label : 'variant'} (run ${runId})`;
    if (!run) {
      failures.push(`${name}: deleted`);
      continue;
    }
    if (run.status === 'succeeded') {
      succeeded.push(runId); // a resumed study keeps what it has
      continue;
    }
    if (ctx.signal.aborted) {
      cancelRest(catalog, runIds.slice(i));
      throw new CancelledError();
    }
    const prefix = `${i + 1}/${n} ${name}`;
    // Variant boundaries carry metrics (always sent, never throttled): the UI reloads the study on them.
    ctx.onProgress({ phase: prefix, done: i, total: n, metrics: { variant: i + 1, variants: n } });
    ctx.onLog(`Ablation study ${studyId}: training ${prefix}`);
    try {
      await trainRun(catalog, runId, {
        ...ctx,
        // A variant cancelled or failed before continues from its last checkpoint (none: from scratch).
        resume: run.startedAt !== null,
        onProgress: (p) => ctx.onProgress({ ...p, phase: `${prefix} · ${p.phase}`, metrics: p.metrics && { ...p.metrics, variant: i + 1, variants: n } })
      });
      succeeded.push(runId);
    } catch (err) {
      if (err instanceof CancelledError) {
        cancelRest(catalog, runIds.slice(i));
        throw err;
      }
      const message = err instanceof Error ? err.message : String(err);
      failures.push(`${name}: ${message}`);
      ctx.onLog(`Ablation study ${studyId}: ${name} failed (${message}); going on with the next variant`);
    }
  }
  ctx.onProgress({ phase: 'done', done: n, total: n, metrics: { variant: n, variants: n } });
  if (failures.length > 0) throw new Error(`${failures.length} of ${n} ablation variants failed — ${failures.join('; ')}`);
  return { succeeded };
}
