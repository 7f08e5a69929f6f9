// `npm run bench -- <MODEL|baselines> --dataset <name|path> [--epochs E] [--eval-every K] [--patience P]
//  [--max-len L] [--seed S] [--backend B] [--catalog FILE] [--profile[-only] [--profile-steps K]]
//  [--reference [--reference-script PATH] [--repeat N]]`
// Imports the dataset into a temporary catalog, trains the model (or, for `baselines`, every model of the
// build in turn) with its catalogue defaults through the one training loop, selects it on validation
// NDCG@10, evaluates the test split once, and prints per model one JSON line with the figures (preceded by a
// timing breakdown line; for a single model the JSON line is the LAST stdout line). Progress goes to stderr.
// --profile prints a per-kernel table of a few training steps first (bench-profile.ts). --reference (sasrec)
// then runs the PyTorch reference on the same data and settings (bench-reference.ts), prints its JSON line and
// last a comparison JSON line (speed ratio, validation NDCG@10 side by side); --repeat N alternates the two.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseModelConfig } from '../shared/api';
import { MODEL_KINDS, modelDescriptor, usesBackbone, type ModelKind } from '../shared/models';
import type { EpochRecord } from '../shared/types';
import type { SequenceData } from '../core/data/types';
import { Catalog } from '../core/catalog';
import { evaluate } from '../core/eval';
import { modelContext } from '../core/jobs/run-jobs';
import { fitPopularity } from '../core/models/popularity';
import { isAvailable, modelSpec } from '../core/models/registry';
import { initBackend, type BackendPreference } from '../core/tensor/backend';
import { loadScorer, trainModel } from '../core/train';
import { benchAblation } from './bench-ablation';
import { benchLlmBaselines } from './bench-llm';
import { benchBackbone } from './bench-backbone';
import { median, roundMetrics } from './bench-stats';
import { loadData, resolveDataset, type DatasetSource } from './bench-data';
import { profileSteps } from './bench-profile';
import { compareWithReference, referenceCommand, referenceJson, runReference, type ReferenceCommand, type ReferenceResult, type ReferenceSettings } from './bench-reference';
import { benchInference } from './bench-inference';
import { benchTable2 } from './bench-table2';

/** `baselines` runs these in this order (DESIGN §6 baselines, then SASRec, then the floor). */
const BASELINE_ORDER: readonly ModelKind[] = ['bpr', 'ncf', 'gru4rec', 'nextitnet', 'sasrec_id_v', 'youtube_id_v', 'sasrec', 'popularity'];

/** Single-model benchmarks: every model but ALMOSTREC, which needs a backbone and a sequential run (`table2`). */
const BENCH_KINDS: readonly ModelKind[] = MODEL_KINDS.filter((k) => !usesBackbone(k));

const USAGE = `Usage: bench backbone [--steps N] [--no-pretrain] [--catalog FILE]\n       bench inference [--catalog FILE] [--requests N]   (live top-10 latency and adapter switch, embedded dataset)\n       bench ablation --dataset D --catalog FILE [--epochs E] [--param k=v …] [--gru4rec-run R]   (on the catalog bench table2 left)\n       bench llm-baselines --dataset D --catalog FILE [--epochs E] [--param k=v …]   (E4SRec…, on the catalog bench table2 left)\n       bench table2 --dataset D [--catalog FILE] [--sasrec-epochs E] [--gru4rec-epochs E] [--almostrec-epochs E] [--param k=v …] [--pretrain-param k=v …]\n       bench <${BENCH_KINDS.join('|')}|baselines> --dataset <ml-latest-small|movielens-100k-mm|microlens-50k|PATH> [--epochs E] [--eval-every K] [--patience P] [--max-len L] [--seed S] [--backend auto|tensorflow-gpu|tensorflow|wasm|cpu] [--threads 1|2] [--catalog FILE]\n         [--profile | --profile-only] [--profile-steps K]   (one trainable model: per-kernel time of K training steps)\n         [--reference [--reference-script PATH] [--repeat N]]   (sasrec only: then the PyTorch reference, same epochs/seed, ratio and curves)`;

