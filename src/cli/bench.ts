// `npm run bench -- <MODEL|baselines> --dataset <name|path> [--epochs E] [--eval-every K] [--patience P]
//  [--max-len L] [--seed S] [--backend B] [--catalog FILE]`
// Imports the dataset into a temporary catalog, trains the model (or, for `baselines`, every model of the
// build in turn) with its catalogue defaults through the one training loop, selects it on validation
// NDCG@10, evaluates the test split once, and prints per model one JSON line with the figures (preceded by a
// timing breakdown line; for a single model the JSON line is the LAST stdout line). Progress goes to stderr.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseModelConfig } from '../shared/api';
import { MODEL_KINDS, modelDescriptor, type ModelKind } from '../shared/models';
import type { SequenceData } from '../core/data/types';
import { Catalog } from '../core/catalog';
import { evaluate } from '../core/eval';
import { modelContext } from '../core/jobs/run-jobs';
import { fitPopularity } from '../core/models/popularity';
import { isAvailable, modelSpec } from '../core/models/registry';
import { initBackend, type BackendPreference } from '../core/tensor/backend';
import { loadScorer, trainModel } from '../core/train';
import { benchBackbone } from './bench-backbone';
import { median, roundMetrics } from './bench-stats';
import { loadData, resolveDataset, type DatasetSource } from './bench-data';
import { benchTable2 } from './bench-table2';

/** `baselines` runs these in this order (DESIGN §6 baselines, then SASRec, then the floor). */
const BASELINE_ORDER: readonly ModelKind[] = ['bpr', 'ncf', 'gru4rec', 'nextitnet', 'sasrec_id_v', 'youtube_id_v', 'sasrec', 'popularity'];

const USAGE = `Usage: bench backbone [--steps N] [--no-pretrain] [--catalog FILE]\n       bench table2 --dataset D [--catalog FILE] [--sasrec-epochs E] [--gru4rec-epochs E] [--almostrec-epochs E] [--param k=v …] [--pretrain-param k=v …]\n       bench <${MODEL_KINDS.join('|')}|baselines> --dataset <ml-latest-small|movielens-100k-mm|microlens-50k|PATH> [--epochs E] [--eval-every K] [--patience P] [--max-len L] [--seed S] [--backend auto|tensorflow-gpu|tensorflow|wasm|cpu] [--catalog FILE]`;

const peakRssMb = () => Math.round(process.resourceUsage().maxRSS / 1024);
const log = (msg: string) => process.stderr.write(msg + '\n');

interface BenchSettings {
  epochs?: number;
  evalEvery?: number;
  patience?: number;
  maxLen?: number;
  seed?: number;
}

/**
 * The catalogue defaults with the benchmark's overrides for the keys the model has. Validation every 10
 * epochs with patience 5 unless told otherwise (the SASRec reference's schedule, DESIGN §8).
 */
function benchConfig(kind: ModelKind, s: BenchSettings): Record<string, number> {
  const keys = new Set(modelDescriptor(kind).params.map((p) => p.key));
  const given = Object.entries(s).filter(([, v]) => v !== undefined);
  const wanted: Record<string, number> = { evalEvery: 10, patience: 5, ...Object.fromEntries(given) };
  const overrides = Object.fromEntries(Object.entries(wanted).filter(([k]) => keys.has(k)));
  return parseModelConfig(kind, overrides);
}

