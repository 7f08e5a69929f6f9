// The inference engine (src/core/inference) on real runs of the small importer fixture: the ONNX scoring
// graphs of SASRec, GRU4Rec and NextItNet give tfjs's scores (≤ 1e-4); SASRec answers any
// history exactly as the evaluator ranks (same scores, history masked), and two ALMOSTREC runs on one
// backbone share its loaded weights — the second is an adapter switch, not a backbone reload — while
// scoring as a freshly loaded copy of each run does. Then the API method inference.topK, served by the
// service through the built worker thread (out/main/inference-worker.js, built here if missing).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createPretrainedBackbone } from '../../src/core/backbone/backbone-store';
import { Catalog } from '../../src/core/catalog';
import type { SequenceData } from '../../src/core/data/types';
import { InferenceEngine } from '../../src/core/inference/inference-engine';
import { topKUnseen } from '../../src/core/inference/top-k';
import { importDataset } from '../../src/core/importers';
import { runPretrainJob } from '../../src/core/jobs/backbone-jobs';
import { loadRunModel, loadRunScorer, runModelConfig, runTrainingJob, type RunJobContext } from '../../src/core/jobs/run-jobs';
import { sasrecShape } from '../../src/core/models/sasrec';
import { ortGru4recScorer } from '../../src/core/inference/gru4rec-onnx';
import { ortSasrecScorer } from '../../src/core/inference/sasrec-onnx';
import { ortNextitnetScorer } from '../../src/core/inference/nextitnet-onnx';
import type { Gru4recConfig } from '../../src/core/models/gru4rec';
import type { NextitnetConfig } from '../../src/core/models/nextitnet';
import type { SasrecConfig } from '../../src/shared/api';
import { initBackend } from '../../src/core/tensor/backend';
import { WorkbenchService } from '../../src/main/services/workbench-service';

const workDir = mkdtempSync(join(tmpdir(), 'almostrec-inference-'));
const ctx: RunJobContext = { dataDir: workDir, onProgress: () => {}, onLog: () => {}, signal: { aborted: false } };
let catalog: Catalog;
let data: SequenceData;
let engine: InferenceEngine;

const SASREC = { epochs: 2, evalEvery: 1, maxLen: 10, batchSize: 8, hiddenSize: 16, seed: 3 };
const GRU4REC = { epochs: 2, evalEvery: 1, maxLen: 10, batchSize: 8, embeddingSize: 16, hiddenSize: 12, numLayers: 2, seed: 5 };
const NEXTITNET = { epochs: 2, evalEvery: 1, maxLen: 10, batchSize: 8, embeddingSize: 16, kernelSize: 3, numBlocks: 2, seed: 6 };
const BACKBONE = { hiddenSize: 32, numLayers: 1, numHeads: 2, numKvHeads: 1, intermediateSize: 64, gridSize: 2, maxTokens: 32, batchSize: 4, stage1Steps: 2, stage2Steps: 2, warmupSteps: 1 };
const ALMOSTREC = { epochs: 1, batchSize: 8, learningRate: 5e-3, warmupSteps: 1, samplesPerUser: 2, historyLength: 5, maxTitleTokens: 4, useImages: 0 };

async function train(model: 'sasrec' | 'gru4rec' | 'nextitnet' | 'almostrec' | 'e4srec', config: Record<string, number>): Promise<number> {
  const runId = catalog.createRun({ datasetId: data.datasetId, model, config, backend: null });
  await runTrainingJob(catalog, runId, { ...ctx, resume: false });
  expect(catalog.getRun(runId)!.status).toBe('succeeded');
  return runId;
}

/** Catalog item ids of a user's sequence (its indices mapped back). */
const idsOf = (indices: ArrayLike<number>): number[] => Array.from(indices, (i) => data.itemIds[i]);

beforeAll(async () => {
  await initBackend();
  catalog = Catalog.open(join(workDir, 'catalog.sqlite'));
  const { datasetId } = await importDataset(catalog, { format: 'movielens-latest', path: resolve(__dirname, '../fixtures/importers/ml-latest'), name: 'tiny', options: {} });
  data = catalog.loadSequences(datasetId);
  engine = new InferenceEngine(catalog, { maxModels: 3 });
});