const peakRssMb = () => Math.round(process.resourceUsage().maxRSS / 1024);
const log = (msg: string) => process.stderr.write(msg + '\n');

interface BenchSettings {
  epochs?: number;
  evalEvery?: number;
  patience?: number;
  maxLen?: number;
  seed?: number;
  /** Training threads (data-parallel replicas, see core/train/replicas.ts); not a model parameter. */
  threads?: number;
}

interface ProfileOptions {
  steps: number;
  /** Stop after the profile, without training. */
  only: boolean;
}

/** One model's figures: the printed JSON line and what the reference comparison needs. */
interface ModelRun {
  line: string;
  secPerEpoch: number;
  history: EpochRecord[];
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

async function benchModel(
  kind: ModelKind,
  catalog: Catalog,
  data: SequenceData,
  source: DatasetSource,
  backend: string,
  workDir: string,
  s: BenchSettings,
  profile: ProfileOptions | null = null
): Promise<ModelRun | null> {
  if (kind === 'popularity') {
    const pop = fitPopularity(data);
    const valid = await evaluate(pop, data, 'valid');
    const test = await evaluate(pop, data, 'test');
    const line = JSON.stringify({ dataset: source.name, model: kind, backend, epochs: 0, sec_per_epoch: 0, peak_rss_mb: peakRssMb(), valid: roundMetrics(valid.metrics), test: roundMetrics(test.metrics) });
    return { line, secPerEpoch: 0, history: [] };
  }
  const spec = modelSpec(kind);
  const config = benchConfig(kind, s);
  log(`${kind} config: ${JSON.stringify(config)}`);
  const ctx = await modelContext(catalog, spec, data, (p) => {
    if (p.done === p.total) log(`${p.phase}: ${p.done}/${p.total}`);
  });
  if (ctx.itemFeatures) log(`${kind}: image features ${ctx.itemFeatures.encoderId} for ${ctx.itemFeatures.has.reduce((a, b) => a + b, 0)} of ${data.numItems} items`);
  if (profile) {
    console.log(await profileSteps(spec, ctx, config, profile.steps));
    if (profile.only) return null;
  }
  let lastLog = 0;
  const checkpointDir = join(workDir, 'checkpoints', kind);
  // A repeated run (--repeat) starts afresh, not from the previous repetition's files.
  rmSync(checkpointDir, { recursive: true, force: true });
  const result = await trainModel(spec, ctx, config, {
    checkpointDir,
    threads: s.threads,
    onLog: (message) => log(`${kind}: ${message}`),
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
    `${kind} breakdown (s/epoch): forward ${(t.forward / epochsRun).toFixed(3)} backward ${(t.backward / epochsRun).toFixed(3)} optimizer ${(t.optimizer / epochsRun).toFixed(3)} data ${(t.data / epochsRun).toFixed(3)} wait ${(t.wait / epochsRun).toFixed(3)}; threads ${result.threads}; best epoch ${result.bestEpoch}${result.stoppedEarly ? ' (stopped early)' : ''}`
  );
  const secPerEpoch = median(result.history.map((h) => h.seconds));
  const line = JSON.stringify({
    dataset: source.name,
    model: kind,
    backend,
    epochs: epochsRun,
    sec_per_epoch: Math.round(secPerEpoch * 1000) / 1000,
    threads: result.threads,
    peak_rss_mb: peakRssMb(),
    valid: roundMetrics(result.valid),
    test: roundMetrics(test.metrics)
  });
  return { line, secPerEpoch, history: result.history };
}

/** The reference trains what our SASRec config says (its flags default to the same catalogue values). */
function referenceSettings(config: Record<string, number>): ReferenceSettings {
  const { epochs, maxLen, seed, hiddenSize, numBlocks, numHeads, dropout, batchSize, learningRate } = config;
  if (config.beta2 !== 0.98) log(`note: the reference's Adam beta2 is fixed at 0.98, ours is ${config.beta2}`);
  return { epochs, maxLen, seed, hiddenSize, numBlocks, numHeads, dropout, batchSize, learningRate };
}

/**
 * `repeat` alternating pairs, ours then the reference, never at once (each would slow the other); every
 * run's own lines, then the comparison as the LAST stdout line.
 */
async function benchWithReference(run: (first: boolean) => Promise<ModelRun | null>, ref: ReferenceCommand, repeat: number, source: DatasetSource): Promise<void> {
  const ours: ModelRun[] = [];
  const refs: ReferenceResult[] = [];
  for (let r = 0; r < repeat; r++) {
    if (repeat > 1) log(`bench: repetition ${r + 1}/${repeat}`);
    const mine = await run(r === 0);
    if (!mine) throw new Error('--reference needs a training run');
    console.log(mine.line);
    const theirs = await runReference(ref, log);
    console.log(JSON.stringify(referenceJson(theirs)));
    ours.push(mine);
    refs.push(theirs);
  }
  const curve = (h: EpochRecord[]) => h.flatMap((e) => (e.validNdcg10 === null ? [] : [{ epoch: e.epoch, ndcg10: e.validNdcg10 }]));
  console.log(JSON.stringify(compareWithReference('sasrec', source.name, ours.map((o) => ({ secPerEpoch: o.secPerEpoch, curve: curve(o.history) })), refs)));
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
      'gru4rec-run': { type: 'string' },
      param: { type: 'string', multiple: true },
      'pretrain-param': { type: 'string', multiple: true },
      profile: { type: 'boolean' },
      'profile-only': { type: 'boolean' },
      'profile-steps': { type: 'string' },
      reference: { type: 'boolean' },
      'reference-script': { type: 'string' },
      repeat: { type: 'string' },
      threads: { type: 'string' },
      requests: { type: 'string' }
    }
  });
  const command = positionals[0];
  if (command === 'table2') {
    if (!values.dataset) throw new Error(USAGE);
    await benchTable2({
      dataset: values.dataset,
      catalog: values.catalog,
      sasrecEpochs: intFlag(values['sasrec-epochs'], 'sasrec-epochs') ?? 30,
      gru4recEpochs: intFlag(values['gru4rec-epochs'], 'gru4rec-epochs') ?? 20,
      almostrecEpochs: intFlag(values['almostrec-epochs'], 'almostrec-epochs'),
      almostrecParams: values.param ?? [],
      pretrainParams: values['pretrain-param'] ?? []
    });
    return;
  }
  if (command === 'llm-baselines') {
    if (!values.dataset || !values.catalog || positionals.length > 1) throw new Error(USAGE);
    await benchLlmBaselines({
      dataset: values.dataset,
      catalog: values.catalog,
      // bench table2's ALMOSTREC budget, so the rows compare.
      epochs: intFlag(values.epochs, 'epochs') ?? 2,
      params: values.param ?? []
    });
    return;
  }
  if (command === 'ablation') {
    if (!values.dataset || !values.catalog || positionals.length > 1) throw new Error(USAGE);
    await benchAblation({
      dataset: values.dataset,
      catalog: values.catalog,
      // As bench table2's ALMOSTREC, so the full model compares with its Table 2 row.
      epochs: intFlag(values.epochs, 'epochs') ?? 2,
      params: values.param ?? [],
      gru4recRun: intFlag(values['gru4rec-run'], 'gru4rec-run')
    });
    return;
  }
  if (command === 'inference') {
    if (positionals.length > 1) throw new Error(USAGE);
    // bench.js is built beside the inference worker (out/main).
    console.log(await benchInference({ catalog: values.catalog, requests: intFlag(values.requests, 'requests') ?? 200, workerPath: resolve(__dirname, 'inference-worker.js') }));
    return;
  }
  if (command === 'backbone') {
    const backend = await initBackend((values.backend ?? 'auto') as BackendPreference);
    log(`backend: ${backend.name} (${backend.device}, ${backend.threads} thread(s))`);
    const steps = intFlag(values.steps, 'steps') ?? 5;
    console.log(await benchBackbone(backend.name, { steps, pretrain: !values['no-pretrain'], catalog: values.catalog }));
    return;
  }
  const kinds: ModelKind[] | null =
    command === 'baselines' ? [...BASELINE_ORDER] : BENCH_KINDS.includes(command as ModelKind) ? [command as ModelKind] : null;
  if (command === 'almostrec') throw new Error('ALMOSTREC needs a pretrained backbone and a finished SASRec/GRU4Rec run: use `bench table2 --dataset D`, which trains all three');
  if (MODEL_KINDS.includes(command as ModelKind) && usesBackbone(command as ModelKind)) {
    throw new Error(`${command} needs a pretrained backbone and a finished SASRec run: use \`bench llm-baselines --dataset D --catalog FILE\` on the catalog \`bench table2\` left`);
  }
  if (!kinds || !values.dataset || positionals.length > 1) throw new Error(USAGE);
  if (kinds.length === 1 && !isAvailable(kinds[0])) throw new Error(`model ${kinds[0]} is not available in this build`);
  const settings: BenchSettings = {
    epochs: intFlag(values.epochs, 'epochs'),
    evalEvery: intFlag(values['eval-every'], 'eval-every'),
    patience: intFlag(values.patience, 'patience'),
    maxLen: intFlag(values['max-len'], 'max-len'),
    seed: intFlag(values.seed, 'seed', 0),
    threads: intFlag(values.threads, 'threads')
  };
  const profile = profileOptions(kinds, values);
  const repeat = intFlag(values.repeat, 'repeat') ?? 1;
  checkReferenceFlags(kinds, values, profile);
  const source = resolveDataset(values.dataset);
  // Checked before our own run, which can take hours: a missing Python or torch fails now.
  const reference = values.reference
    ? referenceCommand({ datasetName: source.name, datasetPath: source.path, script: values['reference-script'], settings: referenceSettings(benchConfig('sasrec', settings)) })
    : null;
  if (reference && settings.evalEvery !== undefined && settings.evalEvery !== 10) log('note: the reference validates every 10th epoch and the last; the curves compare only where both validated');
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
        const run = (first: boolean) => benchModel(kind, catalog, data, source, backend.name, workDir, settings, first ? profile : null);
        if (reference) await benchWithReference(run, reference, repeat, source);
        else {
          const out = await run(true);
          if (out) console.log(out.line);
        }
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

