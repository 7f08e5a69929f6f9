// ALMOSTREC end to end through the catalog jobs, on a real slice of the embedded MovieLens copy (its most
// rated movies with their posters, every rating of them): SASRec is trained as a run and stores M, a tiny
// compact backbone is pretrained on the slice's posters and titles, then the ALMOSTREC run computes its
// visual tokens, trains, exports its adapter and tensors, and must beat popularity on validation NDCG@10;
// so must E4SRec on the same backbone and run. TALLRec, LLaRA and VIP5 run end to end on a smaller slice.
// The slice keeps the poster encoding (MobileNetV2, ~80 ms a poster) to seconds; the full dataset's 3,628
// posters would take minutes on 2 cores.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createPretrainedBackbone } from '../../src/core/backbone/backbone-store';
import { runPretrainJob } from '../../src/core/jobs/backbone-jobs';
import { Catalog } from '../../src/core/catalog';
import type { SequenceData } from '../../src/core/data/types';
import { evaluate } from '../../src/core/eval';
import { importDataset, resolveEmbeddedDatasetDir } from '../../src/core/importers';
import { BACKBONE_NAME_KEY, SEQ_RUN_MODEL_KEY, TOKENIZER_KEY, runEvaluationJob, runTrainingJob, type RunJobContext } from '../../src/core/jobs/run-jobs';
import type { AlmostrecManifest } from '../../src/core/models/almostrec-export';
import { fitPopularity } from '../../src/core/models/popularity';
import { initBackend } from '../../src/core/tensor/backend';

/** Movies kept: the most rated ones (a real, denser slice; ties by id). */
const MOVIES = 300;

/** Brief settings measured to learn on 2 cores (see the figures logged by the test). */
const SASREC = { epochs: 10, evalEvery: 5, maxLen: 50, batchSize: 64, learningRate: 5e-3, hiddenSize: 32, seed: 42 };
const BACKBONE = { hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 128, gridSize: 2, maxTokens: 48, batchSize: 16, stage1Steps: 10, stage2Steps: 30, warmupSteps: 5 };
const ALMOSTREC = {
  epochs: 3,
  batchSize: 32,
  learningRate: 5e-3,
  warmupSteps: 5,
  samplesPerUser: 4,
  historyLength: 10,
  maxTitleTokens: 4,
  seed: 42
};

/** E4SRec as ALMOSTREC's brief settings (no images and titles to set). */
const E4SREC = { epochs: 3, batchSize: 32, learningRate: 5e-3, warmupSteps: 5, historyLength: 10, seed: 42 };

/**
 * TALLRec and LLaRA score items with the backbone's own language-model head, which this tiny, briefly
 * pretrained backbone barely has (title loss ≈ 9.4, uniform is 10.4): here they are run end to end (train,
 * full ranking, artifacts, LLaRA's HR@1) and compared with popularity in the log, not asserted to beat it —
 * measured 0.0919 (TALLRec) and 0.0890 (LLaRA) against popularity's 0.1046 after 3 epochs. On the real
 * compact backbone TALLRec's loss falls from 9.2 to 7.0 within 40 steps (README, LLM baselines).
 */
const TALLREC = { epochs: 1, batchSize: 16, learningRate: 5e-3, warmupSteps: 5, historyLength: 5, maxTitleTokens: 6, seed: 42 };

/** VIP5: item IDs as text with each poster's visual token. */
const VIP5 = { epochs: 1, batchSize: 16, learningRate: 5e-3, warmupSteps: 5, historyLength: 5, seed: 42 };

/** LLaRA: 20 candidates listed in the prompt; hybrid from the second epoch (curriculum over the first). */
const LLARA = { epochs: 1, batchSize: 16, learningRate: 5e-3, warmupSteps: 5, historyLength: 5, maxTitleTokens: 6, samplesPerUser: 2, curriculumEpochs: 0, seed: 42 };

const workDir = mkdtempSync(join(tmpdir(), 'almostrec-e2e-'));
const dataDir = join(workDir, 'data');
let catalog: Catalog;
let data: SequenceData;
/** The SASRec run and the backbone the first test makes; E4SRec's test reads them. */
let seqRunId = 0;
let backboneId = 0;
let popularity = 0;

