// `npm run bench -- inference [--catalog FILE] [--requests N]`: live top-10 latency through the app's
// inference worker (src/main/workers/inference-worker.ts, via the service's InferenceClient) on the
// embedded dataset. Trains, or reuses from a kept catalog, what it needs with the app's job code: a brief
// SASRec run (its item table is M), a small compact backbone and two brief ALMOSTREC runs on it (images
// off: the bench measures scoring, not the one-off visual-token cache). Then per model: p50/p95 of one
// user's top-10 over N requests (random users, each with their whole sequence as history), and the time
// to switch the loaded backbone's active adapter to the other ALMOSTREC run; and SASRec's scoring time
// alone on onnxruntime and on tfjs (on the bench's thread), the choice the engine makes. Prints one JSON line.
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPretrainedBackbone } from '../core/backbone/backbone-store';
import { Catalog } from '../core/catalog';
import { InferenceEngine } from '../core/inference/inference-engine';
import { runPretrainJob } from '../core/jobs/backbone-jobs';
import { runTrainingJob, type RunJobContext } from '../core/jobs/run-jobs';
import { Rng } from '../core/tensor/rng';
import { InferenceClient } from '../main/services/inference-client';
import type { ModelKind } from '../shared/models';
import { ensureDataset, resolveDataset } from './bench-data';
import { median, round } from './bench-stats';

const log = (msg: string) => process.stderr.write(msg + '\n');

const SASREC = { epochs: 3, evalEvery: 3, seed: 42 };
/**
 * test/integration/almostrec.test.ts's backbone architecture (what scoring costs depends on it), with fewer
 * pretraining steps: the bench times inference, not what the backbone learned.
 */
const BACKBONE = { hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 128, gridSize: 2, maxTokens: 48, batchSize: 8, stage0Steps: 0, stage1Steps: 4, stage2Steps: 8, warmupSteps: 2 };
const ALMOSTREC = { epochs: 1, evalEvery: 1, batchSize: 32, learningRate: 5e-3, warmupSteps: 5, samplesPerUser: 1, historyLength: 10, maxTitleTokens: 4, useImages: 0 };

export interface InferenceBenchOptions {
  catalog?: string;
  requests: number;
  /** The built inference worker (out/main/inference-worker.js). */
  workerPath: string;
}

function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

/** A finished run of `model` on the dataset matching `config`'s keys, or a new one trained now. */
async function runFor(catalog: Catalog, datasetId: number, model: ModelKind, config: Record<string, number>, ctx: RunJobContext): Promise<number> {
  const same = catalog
    .listRuns(datasetId)
    .filter((r) => r.model === model && r.status === 'succeeded')
    .find((r) => Object.entries(config).every(([k, v]) => r.config[k] === v));
  if (same) {
    log(`reusing ${model} run ${same.id}`);
    return same.id;
  }
  const runId = catalog.createRun({ datasetId, model, config, backend: null });
  const t0 = performance.now();
  await runTrainingJob(catalog, runId, { ...ctx, resume: false });
  const run = catalog.getRun(runId)!;
  if (run.status !== 'succeeded') throw new Error(`${model} run ${runId} ended ${run.status}: ${run.error ?? ''}`);
  log(`${model} run ${runId} trained in ${((performance.now() - t0) / 1000).toFixed(0)} s (valid NDCG@10 ${run.valid?.ndcg10.toFixed(4)})`);
  return runId;
}