afterAll(() => {
  engine?.dispose();
  catalog?.close();
  rmSync(workDir, { recursive: true, force: true });
});

test('SASRec on onnxruntime: every score within 1e-4 of tfjs, for histories shorter and longer than maxLen', async () => {
  const runId = await train('sasrec', SASREC);
  const run = catalog.getRun(runId)!;
  const { model, dispose } = await loadRunModel(catalog, run, data);
  try {
    const values = new Map([...model.params].map(([name, v]) => [name, v.dataSync() as Float32Array]));
    const onnx = ortSasrecScorer(sasrecShape(runModelConfig('sasrec', run.config) as unknown as SasrecConfig, data.numItems), values)!;
    expect(onnx).not.toBeNull();
    // Lengths 1…maxLen + 4 (the longest are cut to their last maxLen items by both).
    const histories = Array.from({ length: SASREC.maxLen + 4 }, (_, n) => Int32Array.from({ length: n + 1 }, (_, i) => (i % data.numItems) + 1));
    for (const batch of [histories, [histories[3]]]) {
      const expected = model.scoreBatch(batch) as Float32Array;
      const got = onnx.scoreBatch(batch) as Float32Array;
      expect(got.length).toBe(expected.length);
      let worst = 0;
      for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - expected[i]));
      expect(worst).toBeLessThanOrEqual(1e-4);
    }
  } finally {
    dispose();
  }
}, 120_000);

/** A run's tfjs scores against its ONNX scorer's, for histories of every length up to maxLen + 4; then the engine's runtime. */
async function checkOnnxParity(
  model: 'gru4rec' | 'nextitnet',
  config: Record<string, number> & { maxLen: number },
  onnxScorer: (config: Record<string, number>, values: Map<string, Float32Array>) => { scoreBatch(h: Int32Array[]): Float32Array | Promise<Float32Array> } | null
): Promise<void> {
  const runId = await train(model, config);
  const run = catalog.getRun(runId)!;
  const { model: trained, dispose } = await loadRunModel(catalog, run, data);
  try {
    const values = new Map([...trained.params].map(([name, v]) => [name, v.dataSync() as Float32Array]));
    const onnx = onnxScorer({ ...runModelConfig(model, run.config), numItems: data.numItems }, values)!;
    const histories = Array.from({ length: config.maxLen + 4 }, (_, n) => Int32Array.from({ length: n + 1 }, (_, i) => ((i * 3) % data.numItems) + 1));
    for (const batch of [histories, [histories[2]]]) {
      const expected = (await trained.scoreBatch(batch)) as Float32Array;
      const got = (await onnx.scoreBatch(batch)) as Float32Array;
      expect(got.length).toBe(expected.length);
      let worst = 0;
      for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - expected[i]));
      expect(worst).toBeLessThanOrEqual(1e-4);
    }
  } finally {
    dispose();
  }
  const answer = await engine.topK(runId, idsOf(data.users[0].items.slice(0, 3)), 3);
  expect(answer.runtime).toBe('onnxruntime');
}

test('GRU4Rec on onnxruntime (2 layers): every score within 1e-4 of tfjs, any length; the engine uses it', async () => {
  await checkOnnxParity('gru4rec', GRU4REC, (c, v) => ortGru4recScorer({ ...(c as unknown as Gru4recConfig), numItems: c.numItems }, v));
}, 120_000);

test('NextItNet on onnxruntime (dilated causal convolutions): every score within 1e-4 of tfjs, any length; the engine uses it', async () => {
  await checkOnnxParity('nextitnet', NEXTITNET, (c, v) => ortNextitnetScorer({ ...(c as unknown as NextitnetConfig), numItems: c.numItems }, v));
}, 120_000);

