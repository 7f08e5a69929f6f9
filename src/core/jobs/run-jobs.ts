// Training and evaluation jobs: glue between the catalog (runs, metrics, recommendations) and the models.
// Model selection uses validation only; the test split is read once, after training has finished.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { sasrecConfigSchema } from '../../shared/api';
import type { Catalog } from '../catalog';
import type { SequenceData } from '../data/types';
import { evaluate, type Scorer } from '../eval';
import { fitPopularity } from '../models/popularity';
import { initBackend } from '../tensor/backend';
import { loadSasrecScorer, trainSasrec } from '../train';
import { CancelledError, type CancelSignal, type ProgressFn } from './types';

export interface RunJobContext {
  dataDir: string;
  onProgress: ProgressFn;
  onLog: (message: string) => void;
  signal: CancelSignal;
}

/** How many recommendations per user are stored for the case-study view. */
export const STORED_TOP_K = 20;

export function runCheckpointDir(dataDir: string, runId: number): string {
  return join(dataDir, 'runs', String(runId));
}

export async function runTrainingJob(
  catalog: Catalog,
  runId: number,
  ctx: RunJobContext & { resume: boolean }
): Promise<void> {
  const run = catalog.getRun(runId);
  if (!run) throw new Error(`Run ${runId} not found`);
  const backend = await initBackend();
  catalog.updateRun(runId, {
    status: 'running',
    startedAt: ctx.resume && run.startedAt ? run.startedAt : new Date().toISOString(),
    backend,
    error: null
  });
  try {
    ctx.onProgress({ phase: 'loading data', done: 0, total: 1 });
    const data = catalog.loadSequences(run.datasetId);
    ctx.onLog(`Run ${runId}: ${run.model} on ${data.users.length} users × ${data.numItems} items, backend ${backend.name}`);
    let scorer: Scorer;
    if (run.model === 'popularity') {
      scorer = fitPopularity(data);
    } else {
      const config = sasrecConfigSchema.parse(run.config);
      const result = await trainSasrec(data, config, {
        checkpointDir: runCheckpointDir(ctx.dataDir, runId),
        resume: ctx.resume,
        onProgress: ctx.onProgress,
        onEpoch: (rec) => catalog.appendEpoch(runId, rec),
        signal: ctx.signal
      });
      const last = result.history.length ? result.history[result.history.length - 1].epoch : 0;
      for (const rec of result.history) catalog.appendEpoch(runId, rec);
      catalog.clearEpochsAfter(runId, last);
      catalog.updateRun(runId, { checkpointPath: result.checkpointPath, bestEpoch: result.bestEpoch });
      catalog.addArtifact(runId, 'checkpoint', result.checkpointPath, await sha256File(result.checkpointPath));
      scorer = await loadSasrecScorer(result.checkpointPath, data);
    }
    await evaluateAndStore(catalog, runId, data, scorer, ctx);
    catalog.updateRun(runId, { status: 'succeeded', endedAt: new Date().toISOString() });
  } catch (err) {
    markEnded(catalog, runId, err);
    throw err;
  }
}

/** Re-scores a finished run from its stored weights (e.g. after the catalog's rows were lost). */
export async function runEvaluationJob(catalog: Catalog, runId: number, ctx: RunJobContext): Promise<void> {
  const run = catalog.getRun(runId);
  if (!run) throw new Error(`Run ${runId} not found`);
  if (run.model !== 'popularity' && !run.checkpointPath) {
    throw new Error(`Run ${runId} has no checkpoint to evaluate (status ${run.status})`);
  }
  await initBackend();
  const data = catalog.loadSequences(run.datasetId);
  const scorer = run.model === 'popularity' ? fitPopularity(data) : await loadSasrecScorer(run.checkpointPath!, data);
  await evaluateAndStore(catalog, runId, data, scorer, ctx);
}

async function evaluateAndStore(
  catalog: Catalog,
  runId: number,
  data: SequenceData,
  scorer: Scorer,
  ctx: RunJobContext
): Promise<void> {
  const progress = (phase: string): ProgressFn => (p) => ctx.onProgress({ ...p, phase });
  const valid = await evaluate(scorer, data, 'valid', { onProgress: progress('evaluating validation'), signal: ctx.signal });
  const test = await evaluate(scorer, data, 'test', {
    topK: STORED_TOP_K,
    onProgress: progress('evaluating test'),
    signal: ctx.signal
  });
  const n = data.users.length;
  const rankRows = (split: 'valid' | 'test', ranks: Int32Array) =>
    data.users.map((u, i) => ({
      userId: u.userId,
      itemId: data.itemIds[u.items[u.items.length - (split === 'test' ? 1 : 2)]],
      rank: ranks[i]
    }));
  catalog.saveMetrics(runId, 'valid', valid.metrics);
  catalog.saveMetrics(runId, 'test', test.metrics);
  catalog.saveUserRanks(runId, 'valid', rankRows('valid', valid.ranks));
  catalog.saveUserRanks(runId, 'test', rankRows('test', test.ranks));
  const top = test.topK!;
  const k = top.items.length / n;
  const recs: { userId: number; rank: number; itemId: number; score: number }[] = [];
  for (let i = 0; i < n; i++) {
    for (let r = 0; r < k; r++) {
      recs.push({ userId: data.users[i].userId, rank: r, itemId: data.itemIds[top.items[i * k + r]], score: top.scores[i * k + r] });
    }
  }
  catalog.saveRecommendations(runId, recs);
  ctx.onLog(`Run ${runId}: valid NDCG@10 ${valid.metrics.ndcg10.toFixed(4)}, test NDCG@10 ${test.metrics.ndcg10.toFixed(4)}`);
}

function markEnded(catalog: Catalog, runId: number, err: unknown): void {
  const endedAt = new Date().toISOString();
  if (err instanceof CancelledError) catalog.updateRun(runId, { status: 'cancelled', endedAt });
  else catalog.updateRun(runId, { status: 'failed', endedAt, error: err instanceof Error ? err.message : String(err) });
}

function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}