async function backboneFor(catalog: Catalog, dataDir: string, datasetId: number, ctx: RunJobContext): Promise<number> {
  const name = 'bench-inference-compact';
  const have = catalog.listBackbones().find((b) => b.name === name && b.status === 'succeeded');
  if (have) {
    log(`reusing backbone ${have.id}`);
    return have.id;
  }
  const id = createPretrainedBackbone(catalog, dataDir, { name, datasetId, config: BACKBONE });
  const t0 = performance.now();
  await runPretrainJob(catalog, id, { ...ctx, resume: false });
  log(`backbone ${id} pretrained in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  return id;
}

export async function benchInference(opts: InferenceBenchOptions): Promise<string> {
  const workDir = mkdtempSync(join(tmpdir(), 'almostrec-bench-inference-'));
  const dbPath = opts.catalog ?? join(workDir, 'catalog.sqlite');
  const dataDir = opts.catalog ? join(opts.catalog, '..') : workDir;
  const catalog = Catalog.open(dbPath);
  const client = new InferenceClient({ workerPath: opts.workerPath, dbPath, catalog });
  try {
    const setup0 = performance.now();
    const ctx: RunJobContext = { dataDir, onProgress: () => {}, onLog: () => {}, signal: { aborted: false } };
    const datasetId = await ensureDataset(catalog, resolveDataset('ml-latest-small'));
    const sasrec = await runFor(catalog, datasetId, 'sasrec', SASREC, ctx);
    const backboneId = await backboneFor(catalog, dataDir, datasetId, ctx);
    const adapters = [
      await runFor(catalog, datasetId, 'almostrec', { ...ALMOSTREC, backboneId, seqRunId: sasrec, seed: 1 }, ctx),
      await runFor(catalog, datasetId, 'almostrec', { ...ALMOSTREC, backboneId, seqRunId: sasrec, seed: 2 }, ctx)
    ];
    const setupSec = (performance.now() - setup0) / 1000;
    if (!client.threaded) throw new Error(`${opts.workerPath} is not built: run \`npm run build\` first`);

    const data = catalog.loadSequences(datasetId);
    const rng = new Rng(7);
    const histories = Array.from({ length: opts.requests }, () => Array.from(data.users[rng.int(data.users.length)].items, (i) => data.itemIds[i]));
    const latency = async (runId: number) => {
      // The first request loads the model; its time is the load, reported apart.
      const first = await client.topK(runId, histories[0], 10);
      const times: number[] = [];
      for (const h of histories) {
        const t0 = performance.now();
        await client.topK(runId, h, 10);
        times.push(performance.now() - t0);
      }
      return { p50_ms: round(median(times), 2), p95_ms: round(percentile(times, 95), 2), load_ms: round(first.loadMs, 1), first_load: first.load, runtime: first.runtime };
    };
    const sasrecFigures = await latency(sasrec);
    // The same requests on this thread, SASRec on tfjs and on onnxruntime: which scoring path is faster.
    const onThread = async (runtime: 'onnx' | 'tfjs') => {
      const engine = new InferenceEngine(catalog, { sequentialRuntime: runtime });
      try {
        await engine.topK(sasrec, histories[0], 10);
        const times: number[] = [];
        for (const h of histories) times.push((await engine.topK(sasrec, h, 10)).scoreMs);
        return { p50_ms: round(median(times), 2), p95_ms: round(percentile(times, 95), 2) };
      } finally {
        engine.dispose();
      }
    };
    const sasrecScoring = { onnxruntime: await onThread('onnx'), tfjs: await onThread('tfjs') };
    const almostrecFigures = await latency(adapters[0]);
    // Switching: the other adapter onto the backbone already loaded; forgotten after each, so each is a load.
    const switches: number[] = [];
    for (let i = 0; i < 5; i++) {
      const answer = await client.topK(adapters[1], histories[i], 10);
      if (answer.load !== 'adapter-switch') throw new Error(`expected an adapter switch, got ${answer.load}`);
      switches.push(answer.loadMs);
      await client.forget(adapters[1]);
    }
    return JSON.stringify({
      bench: 'inference',
      dataset: 'ml-latest-small',
      users: data.users.length,
      items: data.numItems,
      requests: opts.requests,
      sasrec: { run: sasrec, ...sasrecFigures, target_p95_ms: 20, scoring_only_on_one_thread: sasrecScoring },
      almostrec: { run: adapters[0], backbone: backboneId, ...almostrecFigures, target_p95_ms: 300 },
      adapter_switch_ms: { median: round(median(switches), 1), max: round(Math.max(...switches), 1) },
      setup_sec: Math.round(setupSec),
      loadavg_1m: round(loadavg()[0], 2)
    });
  } finally {
    await client.close();
    catalog.close();
    if (!opts.catalog) rmSync(workDir, { recursive: true, force: true });
  }
}
