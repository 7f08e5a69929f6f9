// Training and evaluation jobs: glue between the catalog (runs, metrics, recommendations) and the models.
// Model selection uses validation only; the test split is read once, after training has finished.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { ABLATION_STUDY_KEY, ABLATION_VARIANT_KEY } from '../../shared/ablation';
import { parseModelConfig } from '../../shared/api';
import { modelDescriptor, type ModelKind } from '../../shared/models';
import type { RunDetail } from '../../shared/types';
import type { Catalog } from '../catalog';
import type { SequenceData } from '../data/types';
import { evaluate, type Scorer } from '../eval';
import type { BackboneInputsConfig } from '../models/almostrec-context';
import { fitPopularity } from '../models/popularity';
import { trainingMemory } from '../models/gpu-memory-estimates';
import { modelSpec } from '../models/registry';
import { initBackend, onSyncReadableBackend } from '../tensor/backend';
import { checkGpuMemory } from '../train/gpu-memory';
import { exportItemEmbeddings, loadTrainedModel, trainModel, type ModelContext, type ModelSpec } from '../train';
import { scoreAsync, type TrainableModel } from '../train/model-spec';
import { CancelledError, type CancelSignal, type ProgressFn } from '../progress';
import { holdLease } from './job-lease';

export interface RunJobContext {
  dataDir: string;
  onProgress: ProgressFn;
  onLog: (message: string) => void;
  signal: CancelSignal;
}

/** How many recommendations per user are stored for the case-study view. */
export const STORED_TOP_K = 20;

/** Run-config key recording which image encoder a visual model's features came from (not a hyper-parameter). */
export const IMAGE_ENCODER_KEY = 'imageEncoder';
/** Run-config keys recording what an ALMOSTREC run was built on, beside its backboneId and seqRunId. */
export const BACKBONE_NAME_KEY = 'backboneName';
export const SEQ_RUN_MODEL_KEY = 'seqRunModel';
export const TOKENIZER_KEY = 'tokenizer';
const BOOKKEEPING_KEYS = new Set([IMAGE_ENCODER_KEY, BACKBONE_NAME_KEY, SEQ_RUN_MODEL_KEY, TOKENIZER_KEY, ABLATION_STUDY_KEY, ABLATION_VARIANT_KEY]);

/** The stored config's bookkeeping (e.g. its ablation study), so rewriting a run's config keeps it. */
function bookkeepingOf(config: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(config).filter(([k]) => BOOKKEEPING_KEYS.has(k)));
}

/** The model's hyper-parameters from a stored run config (bookkeeping keys such as the encoder id dropped). */
export function runModelConfig(kind: ModelKind, config: Record<string, unknown>): Record<string, number> {
  return parseModelConfig(kind, Object.fromEntries(Object.entries(config).filter(([k]) => !BOOKKEEPING_KEYS.has(k))));
}

/**
 * What a model of `spec` is built on: the data and, for visual models, the catalog's item image features;
 * for backbone models (ALMOSTREC) what the run `config` refers to. Free it with disposeModelContext.
 */
export async function modelContext(
  catalog: Catalog,
  spec: Pick<ModelSpec, 'needsItemFeatures' | 'needsBackbone' | 'kind'>,
  data: SequenceData,
  onProgress?: ProgressFn,
  signal?: CancelSignal,
  config?: Record<string, number>,
  importedItemTable: { path: string; model: string } | null = null
): Promise<ModelContext> {
  if (spec.needsBackbone) {
    if (!config) throw new Error(`model ${spec.kind} needs its run config to find its backbone and sequential run`);
    // Loaded on demand, like the image encoder: only backbone models need the backbone's modules.
    const { loadBackboneInputs } = await import('../models/almostrec-context');
    return {
      data,
      backbone: await loadBackboneInputs(catalog, data, config as unknown as BackboneInputsConfig, onProgress, signal, modelDescriptor(spec.kind).label, importedItemTable)
    };
  }
  if (!spec.needsItemFeatures) return { data };
  // Loaded on demand: the image encoder pulls in tfjs-layers, which only visual models need. It reads
  // synchronously: on webgpu it runs on a CPU backend (the features are plain arrays).
  const { loadItemFeatures } = await import('../vision');
  return { data, itemFeatures: await onSyncReadableBackend(() => loadItemFeatures(catalog, data, onProgress, signal)) };
}

/** Frees what a context holds beyond plain arrays (a backbone's weights). */
export function disposeModelContext(ctx: ModelContext): void {
  ctx.backbone?.dispose();
}

