// Backbone jobs: pretraining the compact backbone on a dataset's items, registering a llava-hf folder from
// disk, and caching a backbone's pooled visual tokens per item. Catalog bookkeeping lives here so the
// worker (app) and the CLI behave the same.
import { existsSync, rmSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { pretrainDefaults, type PretrainPoint, type VisualTokenCount } from '../../shared/backbones';
import type { Catalog } from '../catalog';
import { CancelledError, type CancelSignal, type ProgressFn } from '../jobs/types';
import type { RunJobContext } from '../jobs/run-jobs';
import { initBackend } from '../tensor/backend';
import { readItemImages } from '../vision/feature-store';
import { decodeRgb, type RgbImage } from '../vision/image-decode';
import { gridEncoderId, loadItemGrids } from '../vision/grid-encoder';
import { loadCaptions } from './captions';
import { ClipVisionTower, clipLinearPaths } from './clip-vision';
import { clipPixelValues } from './clip-image';
import { describeArchitecture, parameterCount } from './compact';
import type { LlavaConfig } from './config';
import { computeBackboneFeatures, type ImageTokenEncoder } from './feature-cache';
import { loadHfCheckpoint, openHfCheckpoint, validateHfCheckpoint } from './hf-checkpoint';
import { Linears } from './lora';
import { pretrainCompact, type PretrainParams } from './pretrain';
import { projectFeatures, PROJECTOR_LINEARS } from './projector';
import { llamaTokenizer } from './tokenizer';
import { visionLayersUsed } from './weight-names';
import { hasTokenizer } from './backbone-tokenizer';
import { COMPACT_IMAGE_TOKEN } from './compact';

export type BackboneJobContext = RunJobContext;

function ended(catalog: Catalog, backboneId: number, err: unknown): void {
  const endedAt = new Date().toISOString();
  if (err instanceof CancelledError) catalog.updateBackbone(backboneId, { status: 'cancelled', endedAt });
  else catalog.updateBackbone(backboneId, { status: 'failed', endedAt, error: err instanceof Error ? err.message : String(err) });
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
  const resuming = ctx.resume && existsSync(statePath);
  catalog.updateBackbone(backboneId, {
    status: 'running',
    startedAt: resuming && b.startedAt ? b.startedAt : new Date().toISOString(),
    endedAt: null,
    error: null
  });
  try {
    const backend = await initBackend();
    const params = { ...pretrainDefaults(), ...b.config } as unknown as PretrainParams;
    if (!resuming) {
      rmSync(statePath, { force: true });
      catalog.truncatePretrainHistory(backboneId, 0);
    }
    ctx.onProgress({ phase: 'captions', done: 0, total: 1 });
    const captions = loadCaptions(catalog, b.datasetId);
    const withImage = captions.filter((c) => c.hasImage).map((c) => c.itemId);
    ctx.onLog(`Backbone ${backboneId}: ${captions.length} item captions, ${withImage.length} posters; backend ${backend.name}`);
    // The frozen vision tower's grids, computed once per item and cached in the catalog.
    const grids = await loadItemGrids(catalog, withImage, params.gridSize, ctx.onProgress, ctx.signal);
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
        onStep: (p, total) => {
          pending.push(p);
          ctx.onProgress({
            phase: p.stage === 1 ? 'stage 1: projector' : 'stage 2: decoder',
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
    catalog.updateBackbone(backboneId, {
      status: 'succeeded',
      endedAt: new Date().toISOString(),
      architecture: describeArchitecture(result.config),
      parameters: result.parameters
    });
    ctx.onLog(`Backbone ${backboneId}: ${result.steps} steps in ${result.seconds.toFixed(0)} s, final loss ${result.finalLoss.toFixed(3)}; saved to ${b.path}`);
  } catch (err) {
    ended(catalog, backboneId, err);
    throw err;
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

/**
 * The backbone's visual tokens per item: compact backbones run the cached MobileNetV2 grid through their
 * projector; llava-hf checkpoints run CLIP on the preprocessed poster. Only the vision tower and the
 * projector are loaded (never the decoder).
 */
export async function backboneImageEncoder(
  catalog: Catalog,
  backboneId: number,
  onProgress?: ProgressFn,
  signal?: CancelSignal
): Promise<ImageTokenEncoder & { dispose(): void }> {
  const b = catalog.getBackbone(backboneId);
  if (!b) throw new Error(`Backbone ${backboneId} not found`);
  if (b.status !== 'succeeded') throw new Error(`Backbone ${backboneId} (${b.name}) is ${b.status}; it must finish pretraining first`);
  const loaded = loadHfCheckpoint(b.path, { skip: (n) => n.startsWith('text.') || n === 'lm_head.weight' });
  const cfg: LlavaConfig = loaded.config;
  const weights = loaded.weights;
  const linears = new Linears();
  for (const p of PROJECTOR_LINEARS) linears.add(p, weights.get(`${p}.weight`)!, weights.get(`${p}.bias`));
  const dim = cfg.text.hiddenSize;
  const dispose = () => {
    linears.dispose();
    for (const t of weights.values()) t.dispose();
  };
  const project = (feats: tf.Tensor3D): Float32Array[] => {
    const out = tf.tidy(() => projectFeatures(linears, feats));
    const flat = out.dataSync() as Float32Array;
    const [n, tokens] = out.shape;
    out.dispose();
    return Array.from({ length: n }, (_, i) => flat.slice(i * tokens * dim, (i + 1) * tokens * dim));
  };
  if (cfg.vision.kind === 'mobilenet_v2') {
    const g = cfg.vision.gridSize;
    if (cfg.vision.encoderId !== gridEncoderId(g)) throw new Error(`Backbone ${b.name} was pretrained on image features "${cfg.vision.encoderId}"; this build computes "${gridEncoderId(g)}"`);
    return {
      id: String(backboneId),
      tokensPerImage: g * g,
      dim,
      gridSide: g,
      dispose,
      async encodeItems(itemIds) {
        const grids = await loadItemGrids(catalog, itemIds, g, onProgress, signal);
        const ids = [...grids.keys()];
        const out = new Map<number, Float32Array>();
        if (!ids.length) return out;
        const data = new Float32Array(ids.length * g * g * 1280);
        ids.forEach((id, i) => data.set(grids.get(id)!, i * g * g * 1280));
        const feats = tf.tensor3d(data, [ids.length, g * g, 1280]);
        project(feats).forEach((t, i) => out.set(ids[i], t));
        feats.dispose();
        return out;
      }
    };
  }
  const v = cfg.vision;
  for (const p of clipLinearPaths(visionLayersUsed(cfg))) linears.add(p, weights.get(`${p}.weight`)!, weights.get(`${p}.bias`));
  const tower = new ClipVisionTower(v, weights, linears, cfg.visionFeatureLayer, cfg.visionFeatureSelectStrategy === 'default');
  const side = v.imageSize / v.patchSize;
  return {
    id: String(backboneId),
    tokensPerImage: tower.tokens,
    dim,
    gridSide: side,
    dispose,
    encodeItems(itemIds) {
      const out = new Map<number, Float32Array>();
      const images: { itemId: number; img: RgbImage }[] = [];
      for (const { itemId, bytes } of readItemImages(catalog, itemIds)) {
        try {
          images.push({ itemId, img: decodeRgb(bytes) });
        } catch {
          // An undecodable poster counts as no image (no visual tokens), as everywhere else.
        }
      }
      if (!images.length) return Promise.resolve(out);
      const px = clipPixelValues(
        images.map((x) => x.img),
        v.imageSize
      );
      const feats = tower.features(px);
      px.dispose();
      project(feats as tf.Tensor3D).forEach((t, i) => out.set(images[i].itemId, t));
      feats.dispose();
      return Promise.resolve(out);
    }
  };
}

/** Computes the backbone's pooled visual tokens (k per image) for a dataset's items into the catalog cache. */
export async function runBackboneFeaturesJob(
  catalog: Catalog,
  input: { backboneId: number; datasetId: number; k: VisualTokenCount },
  ctx: BackboneJobContext
): Promise<{ encoded: number; cached: number; withoutImage: number }> {
  await initBackend();
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
