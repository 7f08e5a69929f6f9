// Live "top-k for this history" over finished runs (issue 14 §4), for ANY history of catalog item ids, not
// only the stored test users. Loaded models stay in memory (LRU, bounded); runs built on the same backbone
// (ALMOSTREC, the LLM models) share ONE copy of its weights, so switching between their adapters (LoRA +
// W^B/W^T/M) reads only the adapter. No Electron import: the main process hosts this in a worker thread
// (src/main/workers/inference-worker.ts) and the benchmark calls it directly.
import type { SasrecConfig } from '../../shared/api';
import type { RunDetail } from '../../shared/types';
import { loadHfCheckpoint } from '../backbone/hf-checkpoint';
import type { Catalog } from '../catalog';
import type { SequenceData } from '../data/types';
import type { Scorer } from '../eval/evaluator';
import { checkRunContext, importedItemTableOf, runModelConfig } from '../jobs/run-jobs';
import type { BackboneInputsConfig } from '../models/almostrec-context';
import type { Gru4recConfig } from '../models/gru4rec';
import type { NextitnetConfig } from '../models/nextitnet';
import { fitPopularity } from '../models/popularity';
import { modelSpec } from '../models/registry';
import { sasrecShape } from '../models/sasrec';
import { initBackend, onSyncReadableBackend } from '../tensor/backend';
import { loadTrainedModel, type ModelContext } from '../train';
import { scoreAsync, type BackboneInputs, type TrainableModel } from '../train/model-spec';
import { ortGru4recScorer } from './gru4rec-onnx';
import { ortNextitnetScorer } from './nextitnet-onnx';
import { ortSasrecScorer } from './sasrec-onnx';
import { topKUnseen, type ScoredItem } from './top-k';

export interface InferenceEngineOptions {
  /** Trained models kept loaded at once (least recently used dropped first). */
  maxModels?: number;
  /** Backbones kept loaded beyond those a loaded model uses. */
  maxIdleBackbones?: number;
  /**
   * Where SASRec, GRU4Rec and NextItNet score: 'onnx' (default; their scoring graphs exported to ONNX and
   * run by onnxruntime-node, several times faster for one user than tfjs-wasm, see the README) or 'tfjs'.
   * tfjs wherever onnxruntime does not load.
   */
  sequentialRuntime?: 'onnx' | 'tfjs';
}

/** What computes a loaded model's scores ('js': popularity's counts). */
export type ScoringRuntime = 'onnxruntime' | 'tfjs' | 'js';

/** How the answering model was found: in memory, loaded with its backbone, or loaded onto a backbone already in memory. */
export type ModelLoad = 'cached' | 'loaded' | 'adapter-switch';

export interface TopKAnswer {
  runId: number;
  /** Best first; catalog item ids; history items excluded. */
  items: ScoredItem[];
  load: ModelLoad;
  runtime: ScoringRuntime;
  /** Time spent loading the model (0 when cached). */
  loadMs: number;
  scoreMs: number;
}

interface LoadedModel {
  runId: number;
  /** What the cache entry was built from: a retrained or re-evaluated run reloads. */
  stamp: string;
  datasetId: number;
  scorer: Scorer & { dispose?(): void };
  runtime: ScoringRuntime;
  backboneId: number | null;
}

interface LoadedBackbone {
  id: number;
  path: string;
  shared: Pick<BackboneInputs['backbone'], 'config' | 'weights'>;
}

/** A history item the run cannot read: the caller's input to fix, not a failure of the engine. */
export class UnknownItemError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnknownItemError';
  }
}

/** SASRec's, GRU4Rec's or NextItNet's scorer on onnxruntime from the loaded weights; null (tfjs then) for other models or where onnxruntime does not load. */
async function onnxScorer(run: RunDetail, data: SequenceData, trained: TrainableModel): Promise<(Scorer & { dispose(): void }) | null> {
  if (run.model !== 'sasrec' && run.model !== 'gru4rec' && run.model !== 'nextitnet') return null;
  const values = new Map<string, Float32Array>();
  // Read asynchronously: the weights may live on webgpu, which cannot dataSync in Node.
  for (const [name, v] of trained.params) values.set(name, (await v.data()) as Float32Array);
  const config = runModelConfig(run.model, run.config);
  if (run.model === 'sasrec') return ortSasrecScorer(sasrecShape(config as unknown as SasrecConfig, data.numItems), values);
  if (run.model === 'gru4rec') return ortGru4recScorer({ ...(config as unknown as Gru4recConfig), numItems: data.numItems }, values);
  return ortNextitnetScorer({ ...(config as unknown as NextitnetConfig), numItems: data.numItems }, values);
}

