// Backbone jobs: pretraining the compact backbone on a dataset's items, registering a llava-hf folder from
// disk, and caching a backbone's pooled visual tokens per item (the encoder: backbone/image-encoder.ts).
// Catalog bookkeeping lives here so the worker (app) and the CLI behave the same.
import { existsSync, rmSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { PRETRAIN_STAGE_NAMES, pretrainParamsOf, type PretrainPoint, type VisualTokenCount } from '../../shared/backbones';
import { hasTokenizer } from '../backbone/backbone-tokenizer';
import { loadCaptions } from '../backbone/captions';
import { COMPACT_IMAGE_TOKEN, describeArchitecture, parameterCount } from '../backbone/compact';
import { computeBackboneFeatures } from '../backbone/feature-cache';
import { gridEncoderId, loadItemGrids } from '../backbone/grid-encoder';
import { openHfCheckpoint, validateHfCheckpoint } from '../backbone/hf-checkpoint';
import { backboneImageEncoder } from '../backbone/image-encoder';
import { pretrainCompact, type PretrainParams } from '../backbone/pretrain';
import { llamaTokenizer } from '../backbone/tokenizer';
import type { Catalog } from '../catalog';
import { pretrainMemory } from '../models/gpu-memory-estimates';
import { CancelledError } from '../progress';
import { initBackend, onSyncReadableBackend } from '../tensor/backend';
import { readSafetensors, SafetensorsError } from '../tensor/safetensors';
import { checkGpuMemory } from '../train/gpu-memory';
import { holdLease } from './job-lease';
import type { RunJobContext } from './run-jobs';

export type BackboneJobContext = RunJobContext;

function ended(catalog: Catalog, backboneId: number, err: unknown): void {
  const endedAt = new Date().toISOString();
  if (err instanceof CancelledError) catalog.updateBackbone(backboneId, { status: 'cancelled', endedAt });
  else catalog.updateBackbone(backboneId, { status: 'failed', endedAt, error: err instanceof Error ? err.message : String(err) });
}

/**
 * Whether a pretraining state file reads back whole (its data hash included); a torn or corrupt one is
 * logged and not used: the pretraining restarts from step 0 rather than load it.
 */
function readsBackWhole(path: string, onLog: (message: string) => void): boolean {
  try {
    readSafetensors(path);
    return true;
  } catch (e) {
    if (!(e instanceof SafetensorsError)) throw e;
    onLog(`skipping a state file that does not read back whole: ${e.message}; pretraining restarts from step 0`);
    return false;
  }
}

/** Where an unfinished pretraining keeps its resumable state: beside the folder it will write. */
export function pretrainStatePath(backbonePath: string): string {
  return `${backbonePath}.pretrain-state.safetensors`;
}

/** Pretrains backbone `backboneId` (a catalog row with source 'pretrained') into its folder; resumable. */
export async function runPretrainJob(catalog: Catalog, backboneId: number, ctx: BackboneJobContext & { resume: boolean }): Promise<void> {
  const b = catalog.getBackbone(backboneId);
  if (!b) throw new Error(`Backbone ${backboneId} not found`);
  if (b.source !== 'pretrained') throw new Error(`Backbone ${backboneId} (${b.name}) is a registered checkpoint; only backbones made in the app pretrain`);
  if (b.datasetId === null) throw new Error(`Backbone ${backboneId} (${b.name}) has lost its dataset (deleted); start a new one`);
  const statePath = pretrainStatePath(b.path);
  const resuming = ctx.resume && existsSync(statePath) && readsBackWhole(statePath, (m) => ctx.onLog(`Backbone ${backboneId}: ${m}`));
  // Owned by this process from now on, so that no other process takes it for interrupted pretraining.
  const lease = holdLease(catalog, 'backbones', backboneId, ctx.onProgress);
  ctx = { ...ctx, onProgress: lease.onProgress };
  catalog.updateBackbone(backboneId, {
    status: 'running',
    startedAt: resuming && b.startedAt ? b.startedAt : new Date().toISOString(),
    endedAt: null,
    error: null
  });
  try {
    const backend = await initBackend();
    // A backbone recorded before stage 0 existed keeps its recipe (no stage 0, no held-out split).
    const params = pretrainParamsOf(b.config) as unknown as PretrainParams;
    checkGpuMemory(`pretraining backbone ${backboneId}`, () => pretrainMemory(params));
    if (!resuming) {
      rmSync(statePath, { force: true });
      catalog.truncatePretrainHistory(backboneId, 0);
      catalog.updateBackbone(backboneId, { heldOut: null });
    }
    ctx.onProgress({ phase: 'captions', done: 0, total: 1 });
    const captions = loadCaptions(catalog, b.datasetId);
    const withImage = captions.filter((c) => c.hasImage).map((c) => c.itemId);
    ctx.onLog(`Backbone ${backboneId}: ${captions.length} item captions, ${withImage.length} posters; backend ${backend.name}`);
    // The frozen vision tower's grids, computed once per item and cached in the catalog; the encoder reads
    // synchronously, so on webgpu it runs on a CPU backend and only the decoder's pretraining on the GPU.
    const grids = await onSyncReadableBackend(() => loadItemGrids(catalog, withImage, params.gridSize, ctx.onProgress, ctx.signal));
    const tokenizer = llamaTokenizer({ imageTokenId: COMPACT_IMAGE_TOKEN });
    const pending: PretrainPoint[] = [];
    let last = performance.now();
    const flush = () => {
      if (pending.length) catalog.appendPretrainPoints(backboneId, pending.splice(0));
    };
    const result = await pretrainCompact(
      { params, captions, grids, gridEncoderId: gridEncoderId(params.gridSize), tokenizer, outDir: b.path, statePath },
      {
        resume: resuming,
        signal: ctx.signal,
        onLog: ctx.onLog,
        onResume: (step) => catalog.truncatePretrainHistory(backboneId, step),
        onHeldOut: (report) => catalog.updateBackbone(backboneId, { heldOut: report }),
        onStep: (p, total) => {
          pending.push(p);
          ctx.onProgress({
            phase: `stage ${p.stage}: ${PRETRAIN_STAGE_NAMES[p.stage]}`,
            done: p.step,
            total,
            metrics: { loss: p.loss, stage: p.stage, step: p.step, learningRate: p.learningRate }
          });
          // The history is the UI's loss chart after a reload: written at most every 2 s.
          if (performance.now() - last > 2000) {
            flush();
            last = performance.now();
          }
        },
        onCheckpoint: flush
      }
    );
    flush();
    // What actually ran: 2 threads only where a replica computed a shard of every step (0: TensorFlow's own pool).
    const ran = { ...backend, threads: backend.threads === 0 ? 0 : result.threads };
    catalog.updateBackbone(backboneId, {
      status: 'succeeded',
      endedAt: new Date().toISOString(),
      architecture: describeArchitecture(result.config),
      parameters: result.parameters,
      backend: ran
    });
    ctx.onLog(
      `Backbone ${backboneId}: ${result.steps} steps in ${result.seconds.toFixed(0)} s on ${ran.name}×${ran.threads}, final loss ${result.finalLoss.toFixed(3)}; saved to ${b.path}`
    );
  } catch (err) {
    ended(catalog, backboneId, err);
    throw err;
  } finally {
    lease.release();
  }
}

/** Validates a llava-hf checkpoint folder (config, tensor names and shapes) and registers it; returns its id. */
export function registerHfBackbone(catalog: Catalog, path: string, name: string): number {
  const dir = resolve(path);
  if (!existsSync(dir)) throw new Error(`${dir}: no such folder`);
  if (!statSync(dir).isDirectory()) throw new Error(`${dir}: not a folder (point at the checkpoint folder holding config.json)`);
  const ckpt = openHfCheckpoint(dir);
  validateHfCheckpoint(ckpt);
  const note = hasTokenizer(dir) ? '' : ' (no tokenizer.json: text prompts need one)';
  return catalog.createBackbone({
    name,
    source: 'huggingface',
    datasetId: null,
    path: dir,
    config: {},
    architecture: describeArchitecture(ckpt.config) + note,
    parameters: parameterCount(ckpt.config)
  });
}

/** Computes the backbone's pooled visual tokens (k per image) for a dataset's items into the catalog cache. */
export async function runBackboneFeaturesJob(
  catalog: Catalog,
  input: { backboneId: number; datasetId: number; k: VisualTokenCount },
  ctx: BackboneJobContext
): Promise<{ encoded: number; cached: number; withoutImage: number }> {
  // The image encoder reads with dataSync: auto keeps this job off webgpu.
  await initBackend('auto', { syncReads: true });
  const itemIds = Array.from(catalog.loadSequences(input.datasetId).itemIds.subarray(1));
  const encoder = await backboneImageEncoder(catalog, input.backboneId, ctx.onProgress, ctx.signal);
  try {
    const summary = await computeBackboneFeatures(catalog, itemIds, encoder, input.k, ctx.onProgress, ctx.signal);
    ctx.onLog(`Backbone ${input.backboneId}: visual tokens (k = ${input.k}) for dataset ${input.datasetId}: ${summary.encoded} encoded, ${summary.cached} already cached, ${summary.withoutImage} without an image`);
    return { encoded: summary.encoded, cached: summary.cached, withoutImage: summary.withoutImage };
  } finally {
    encoder.dispose();
  }
}