/** ratings.csv and movies.csv of the most rated MOVIES movies; posters are read from the embedded folder. */
function writeSlice(dir: string, count = MOVIES, maxUser = Infinity): void {
  const src = resolveEmbeddedDatasetDir();
  const ratings = readFileSync(join(src, 'ratings.csv'), 'utf8').trimEnd().split('\n');
  const counts = new Map<string, number>();
  for (const line of ratings.slice(1)) {
    const movie = line.split(',')[1];
    counts.set(movie, (counts.get(movie) ?? 0) + 1);
  }
  const kept = new Set(
    [...counts]
      .sort((a, b) => b[1] - a[1] || Number(a[0]) - Number(b[0]))
      .slice(0, count)
      .map(([m]) => m)
  );
  const movies = readFileSync(join(src, 'movies.csv'), 'utf8').trimEnd().split('\n');
  mkdirSync(dir, { recursive: true });
  const keep = (l: string) => kept.has(l.split(',')[1]) && Number(l.split(',')[0]) <= maxUser;
  writeFileSync(join(dir, 'ratings.csv'), [ratings[0], ...ratings.slice(1).filter(keep)].join('\n') + '\n');
  writeFileSync(join(dir, 'movies.csv'), [movies[0], ...movies.slice(1).filter((l) => kept.has(l.slice(0, l.indexOf(','))))].join('\n') + '\n');
}

const phases = new Set<string>();
const logs: string[] = [];
const jobCtx: RunJobContext = { dataDir, onProgress: (p) => phases.add(p.phase), onLog: (m) => logs.push(m), signal: { aborted: false } };

beforeAll(async () => {
  await initBackend();
  const slice = join(workDir, 'slice');
  writeSlice(slice);
  catalog = Catalog.open(join(workDir, 'catalog.db'));
  const { datasetId } = await importDataset(catalog, {
    format: 'movielens-latest',
    path: slice,
    name: 'mls-top',
    options: { imagesDir: join(resolveEmbeddedDatasetDir(), 'posters') }
  });
  data = catalog.loadSequences(datasetId);
});

afterAll(() => {
  catalog?.close();
  rmSync(workDir, { recursive: true, force: true });
});

test('ALMOSTREC on a compact backbone and SASRec item embeddings beats popularity (validation NDCG@10)', async () => {
  const t0 = performance.now();
  const seconds = () => ((performance.now() - t0) / 1000).toFixed(0);
  popularity = (await evaluate(fitPopularity(data), data, 'valid')).metrics.ndcg10;

  seqRunId = catalog.createRun({ datasetId: data.datasetId, model: 'sasrec', config: SASREC, backend: null });
  await runTrainingJob(catalog, seqRunId, { ...jobCtx, resume: false });
  const seqRun = catalog.getRun(seqRunId)!;
  expect(seqRun.status).toBe('succeeded');
  console.log(`${seconds()} s: SASRec valid NDCG@10 ${seqRun.valid!.ndcg10.toFixed(4)}`);

  backboneId = createPretrainedBackbone(catalog, dataDir, { name: 'compact-mls-top', datasetId: data.datasetId, config: BACKBONE });
  await runPretrainJob(catalog, backboneId, { ...jobCtx, resume: false });
  expect(catalog.getBackbone(backboneId)!.status).toBe('succeeded');
  console.log(`${seconds()} s: backbone pretrained`);

  // References are checked before anything loads: a missing backbone is named.
  const missing = catalog.createRun({ datasetId: data.datasetId, model: 'almostrec', config: { ...ALMOSTREC, seqRunId }, backend: null });
  await expect(runTrainingJob(catalog, missing, { ...jobCtx, resume: false })).rejects.toThrow('ALMOSTREC needs a backbone: set backboneId');
  expect(catalog.getRun(missing)!.status).toBe('failed');

  phases.clear();
  const runId = catalog.createRun({ datasetId: data.datasetId, model: 'almostrec', config: { ...ALMOSTREC, backboneId, seqRunId }, backend: null });
  await runTrainingJob(catalog, runId, { ...jobCtx, resume: false });
  const run = catalog.getRun(runId)!;
  expect(run.status).toBe('succeeded');
  expect(phases).toContain('backbone-features');
  expect(run.config).toMatchObject({ backboneId, seqRunId, [BACKBONE_NAME_KEY]: 'compact-mls-top', [SEQ_RUN_MODEL_KEY]: 'sasrec', [TOKENIZER_KEY]: 'llama-2+image:32000' });
  const epochs = run.history.map((h) => `${h.seconds.toFixed(1)} s, loss ${h.loss.toFixed(3)}, valid ${h.validNdcg10?.toFixed(4)}`);
  console.log(`${seconds()} s: ALMOSTREC epochs: ${epochs.join('; ')}; popularity ${popularity.toFixed(4)}`);

  const artifacts = catalog.getArtifacts(runId).map((a) => a.kind);
  expect(artifacts).toEqual(['checkpoint', 'almostrec_tensors', 'lora_adapter', 'lora_adapter_config', 'almostrec_manifest']);
  const manifestPath = catalog.getArtifacts(runId).find((a) => a.kind === 'almostrec_manifest')!.path;
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as AlmostrecManifest;
  expect(manifest.dataset).toMatchObject({ id: data.datasetId, name: 'mls-top' });
  expect(manifest.sequentialRun).toMatchObject({ id: seqRunId, model: 'sasrec' });
  expect(manifest.backbone).toMatchObject({ id: backboneId, name: 'compact-mls-top', hiddenSize: BACKBONE.hiddenSize });

  // The stored run re-scores to the same figures (same backbone, M, visual tokens and weights).
  await runEvaluationJob(catalog, runId, jobCtx);
  expect(catalog.getRun(runId)!.valid!.ndcg10).toBeCloseTo(run.valid!.ndcg10, 5);

  expect(run.history.at(-1)!.loss).toBeLessThan(run.history[0].loss);
  expect(run.valid!.ndcg10).toBeGreaterThan(popularity);
}, 300_000);