test('SASRec: any history is ranked as the evaluator ranks it, history excluded, unknown items refused', async () => {
  const runId = catalog.listRuns(data.datasetId).find((r) => r.model === 'sasrec')!.id;
  const scorer = await loadRunScorer(catalog, catalog.getRun(runId)!, data);
  try {
    for (const user of data.users) {
      // A what-if history: the user's sequence reordered, its last item dropped.
      const history = Array.from(user.items).reverse().slice(1);
      const expected = topKUnseen((await scorer.scoreBatch([Int32Array.from(history)])).slice(0, data.numItems + 1), history, 5, data.itemIds);
      const answer = await engine.topK(runId, idsOf(history), 5);
      expect(answer.items.map((r) => r.itemId)).toEqual(expected.map((r) => r.itemId));
      for (let i = 0; i < expected.length; i++) expect(Math.abs(answer.items[i].score - expected[i].score)).toBeLessThanOrEqual(1e-4);
      const seen = new Set(idsOf(history));
      expect(answer.items.some((r) => seen.has(r.itemId))).toBe(false);
      expect(answer.items.length).toBe(Math.min(5, data.numItems - seen.size));
    }
  } finally {
    scorer.dispose?.();
  }
  const first = await engine.topK(runId, idsOf(data.users[0].items), 3);
  expect(first.load).toBe('cached');
  expect(first.runtime).toBe('onnxruntime');
  await expect(engine.topK(runId, [987654], 3)).rejects.toThrow(`Item 987654 is not among run ${runId}'s items`);
  await expect(engine.topK(999, [data.itemIds[1]], 3)).rejects.toThrow('Run 999 not found');
}, 120_000);

test('ALMOSTREC: runs on one backbone share it (E4SRec too); switching adapters does not reload it and scores as a fresh load', async () => {
  const seqRunId = catalog.listRuns(data.datasetId).find((r) => r.model === 'sasrec')!.id;
  const backboneId = createPretrainedBackbone(catalog, workDir, { name: 'tiny-compact', datasetId: data.datasetId, config: BACKBONE });
  await runPretrainJob(catalog, backboneId, { ...ctx, resume: false });
  const a = await train('almostrec', { ...ALMOSTREC, backboneId, seqRunId, seed: 1 });
  const b = await train('almostrec', { ...ALMOSTREC, backboneId, seqRunId, seed: 2 });
  const history = idsOf(data.users[1].items.slice(0, 3));

  const first = await engine.topK(a, history, 4);
  expect(first.load).toBe('loaded');
  const second = await engine.topK(b, history, 4);
  expect(second.load).toBe('adapter-switch');
  expect(engine.loadedBackbones()).toEqual([backboneId]);
  expect((await engine.topK(a, history, 4)).load).toBe('cached');
  // Different adapters on one backbone answer differently (else the switch switched nothing).
  expect(second.items.map((r) => r.score)).not.toEqual(first.items.map((r) => r.score));

  for (const [runId, answer] of [[a, first], [b, second]] as const) {
    const scorer = await loadRunScorer(catalog, catalog.getRun(runId)!, data);
    try {
      const indices = data.users[1].items.slice(0, 3);
      const expected = topKUnseen((await scorer.scoreBatch([indices])).slice(0, data.numItems + 1), indices, 4, data.itemIds);
      expect(answer.items.map((r) => r.itemId)).toEqual(expected.map((r) => r.itemId));
      for (let i = 0; i < expected.length; i++) expect(Math.abs(answer.items[i].score - expected[i].score)).toBeLessThanOrEqual(1e-4);
    } finally {
      scorer.dispose?.();
    }
  }

  // Past maxModels (3: SASRec + a + b), the least recently used model goes; the backbone stays while a run uses it.
  const c = await train('almostrec', { ...ALMOSTREC, backboneId, seqRunId, seed: 3 });
  expect((await engine.topK(c, history, 4)).load).toBe('adapter-switch');
  expect(engine.loadedRuns()).toEqual([b, a, c]);
  engine.forget(a);
  engine.forget(b);
  engine.forget(c);
  expect(engine.loadedBackbones()).toEqual([]);

  // E4SRec (an LLM baseline) on the same backbone shares it with ALMOSTREC as well, and scores as a fresh load.
  const e = await train('e4srec', { epochs: 1, batchSize: 8, learningRate: 5e-3, warmupSteps: 1, historyLength: 5, backboneId, seqRunId, seed: 4 });
  expect((await engine.topK(a, history, 4)).load).toBe('loaded');
  const e4 = await engine.topK(e, history, 4);
  expect(e4.load).toBe('adapter-switch');
  expect(engine.loadedBackbones()).toEqual([backboneId]);
  const scorer = await loadRunScorer(catalog, catalog.getRun(e)!, data);
  try {
    const indices = data.users[1].items.slice(0, 3);
    const expected = topKUnseen((await scorer.scoreBatch([indices])).slice(0, data.numItems + 1), indices, 4, data.itemIds);
    expect(e4.items.map((r) => r.itemId)).toEqual(expected.map((r) => r.itemId));
  } finally {
    scorer.dispose?.();
  }
  // A run whose checkpoint cannot be read fails clearly and leaves no backbone loaded for it.
  engine.forget(a);
  engine.forget(e);
  const broken = await train('almostrec', { ...ALMOSTREC, backboneId, seqRunId, seed: 5 });
  catalog.updateRun(broken, { checkpointPath: join(workDir, 'no-such-checkpoint.safetensors') });
  await expect(engine.topK(broken, history, 4)).rejects.toThrow();
  expect(engine.loadedBackbones()).toEqual([]);
}, 300_000);