/** A run's stored bookkeeping must describe the context built now, or its weights would be read against other inputs. */
export function checkRunContext(run: RunDetail, mctx: ModelContext): void {
  const stored = run.config[IMAGE_ENCODER_KEY];
  if (mctx.itemFeatures && stored !== undefined && stored !== mctx.itemFeatures.encoderId) {
    throw new Error(`Run ${run.id} was trained on image features "${String(stored)}"; this build computes "${mctx.itemFeatures.encoderId}"`);
  }
  const b = mctx.backbone;
  const name = run.config[BACKBONE_NAME_KEY];
  if (b && name !== undefined && name !== b.backbone.name) throw new Error(`Run ${run.id} was trained on backbone "${String(name)}"; backbone ${b.backbone.id} is now "${b.backbone.name}"`);
  const tokenizer = run.config[TOKENIZER_KEY];
  if (b && tokenizer !== undefined && tokenizer !== b.tokenizer.id) throw new Error(`Run ${run.id} was trained with tokenizer "${String(tokenizer)}"; backbone ${b.backbone.id} now has "${b.tokenizer.id}"`);
}

/** An imported adapter's run (seqRunId 0) reads M from its own item_embeddings artifact (adapters/import-adapter.ts). */
export function importedItemTableOf(catalog: Catalog, run: RunDetail): { path: string; model: string } | null {
  if (run.config.seqRunId !== 0) return null;
  const own = catalog.getArtifacts(run.id).filter((a) => a.kind === 'item_embeddings').at(-1);
  return own ? { path: own.path, model: String(run.config[SEQ_RUN_MODEL_KEY] ?? 'imported') } : null;
}

/** A finished run's trained model from its stored best weights, with what it is built on (`context`); dispose() frees both. */
export async function loadRunModel(
  catalog: Catalog,
  run: RunDetail,
  data: SequenceData,
  ctx?: Pick<RunJobContext, 'onProgress' | 'signal'>
): Promise<{ model: TrainableModel; context: ModelContext; dispose(): void }> {
  if (!run.checkpointPath) throw new Error(`Run ${run.id} has no checkpoint (status ${run.status})`);
  const spec = modelSpec(run.model);
  // Only a backbone model needs its run config to build the context; the others read theirs from the
  // checkpoint header (an older run's stored config need not parse against today's catalogue).
  const config = spec.needsBackbone ? runModelConfig(run.model, run.config) : undefined;
  const mctx = await modelContext(catalog, spec, data, ctx?.onProgress, ctx?.signal, config, importedItemTableOf(catalog, run));
  try {
    checkRunContext(run, mctx);
    const model = await loadTrainedModel(spec, mctx, run.checkpointPath);
    return {
      model,
      context: mctx,
      dispose: () => {
        model.dispose();
        disposeModelContext(mctx);
      }
    };
  } catch (e) {
    disposeModelContext(mctx);
    throw e;
  }
}