test('E4SRec on the same backbone and SASRec run beats popularity, exports its adapter and re-scores to its figures', async (t) => {
  if (!backboneId || !seqRunId) t.skip();
  const missing = catalog.createRun({ datasetId: data.datasetId, model: 'e4srec', config: { ...E4SREC, seqRunId }, backend: null });
  await expect(runTrainingJob(catalog, missing, { ...jobCtx, resume: false })).rejects.toThrow('E4SRec needs a backbone: set backboneId');

  const runId = catalog.createRun({ datasetId: data.datasetId, model: 'e4srec', config: { ...E4SREC, backboneId, seqRunId }, backend: null });
  await runTrainingJob(catalog, runId, { ...jobCtx, resume: false });
  const run = catalog.getRun(runId)!;
  expect(run.status).toBe('succeeded');
  console.log(`E4SRec epochs: ${run.history.map((h) => `${h.seconds.toFixed(1)} s, loss ${h.loss.toFixed(3)}, valid ${h.validNdcg10?.toFixed(4)}`).join('; ')}; popularity ${popularity.toFixed(4)}`);
  expect(catalog.getArtifacts(runId).map((a) => a.kind)).toEqual(['checkpoint', 'almostrec_tensors', 'lora_adapter', 'lora_adapter_config', 'almostrec_manifest']);
  const manifestPath = catalog.getArtifacts(runId).find((a) => a.kind === 'almostrec_manifest')!.path;
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as AlmostrecManifest;
  expect(manifest.model).toBe('e4srec');
  expect(manifest.sequentialRun).toMatchObject({ id: seqRunId, model: 'sasrec' });

  await runEvaluationJob(catalog, runId, jobCtx);
  expect(catalog.getRun(runId)!.valid!.ndcg10).toBeCloseTo(run.valid!.ndcg10, 5);
  expect(run.history.at(-1)!.loss).toBeLessThan(run.history[0].loss);
  expect(run.valid!.ndcg10).toBeGreaterThan(popularity);
}, 300_000);

let small: Promise<{ datasetId: number; smallData: SequenceData; floor: number }> | null = null;

/**
 * Ranking by title likelihood walks a prefix tree of every title per user (~0.4 s a user here): TALLRec and
 * LLaRA train on a smaller slice (the 100 most rated movies, users 1–100). The backbone serves any dataset.
 */
function smallSlice(): Promise<{ datasetId: number; smallData: SequenceData; floor: number }> {
  small ??= (async () => {
    const dir = join(workDir, 'small');
    writeSlice(dir, 100, 100);
    const { datasetId } = await importDataset(catalog, { format: 'movielens-latest', path: dir, name: 'mls-top100', options: { imagesDir: join(resolveEmbeddedDatasetDir(), 'posters') } });
    const smallData = catalog.loadSequences(datasetId);
    return { datasetId, smallData, floor: (await evaluate(fitPopularity(smallData), smallData, 'valid')).metrics.ndcg10 };
  })();
  return small;
}