async function benchModel(kind: ModelKind, catalog: Catalog, data: SequenceData, source: DatasetSource, backend: string, workDir: string, s: BenchSettings): Promise<string> {
  if (kind === 'popularity') {
    const pop = fitPopularity(data);
    const valid = await evaluate(pop, data, 'valid');
    const test = await evaluate(pop, data, 'test');
    return JSON.stringify({ dataset: source.name, model: kind, backend, epochs: 0, sec_per_epoch: 0, peak_rss_mb: peakRssMb(), valid: roundMetrics(valid.metrics), test: roundMetrics(test.metrics) });
  }
  const spec = modelSpec(kind);
  const config = benchConfig(kind, s);
  log(`${kind} config: ${JSON.stringify(config)}`);
  const ctx = await modelContext(catalog, spec, data, (p) => {
    if (p.done === p.total) log(`${p.phase}: ${p.done}/${p.total}`);
  });
  if (ctx.itemFeatures) log(`${kind}: image features ${ctx.itemFeatures.encoderId} for ${ctx.itemFeatures.has.reduce((a, b) => a + b, 0)} of ${data.numItems} items`);
  let lastLog = 0;
  const result = await trainModel(spec, ctx, config, {
    checkpointDir: join(workDir, 'checkpoints', kind),
    onProgress: (p) => {
      const now = performance.now();
      if (p.phase === 'train' && now - lastLog > 5000) {
        lastLog = now;
        const m = p.metrics!;
        log(`${kind} step ${p.done}/${p.total} epoch ${m.epoch} loss ${m.loss.toFixed(4)} eta ${Math.round(m.etaSeconds)} s`);
      }
    },
    onEpoch: (rec, valid) => log(`${kind} epoch ${rec.epoch} loss ${rec.loss.toFixed(4)} ${rec.seconds.toFixed(2)} s${valid ? ` valid ndcg@10 ${valid.ndcg10.toFixed(4)} hr@10 ${valid.hr10.toFixed(4)}` : ''}`)
  });
  const scorer = await loadScorer(spec, ctx, result.checkpointPath);
  let test;
  try {
    test = await evaluate(scorer, data, 'test');
  } finally {
    scorer.dispose();
  }
  const t = result.timing;
  const epochsRun = result.history.length;
  console.log(
    `${kind} breakdown (s/epoch): forward ${(t.forward / epochsRun).toFixed(3)} backward ${(t.backward / epochsRun).toFixed(3)} optimizer ${(t.optimizer / epochsRun).toFixed(3)} data ${(t.data / epochsRun).toFixed(3)}; best epoch ${result.bestEpoch}${result.stoppedEarly ? ' (stopped early)' : ''}`
  );
  return JSON.stringify({
    dataset: source.name,
    model: kind,
    backend,
    epochs: epochsRun,
    sec_per_epoch: Math.round(median(result.history.map((h) => h.seconds)) * 1000) / 1000,
    peak_rss_mb: peakRssMb(),
    valid: roundMetrics(result.valid),
    test: roundMetrics(test.metrics)
  });
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      dataset: { type: 'string' },
      epochs: { type: 'string' },
      'eval-every': { type: 'string' },
      patience: { type: 'string' },
      'max-len': { type: 'string' },
      seed: { type: 'string' },
      backend: { type: 'string' },
      catalog: { type: 'string' },
      steps: { type: 'string' },
      'no-pretrain': { type: 'boolean' },
      'sasrec-epochs': { type: 'string' },
      'gru4rec-epochs': { type: 'string' },
      'almostrec-epochs': { type: 'string' },
      param: { type: 'string', multiple: true },
      'pretrain-param': { type: 'string', multiple: true }
    }
  });
  const command = positionals[0];
  const positive = (v: string | undefined, name: string, fallback: number): number => {
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got "${v}"`);
    return n;
  };
  if (command === 'table2') {
    if (!values.dataset) throw new Error(USAGE);
    await benchTable2({
      dataset: values.dataset,
      catalog: values.catalog,
      sasrecEpochs: positive(values['sasrec-epochs'], 'sasrec-epochs', 30),
      gru4recEpochs: positive(values['gru4rec-epochs'], 'gru4rec-epochs', 20),
      almostrecEpochs: positive(values['almostrec-epochs'], 'almostrec-epochs', 3),
      almostrecParams: values.param ?? [],
      pretrainParams: values['pretrain-param'] ?? []
    });
    return;
  }
  if (command === 'backbone') {
    const backend = await initBackend((values.backend ?? 'auto') as BackendPreference);
    log(`backend: ${backend.name} (${backend.device}, ${backend.threads} thread(s))`);
    const steps = values.steps === undefined ? 5 : Number(values.steps);
    if (!Number.isInteger(steps) || steps < 1) throw new Error(`--steps must be a positive integer, got "${values.steps}"`);
    console.log(await benchBackbone(backend.name, { steps, pretrain: !values['no-pretrain'], catalog: values.catalog }));
    return;
  }
  const kinds: ModelKind[] | null =
    command === 'baselines' ? [...BASELINE_ORDER] : MODEL_KINDS.includes(command as ModelKind) ? [command as ModelKind] : null;
  if (!kinds || !values.dataset || positionals.length > 1) throw new Error(USAGE);
  if (kinds.length === 1 && !isAvailable(kinds[0])) throw new Error(`model ${kinds[0]} is not available in this build`);
  const int = (v: string | undefined, name: string, min = 1): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be ${min === 0 ? 'a non-negative' : 'a positive'} integer, got "${v}"`);
    return n;
  };
  const settings: BenchSettings = {
    epochs: int(values.epochs, 'epochs'),
    evalEvery: int(values['eval-every'], 'eval-every'),
    patience: int(values.patience, 'patience'),
    maxLen: int(values['max-len'], 'max-len'),
    seed: int(values.seed, 'seed', 0)
  };
  const source = resolveDataset(values.dataset);
  const backend = await initBackend((values.backend ?? 'auto') as BackendPreference);
  log(`backend: ${backend.name} (${backend.device}, ${backend.threads} thread(s))`);
  const workDir = mkdtempSync(join(tmpdir(), 'almostrec-bench-'));
  // A kept catalog (--catalog FILE) keeps the imported dataset and the visual models' image features
  // (computed once per item, minutes on a CPU) between benchmark runs.
  const catalog = Catalog.open(values.catalog ? resolve(values.catalog) : join(workDir, 'catalog.db'));
  try {
    const data = await loadData(catalog, source);
    const failed: string[] = [];
    for (const kind of kinds) {
      if (!isAvailable(kind)) {
        log(`skipping ${kind}: model ${kind} is not available in this build`);
        continue;
      }
      try {
        console.log(await benchModel(kind, catalog, data, source, backend.name, workDir, settings));
      } catch (e) {
        // One broken model must not cost the others' figures; the exit status still reports it.
        if (kinds.length === 1) throw e;
        log(`bench: ${kind} failed: ${e instanceof Error ? e.message : String(e)}`);
        failed.push(kind);
      }
    }
    if (failed.length) throw new Error(`${failed.length} model(s) failed: ${failed.join(', ')}`);
  } finally {
    catalog.close();
    rmSync(workDir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