const stampOf = (run: RunDetail): string => `${run.checkpointPath ?? ''}|${run.endedAt ?? ''}`;

export class InferenceEngine {
  private readonly models = new Map<number, LoadedModel>();
  private readonly backbones = new Map<number, LoadedBackbone>();
  private readonly datasets = new Map<number, { data: SequenceData; indexOf: Map<number, number> }>();
  private readonly maxModels: number;
  private readonly maxIdleBackbones: number;
  private readonly sequentialRuntime: 'onnx' | 'tfjs';
  /** One request at a time: two loads of the same run must not race, and tfjs work is serial anyway. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly catalog: Catalog,
    opts: InferenceEngineOptions = {}
  ) {
    this.maxModels = Math.max(1, opts.maxModels ?? 4);
    this.maxIdleBackbones = Math.max(0, opts.maxIdleBackbones ?? 0);
    this.sequentialRuntime = opts.sequentialRuntime ?? 'onnx';
  }

  /** The k best items for `history` (catalog item ids, oldest first) from finished run `runId`. */
  topK(runId: number, history: readonly number[], k: number): Promise<TopKAnswer> {
    const next = this.queue.then(() => this.answer(runId, history, k));
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Drops a run's loaded model (the run was deleted or retrained). */
  forget(runId: number): void {
    const m = this.models.get(runId);
    if (m) this.unload(m);
  }

  /** Runs whose models are in memory, least recently used first. */
  loadedRuns(): number[] {
    return [...this.models.keys()];
  }

  loadedBackbones(): number[] {
    return [...this.backbones.keys()];
  }

  dispose(): void {
    for (const m of [...this.models.values()]) this.unload(m);
    for (const b of [...this.backbones.values()]) this.freeBackbone(b);
    this.datasets.clear();
  }

  private async answer(runId: number, history: readonly number[], k: number): Promise<TopKAnswer> {
    const run = this.catalog.getRun(runId);
    if (!run) throw new Error(`Run ${runId} not found`);
    if (run.status !== 'succeeded') throw new Error(`Run ${runId} is ${run.status}; only finished runs recommend`);
    const ds = this.dataset(run.datasetId);
    const indices = Int32Array.from(history, (itemId) => {
      const index = ds.indexOf.get(itemId);
      if (index === undefined) throw new UnknownItemError(`Item ${itemId} is not among run ${runId}'s items (dataset ${run.datasetId} after its 5-core filter)`);
      return index;
    });
    const t0 = performance.now();
    const { model, load } = await this.model(run, ds.data);
    const t1 = performance.now();
    const scores = await model.scorer.scoreBatch([indices]);
    const top = topKUnseen(scores.subarray(0, ds.data.numItems + 1), indices, k, ds.data.itemIds);
    const t2 = performance.now();
    return { runId, items: top, load, runtime: model.runtime, loadMs: load === 'cached' ? 0 : t1 - t0, scoreMs: t2 - t1 };
  }

  private dataset(datasetId: number): { data: SequenceData; indexOf: Map<number, number> } {
    let ds = this.datasets.get(datasetId);
    if (!ds) {
      const data = this.catalog.loadSequences(datasetId);
      const indexOf = new Map<number, number>();
      for (let i = 1; i < data.itemIds.length; i++) indexOf.set(data.itemIds[i], i);
      ds = { data, indexOf };
      this.datasets.set(datasetId, ds);
    }
    return ds;
  }

  private async model(run: RunDetail, data: SequenceData): Promise<{ model: LoadedModel; load: ModelLoad }> {
    const cached = this.models.get(run.id);
    if (cached && cached.stamp === stampOf(run)) {
      // Most recently used last.
      this.models.delete(run.id);
      this.models.set(run.id, cached);
      return { model: cached, load: 'cached' };
    }
    if (cached) this.unload(cached);
    await initBackend('auto');
    let load: ModelLoad = 'loaded';
    let model: LoadedModel;
    if (run.model === 'popularity') {
      model = { runId: run.id, stamp: stampOf(run), datasetId: run.datasetId, scorer: fitPopularity(data), runtime: 'js', backboneId: null };
    } else {
      if (!run.checkpointPath) throw new Error(`Run ${run.id} has no checkpoint`);
      const spec = modelSpec(run.model);
      let ctx: ModelContext = { data };
      let backboneId: number | null = null;
      if (spec.needsBackbone) {
        const config = runModelConfig(run.model, run.config) as unknown as BackboneInputsConfig;
        backboneId = config.backboneId;
        const wasLoaded = this.backbones.has(backboneId);
        const backbone = this.backbone(backboneId);
        if (wasLoaded) load = 'adapter-switch';
        const { loadBackboneInputs } = await import('../models/almostrec-context');
        try {
          ctx = { data, backbone: await loadBackboneInputs(this.catalog, data, config, undefined, undefined, run.model, importedItemTableOf(this.catalog, run), backbone.shared) };
        } catch (err) {
          this.freeIdleBackbones();
          throw err;
        }
      } else if (spec.needsItemFeatures) {
        const { loadItemFeatures } = await import('../vision');
        // The image encoder reads synchronously: on webgpu it runs on a CPU backend.
        ctx = { data, itemFeatures: await onSyncReadableBackend(() => loadItemFeatures(this.catalog, data)) };
      }
      let trained: TrainableModel;
      try {
        checkRunContext(run, ctx);
        trained = await loadTrainedModel(spec, ctx, run.checkpointPath);
      } catch (err) {
        // A backbone loaded for this run alone is not kept for it.
        this.freeIdleBackbones();
        throw err;
      }
      const onnx = this.sequentialRuntime === 'onnx' ? await onnxScorer(run, data, trained) : null;
      if (onnx) trained.dispose();
      // The context's dispose frees nothing of a shared backbone (loadBackboneInputs' `shared`).
      model = {
        runId: run.id,
        stamp: stampOf(run),
        datasetId: run.datasetId,
        scorer: onnx ?? { scoreBatch: (h) => scoreAsync(trained, h), dispose: () => (trained.dispose(), ctx.backbone?.dispose()) },
        runtime: onnx ? 'onnxruntime' : 'tfjs',
        backboneId
      };
    }
    this.models.set(run.id, model);
    while (this.models.size > this.maxModels) this.unload(this.models.values().next().value!);
    return { model, load };
  }

  /** The backbone's weights, loaded once for every run built on it. */
  private backbone(backboneId: number): LoadedBackbone {
    const have = this.backbones.get(backboneId);
    if (have) return have;
    const row = this.catalog.getBackbone(backboneId);
    if (!row) throw new Error(`Backbone ${backboneId} not found`);
    const loaded = loadHfCheckpoint(row.path);
    const b: LoadedBackbone = { id: backboneId, path: row.path, shared: { config: loaded.config, weights: loaded.weights } };
    this.backbones.set(backboneId, b);
    return b;
  }

  private unload(m: LoadedModel): void {
    this.models.delete(m.runId);
    m.scorer.dispose?.();
    this.freeIdleBackbones();
  }

  /** Backbones no loaded model uses are kept up to maxIdleBackbones (the oldest freed first). */
  private freeIdleBackbones(): void {
    const inUse = new Set([...this.models.values()].map((x) => x.backboneId));
    const idle = [...this.backbones.values()].filter((b) => !inUse.has(b.id));
    for (const b of idle.slice(0, Math.max(0, idle.length - this.maxIdleBackbones))) this.freeBackbone(b);
  }

  private freeBackbone(b: LoadedBackbone): void {
    this.backbones.delete(b.id);
    for (const t of b.shared.weights.values()) t.dispose();
    b.shared.weights.clear();
  }
}