test('TALLRec on the same backbone: trained with LoRA only, every title ranked by its likelihood after the history titles', async (t) => {
  if (!backboneId) t.skip();
  const { datasetId, smallData, floor } = await smallSlice();

  const refused = catalog.createRun({ datasetId, model: 'tallrec', config: { ...TALLREC }, backend: null });
  await expect(runTrainingJob(catalog, refused, { ...jobCtx, resume: false })).rejects.toThrow('TALLRec needs a backbone: set backboneId');

  const t0 = performance.now();
  const runId = catalog.createRun({ datasetId, model: 'tallrec', config: { ...TALLREC, backboneId }, backend: null });
  await runTrainingJob(catalog, runId, { ...jobCtx, resume: false });
  const run = catalog.getRun(runId)!;
  expect(run.status).toBe('succeeded');
  console.log(
    `TALLRec on ${smallData.users.length} users × ${smallData.numItems} items (${((performance.now() - t0) / 1000).toFixed(0)} s): ` +
      `${run.history.map((h) => `${h.seconds.toFixed(1)} s, loss ${h.loss.toFixed(3)}, valid ${h.validNdcg10?.toFixed(4) ?? '—'}`).join('; ')}; popularity ${floor.toFixed(4)}`
  );
  expect(run.config).not.toHaveProperty('seqRunId');
  expect(catalog.getArtifacts(runId).map((a) => a.kind)).toEqual(['checkpoint', 'lora_adapter', 'lora_adapter_config', 'tallrec_manifest']);
  expect(run.valid!.ndcg10).toBeGreaterThan(0);
  expect(run.test!.hr20).toBeGreaterThan(0);
}, 600_000);

test('LLaRA (hybrid title + ID tokens) trains, ranks every title and records its HR@1 and valid ratio over candidates', async (t) => {
  if (!backboneId) t.skip();
  const { datasetId, smallData, floor } = await smallSlice();
  const sasrec = catalog.createRun({ datasetId, model: 'sasrec', config: SASREC, backend: null });
  await runTrainingJob(catalog, sasrec, { ...jobCtx, resume: false });
  const t0 = performance.now();
  const runId = catalog.createRun({ datasetId, model: 'llara', config: { ...LLARA, backboneId, seqRunId: sasrec }, backend: null });
  logs.length = 0;
  await runTrainingJob(catalog, runId, { ...jobCtx, resume: false });
  const run = catalog.getRun(runId)!;
  expect(run.status).toBe('succeeded');
  const own = logs.find((l) => l.includes('LLaRA over'));
  console.log(
    `LLaRA on ${smallData.users.length} users (${((performance.now() - t0) / 1000).toFixed(0)} s): ` +
      `${run.history.map((h) => `${h.seconds.toFixed(1)} s, loss ${h.loss.toFixed(3)}, valid ${h.validNdcg10?.toFixed(4) ?? '—'}`).join('; ')}; popularity ${floor.toFixed(4)}; ${own}`
  );
  const kinds = catalog.getArtifacts(runId).map((a) => a.kind);
  expect(kinds).toContain('llara_eval');
  const evalFile = JSON.parse(readFileSync(catalog.getArtifacts(runId).find((a) => a.kind === 'llara_eval')!.path, 'utf8')) as { valid: { hr1: number; validRatio: number; users: number } };
  expect(evalFile.valid.users).toBe(smallData.users.length);
  expect(evalFile.valid.validRatio).toBeGreaterThanOrEqual(0);
  expect(evalFile.valid.hr1).toBeGreaterThanOrEqual(0);
  expect(run.valid!.ndcg10).toBeGreaterThan(0);
}, 600_000);

test('VIP5 (item IDs as text, each followed by its poster\'s visual tokens) trains and ranks every item by its ID', async (t) => {
  if (!backboneId) t.skip();
  const { datasetId, smallData, floor } = await smallSlice();
  const t0 = performance.now();
  phases.clear();
  const runId = catalog.createRun({ datasetId, model: 'vip5', config: { ...VIP5, backboneId }, backend: null });
  await runTrainingJob(catalog, runId, { ...jobCtx, resume: false });
  const run = catalog.getRun(runId)!;
  expect(run.status).toBe('succeeded');
  console.log(
    `VIP5 on ${smallData.users.length} users (${((performance.now() - t0) / 1000).toFixed(0)} s): ` +
      `${run.history.map((h) => `${h.seconds.toFixed(1)} s, loss ${h.loss.toFixed(3)}, valid ${h.validNdcg10?.toFixed(4) ?? '—'}`).join('; ')}; popularity ${floor.toFixed(4)}`
  );
  // The posters' visual tokens were computed for this dataset by the run (the backbone's feature cache).
  expect(phases).toContain('backbone-features');
  expect(catalog.getArtifacts(runId).map((a) => a.kind)).toEqual(['checkpoint', 'lora_adapter', 'lora_adapter_config', 'vip5_manifest']);
  expect(run.valid!.ndcg10).toBeGreaterThan(0);
}, 600_000);
