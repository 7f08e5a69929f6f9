// A visual model as a catalog job, end to end on the importer fixture (7 movies, 2 posters): the job computes
// the missing image features with the real encoder, records the encoder in the run config and checkpoint,
// and the stored run re-evaluates from the same features — or refuses other ones.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { Catalog } from '../../src/core/catalog';
import { importDataset } from '../../src/core/importers';
import { IMAGE_ENCODER_KEY, runEvaluationJob, runTrainingJob } from '../../src/core/jobs/run-jobs';
import { MODEL_SPECS, modelSpec } from '../../src/core/models/registry';
import { initBackend } from '../../src/core/tensor/backend';
import { readSafetensors } from '../../src/core/tensor/safetensors';
import { ENCODER_ID } from '../../src/core/vision';

const FIXTURE = resolve(__dirname, '../fixtures/importers/ml-latest');
const workDir = mkdtempSync(join(tmpdir(), 'almostrec-visual-job-'));
let catalog: Catalog;
let datasetId: number;

beforeAll(async () => {
  await initBackend();
  catalog = Catalog.open(join(workDir, 'catalog.db'));
  ({ datasetId } = await importDataset(catalog, { format: 'movielens-latest', path: FIXTURE, name: 'tiny', options: {} }));
});

afterAll(() => {
  catalog?.close();
  rmSync(workDir, { recursive: true, force: true });
});

test('a SASRec_ID+V job encodes the images, records the encoder, and its run scores with the same features', async () => {
  const config = { epochs: 2, evalEvery: 1, batchSize: 4, maxLen: 5, hiddenSize: 8, numBlocks: 1, seed: 3 };
  const runId = catalog.createRun({ datasetId, model: 'sasrec_id_v', config, backend: null });
  const phases = new Set<string>();
  const logs: string[] = [];
  const ctx = { dataDir: join(workDir, 'data'), onProgress: (p: { phase: string }) => phases.add(p.phase), onLog: (m: string) => logs.push(m), signal: { aborted: false } };
  await runTrainingJob(catalog, runId, { ...ctx, resume: false });

  const run = catalog.getRun(runId)!;
  expect(run.status).toBe('succeeded');
  expect(run.config[IMAGE_ENCODER_KEY]).toBe(ENCODER_ID);
  expect(run.config.hiddenSize).toBe(8);
  expect(phases).toContain('encode-images');
  expect(logs.some((m) => m.includes(`image features ${ENCODER_ID} (1280-d) for `))).toBe(true);
  expect(readSafetensors(run.checkpointPath!).metadata.encoder).toBe(ENCODER_ID);
  expect(run.valid).not.toBeNull();

  // Re-evaluating the stored run reproduces its metrics (same weights, same features). Live recommendations
  // would be empty here: every fixture user has seen every item.
  await runEvaluationJob(catalog, runId, ctx);
  expect(catalog.getRun(runId)!.valid).toEqual(run.valid);

  // Features from another encoder than the one recorded are refused, naming both.
  catalog.updateRun(runId, { config: { ...run.config, [IMAGE_ENCODER_KEY]: 'other-encoder' } });
  await expect(runEvaluationJob(catalog, runId, ctx)).rejects.toThrow(`Run ${runId} was trained on image features "other-encoder"; this build computes "${ENCODER_ID}"`);
}, 90_000);

test('a kind without a spec in this build is refused by name', async () => {
  const saved = MODEL_SPECS.bpr;
  delete MODEL_SPECS.bpr;
  try {
    expect(() => modelSpec('bpr')).toThrow('model bpr is not available in this build');
    const runId = catalog.createRun({ datasetId, model: 'bpr', config: {}, backend: null });
    await expect(
      runTrainingJob(catalog, runId, { dataDir: join(workDir, 'data'), resume: false, onProgress: () => {}, onLog: () => {}, signal: { aborted: false } })
    ).rejects.toThrow('model bpr is not available in this build');
    expect(catalog.getRun(runId)!.status).toBe('failed');
    expect(catalog.getRun(runId)!.error).toBe('model bpr is not available in this build');
  } finally {
    MODEL_SPECS.bpr = saved;
  }
});