test('inference.topK through WorkbenchService and the worker thread: catalog items, clear errors, a dead worker replaced', async () => {
  const root = resolve(__dirname, '..', '..');
  const out = join(root, 'out', 'main');
  if (!existsSync(join(out, 'inference-worker.js'))) execFileSync('npx', ['electron-vite', 'build'], { cwd: root, stdio: 'ignore' });
  const service = new WorkbenchService({ dataDir: workDir, dbPath: join(workDir, 'catalog.sqlite'), workerPath: join(out, 'job-worker.js'), transport: 'http', version: '1', autoImport: false });
  try {
    expect(service.inference.threaded).toBe(true);
    const runId = catalog.listRuns(data.datasetId).find((r) => r.model === 'sasrec')!.id;
    const history = idsOf(data.users[2].items.slice(0, 2));
    const r = await service.handle('inference.topK', { runId, history, k: 3 });
    if (!r.ok) throw new Error(r.error.message);
    const out1 = r.result as { recommendations: { rank: number; item: { id: number; title: string } }[]; load: string };
    expect(out1.load).toBe('loaded');
    expect(out1.recommendations.map((x) => x.rank)).toEqual([0, 1, 2]);
    expect(out1.recommendations.every((x) => !history.includes(x.item.id) && x.item.title.length > 0)).toBe(true);
    const again = await service.handle('inference.topK', { runId, history, k: 3 });
    expect(again.ok && (again.result as { load: string }).load).toBe('cached');

    const bad = await service.handle('inference.topK', { runId, history: [987654], k: 3 });
    expect(bad.ok ? null : bad.error).toMatchObject({ code: 'invalid_input', message: expect.stringContaining('Item 987654') });
    const missing = await service.handle('inference.topK', { runId: 9999, history, k: 3 });
    expect(missing.ok ? null : missing.error.code).toBe('not_found');
    const empty = await service.handle('inference.topK', { runId, history: [], k: 3 });
    expect(empty.ok ? null : empty.error.code).toBe('invalid_input');

    // A worker that dies fails its pending request with the reason; the next request starts a new one.
    await service.inference.forget(runId);
    const pending = service.handle('inference.topK', { runId, history, k: 3 });
    await (service.inference as unknown as { worker: Worker }).worker.terminate();
    const died = await pending;
    expect(died.ok ? null : died.error).toMatchObject({ code: 'internal', message: expect.stringContaining('Inference worker exited') });
    const revived = await service.handle('inference.topK', { runId, history, k: 3 });
    expect(revived.ok && (revived.result as { load: string }).load).toBe('loaded');
  } finally {
    await service.close();
  }
}, 120_000);