/** A scorer for a finished run: popularity refitted, a trained model from its stored weights. */
export async function loadRunScorer(catalog: Catalog, run: RunDetail, data: SequenceData, ctx?: Pick<RunJobContext, 'onProgress' | 'signal'>): Promise<Scorer & { dispose?(): void }> {
  if (run.model === 'popularity') return fitPopularity(data);
  const loaded = await loadRunModel(catalog, run, data, ctx);
  return { scoreBatch: (h) => scoreAsync(loaded.model, h), dispose: () => loaded.dispose() };
}

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
  const backend = await initBackend('auto');
  // Owned by this process from now on, so that no other process takes the run for an interrupted one.
  const lease = holdLease(catalog, 'runs', runId, ctx.onProgress);
  ctx = { ...ctx, onProgress: lease.onProgress };
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
    if (run.model === 'popularity') {
      await evaluateScorer(catalog, runId, data, fitPopularity(data), ctx);
    } else {
      const spec = modelSpec(run.model);
      const config = runModelConfig(run.model, run.config);
      const mctx = await modelContext(catalog, spec, data, ctx.onProgress, ctx.signal, config);
      try {
        if (ctx.resume) checkRunContext(run, mctx);
        // On webgpu, a run that cannot fit is refused here rather than failing minutes in.
        checkGpuMemory(`${run.model} run ${runId}`, () => trainingMemory(spec.kind, config, mctx));
        // What the run was built on, recorded beside its config (checked again on resume).
        const builtOn: Record<string, string> = {};
        if (mctx.itemFeatures) {
          const f = mctx.itemFeatures;
          const withImage = f.has.reduce((a, b) => a + b, 0);
          ctx.onLog(`Run ${runId}: image features ${f.encoderId} (${f.dim}-d) for ${withImage} of ${data.numItems} items`);
          builtOn[IMAGE_ENCODER_KEY] = f.encoderId;
        }
        if (mctx.backbone) {
          const b = mctx.backbone;
          const withImage = b.visual ? b.visual.tokens.filter((t) => t !== null).length : 0;
          ctx.onLog(
            `Run ${runId}: backbone ${b.backbone.id} (${b.backbone.name}), ` +
              (b.itemTable ? `M from ${b.itemTable.model} run ${b.itemTable.runId} (${b.itemTable.dim}-d)` : 'no item IDs') +
              (b.visual ? `, visual tokens ${b.visual.cacheId} for ${withImage} of ${data.numItems} items` : ', no images')
          );
          Object.assign(builtOn, { [BACKBONE_NAME_KEY]: b.backbone.name, [TOKENIZER_KEY]: b.tokenizer.id }, b.itemTable ? { [SEQ_RUN_MODEL_KEY]: b.itemTable.model } : {});
        }
        if (Object.keys(builtOn).length) catalog.updateRun(runId, { config: { ...bookkeepingOf(run.config), ...config, ...builtOn } });
        const dir = runCheckpointDir(ctx.dataDir, runId);
        const result = await trainModel(spec, mctx, config, {
          checkpointDir: dir,
          resume: ctx.resume,
          onProgress: ctx.onProgress,
          onEpoch: (rec) => catalog.appendEpoch(runId, rec),
          signal: ctx.signal,
          onLog: (message) => ctx.onLog(`Run ${runId}: ${message}`)
        });
        const last = result.history.length ? result.history[result.history.length - 1].epoch : 0;
        for (const rec of result.history) catalog.appendEpoch(runId, rec);
        catalog.clearEpochsAfter(runId, last);
        // What actually ran: 2 threads only where a replica computed half of every step (0: TensorFlow's own pool).
        const threads = backend.threads === 0 ? 0 : result.threads;
        catalog.updateRun(runId, { checkpointPath: result.checkpointPath, bestEpoch: result.bestEpoch, backend: { ...backend, threads } });
        catalog.addArtifact(runId, 'checkpoint', result.checkpointPath, await sha256File(result.checkpointPath));
        if (spec.itemEmbeddings) {
          const path = exportItemEmbeddings(spec, result.checkpointPath, mctx);
          catalog.addArtifact(runId, 'item_embeddings', path, await sha256File(path));
        }
        for (const a of spec.exportArtifacts?.(result.checkpointPath, mctx) ?? []) catalog.addArtifact(runId, a.kind, a.path, await sha256File(a.path));
        const best = await loadTrainedModel(spec, mctx, result.checkpointPath);
        try {
          await evaluateAndStore(catalog, runId, data, { scoreBatch: (h) => scoreAsync(best, h) }, ctx);
          // A model's own protocol besides full ranking (LLaRA's HitRatio@1 over candidates), stored as an artifact.
          const own = await spec.ownEvaluation?.(best, data, runCheckpointDir(ctx.dataDir, runId), { onProgress: ctx.onProgress, signal: ctx.signal });
          if (own) {
            catalog.addArtifact(runId, own.kind, own.path, await sha256File(own.path));
            ctx.onLog(`Run ${runId}: ${own.summary}`);
          }
        } finally {
          best.dispose();
        }
      } finally {
        disposeModelContext(mctx);
      }
    }
    catalog.db.transaction(() => {
      catalog.updateRun(runId, { status: 'succeeded', endedAt: new Date().toISOString() });
      // A backbone model's LoRA and heads enter the adapter registry with the run's success, in one commit.
      catalog.registerAdapter(runId);
    })();
  } catch (err) {
    markEnded(catalog, runId, err);
    throw err;
  } finally {
    lease.release();
  }
}

/** Re-scores a finished run from its stored weights (e.g. after the catalog's rows were lost). */
export async function runEvaluationJob(catalog: Catalog, runId: number, ctx: RunJobContext): Promise<void> {
  const run = catalog.getRun(runId);
  if (!run) throw new Error(`Run ${runId} not found`);
  if (run.model !== 'popularity' && !run.checkpointPath) {
    throw new Error(`Run ${runId} has no checkpoint to evaluate (status ${run.status})`);
  }
  await initBackend('auto');
  const data = catalog.loadSequences(run.datasetId);
  await evaluateScorer(catalog, runId, data, await loadRunScorer(catalog, run, data, ctx), ctx);
}

/** evaluateAndStore, then frees the scorer whatever happened. */
async function evaluateScorer(catalog: Catalog, runId: number, data: SequenceData, scorer: Scorer & { dispose?(): void }, ctx: RunJobContext): Promise<void> {
  try {
    await evaluateAndStore(catalog, runId, data, scorer, ctx);
  } finally {
    scorer.dispose?.();
  }
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
      // A user with fewer unseen items than k gets padding (index 0) after the last real one: not an item.
      if (top.items[i * k + r] === 0) break;
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