/** An integer flag ≥ `min`, or undefined when not given. */
function intFlag(v: string | undefined, name: string, min = 1): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be ${min === 0 ? 'a non-negative' : 'a positive'} integer, got "${v}"`);
  return n;
}

type FlagValues = { [k: string]: string | boolean | (string | boolean)[] | undefined };

/** --profile / --profile-only: one trainable model, K ≥ 1 steps (default 3). */
function profileOptions(kinds: readonly ModelKind[], values: FlagValues): ProfileOptions | null {
  const only = values['profile-only'] === true;
  if (!values.profile && !only) {
    if (values['profile-steps'] !== undefined) throw new Error('--profile-steps needs --profile or --profile-only');
    return null;
  }
  if (kinds.length !== 1 || kinds[0] === 'popularity') throw new Error('--profile needs one trainable model (not popularity or baselines)');
  return { steps: intFlag(values['profile-steps'] as string | undefined, 'profile-steps') ?? 3, only };
}

function checkReferenceFlags(kinds: readonly ModelKind[], values: FlagValues, profile: ProfileOptions | null): void {
  if (!values.reference) {
    if (values['reference-script'] !== undefined || values.repeat !== undefined) throw new Error('--reference-script and --repeat need --reference');
    return;
  }
  if (kinds.length !== 1 || kinds[0] !== 'sasrec') throw new Error('--reference is only for sasrec (the PyTorch reference is a SASRec)');
  if (profile?.only) throw new Error('--profile-only does not train, so it cannot be compared with --reference');
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
