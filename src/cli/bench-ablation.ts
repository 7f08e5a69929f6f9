// `npm run bench -- ablation --dataset D --catalog FILE [--epochs E] [--param key=value …] [--gru4rec-run R]`:
// ALMOSTREC's ablation study (paper Figure 3) on a catalog that already holds what it needs — typically the
// one `bench table2 --catalog FILE` left: the dataset, a finished SASRec run, a finished GRU4Rec run and a
// finished backbone. It takes the dataset's latest finished SASRec run (M of the full model), GRU4Rec run
// ("GRU4Rec IDs") and backbone pretrained on it, unless --param seqRunId=… / --param backboneId=… /
// --gru4rec-run name them, and runs the study as one `almostrec ablation` CLI process (the app's ablation job,
// variants one after another). Prints one JSON line per variant (Figure 3's order) with its epochs, seconds
// per epoch, validation/test metrics, wall seconds and test NDCG@10 against the full model, then
// {"ablation_wall_sec": …}. Model selection is on validation only; test is read once per run (DESIGN §4).
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { RunDetail } from '../shared/types';
import { Catalog } from '../core/catalog';
import { runCli, throttledLog } from './bench-cli';
import { median, round, roundMetrics } from './bench-stats';

const log = (msg: string) => process.stderr.write(msg + '\n');

export interface AblationBenchOptions {
  dataset: string;
  /** An existing catalog (never created here: the study needs its runs and backbone). */
  catalog: string;
  epochs: number;
  /** ALMOSTREC hyper-parameters of the full model (key=value), seqRunId and backboneId included if given. */
  params: string[];
  /** The GRU4Rec run of the "GRU4Rec IDs" variant; absent: the dataset's latest finished one. */
  gru4recRun?: number;
}

export interface AblationRefs {
  datasetId: number;
  datasetName: string;
  seqRunId: number;
  backboneId: number;
  /** null: the catalog has no finished GRU4Rec run on the dataset (the CLI then leaves the variant out). */
  gru4recRunId: number | null;
}

/** `key=value` pairs as numbers (the CLI's schema checks keys and ranges). */
export function parseParams(params: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const kv of params) {
    const [key, value] = kv.split('=');
    const n = Number(value);
    if (!key || value === undefined || value.trim() === '' || !Number.isFinite(n)) throw new Error(`--param expects key=number (got "${kv}")`);
    out[key.trim()] = n;
  }
  return out;
}

/** The newest of `ids` (ids grow with time), or null. */
const latest = (ids: number[]): number | null => (ids.length > 0 ? Math.max(...ids) : null);

/**
 * What the study is built on: the given seqRunId / backboneId / GRU4Rec run, else the dataset's latest finished
 * SASRec run, backbone pretrained on it and GRU4Rec run. Throws, saying what to run first, when one is missing.
 */
export function pickAblationRefs(catalog: Catalog, dataset: string, params: Readonly<Record<string, number>>, gru4recRun?: number): AblationRefs {
  const ds = catalog.findDatasetByName(dataset) ?? (Number.isInteger(Number(dataset)) ? catalog.getDataset(Number(dataset)) : null);
  if (!ds) throw new Error(`the catalog holds no dataset "${dataset}" (run \`bench table2 --dataset ${dataset} --catalog FILE\` first)`);
  const finished = (model: string) => catalog.listRuns(ds.id).filter((r) => r.model === model && r.status === 'succeeded').map((r) => r.id);
  const seqRunId = params.seqRunId ?? latest(finished('sasrec'));
  if (seqRunId == null) throw new Error(`no finished SASRec run on ${ds.name}: train one (bench table2) or pass --param seqRunId=R`);
  const backboneId = params.backboneId ?? latest(catalog.listBackbones().filter((b) => b.datasetId === ds.id && b.status === 'succeeded').map((b) => b.id));
  if (backboneId == null) throw new Error(`no finished backbone pretrained on ${ds.name}: pretrain one (bench table2) or pass --param backboneId=B`);
  return { datasetId: ds.id, datasetName: ds.name, seqRunId, backboneId, gru4recRunId: gru4recRun ?? latest(finished('gru4rec')) };
}

/** The `almostrec ablation` arguments (JSON mode and --db are added by the runner). */
export function ablationArgs(refs: AblationRefs, epochs: number, params: Readonly<Record<string, number>>): string[] {
  const full: Record<string, number> = { ...params, seqRunId: refs.seqRunId, backboneId: refs.backboneId };
  return [
    'ablation',
    '--dataset',
    refs.datasetName,
    '--epochs',
    String(epochs),
    ...Object.entries(full).flatMap(([k, v]) => ['--param', `${k}=${v}`]),
    ...(refs.gru4recRunId !== null ? ['--gru4rec-run', String(refs.gru4recRunId)] : [])
  ];
}

/** One variant as the CLI's --json prints it. */
export interface VariantResult {
  studyId: number;
  variant: string;
  label: string;
  runId: number;
  status: string;
}

const seconds = (from: string | null, to: string | null): number | null => (from && to ? (Date.parse(to) - Date.parse(from)) / 1000 : null);

/**
 * The benchmark's line for one variant, figures as bench-table2's runLine rounds them. wall_sec: the run's
 * start to end (backbone inputs, training, test evaluation); on a resumed run only its last stretch.
 */
export function variantLine(dataset: string, v: VariantResult, run: RunDetail, full: RunDetail | null): string {
  const wall = seconds(run.startedAt, run.endedAt);
  const mine = run.test?.ndcg10;
  const base = v.variant === 'full' ? undefined : full?.test?.ndcg10;
  return JSON.stringify({
    dataset,
    variant: v.variant,
    label: v.label,
    run: run.id,
    status: run.status,
    epochs: run.history.length,
    sec_per_epoch: Math.round(median(run.history.map((h) => h.seconds)) * 1000) / 1000,
    valid: run.valid && roundMetrics(run.valid),
    test: run.test && roundMetrics(run.test),
    wall_sec: wall === null ? null : Math.round(wall),
    // Test NDCG@10 against the full model: the difference, and relative in % (as the Ablation view's column).
    ndcg10_vs_full: mine != null && base != null ? round(mine - base, 6) : null,
    ndcg10_vs_full_pct: mine != null && base != null && base > 0 ? round(((mine - base) / base) * 100, 2) : null
  });
}

export async function benchAblation(o: AblationBenchOptions): Promise<void> {
  const started = performance.now();
  const db = resolve(o.catalog);
  if (!existsSync(db)) throw new Error(`catalog ${db} not found (run \`bench table2 --dataset ${o.dataset} --catalog ${o.catalog}\` first)`);
  const params = parseParams(o.params);
  const catalog = Catalog.open(db);
  let refs: AblationRefs;
  try {
    refs = pickAblationRefs(catalog, o.dataset, params, o.gru4recRun);
  } finally {
    catalog.close();
  }
  log(`ablation on ${refs.datasetName}: SASRec run ${refs.seqRunId}, backbone ${refs.backboneId}, GRU4Rec run ${refs.gru4recRunId ?? '— (variant left out)'}, ${o.epochs} epoch(s) per variant`);
  // Variant boundaries and what is left out always; training progress every 15 s.
  const { lines, code, lastErr } = await runCli(db, ablationArgs(refs, o.epochs, params), throttledLog((line) => log(`[ablation] ${line}`), 15000, /^(Ablation study|Left out|almostrec:)/));
  const variants = lines.map((l) => JSON.parse(l) as VariantResult);
  const after = Catalog.open(db);
  try {
    const runs = variants.map((v) => {
      const run = after.getRun(v.runId);
      if (!run) throw new Error(`run ${v.runId} (${v.variant}) is not in the catalog`);
      return run;
    });
    const full = runs[variants.findIndex((v) => v.variant === 'full')] ?? null;
    variants.forEach((v, i) => console.log(variantLine(refs.datasetName, v, runs[i], full)));
  } finally {
    after.close();
  }
  console.log(
    JSON.stringify({
      ablation_wall_sec: Math.round((performance.now() - started) / 1000),
      study: variants[0]?.studyId ?? null,
      seq_run: refs.seqRunId,
      gru4rec_run: refs.gru4recRunId,
      backbone: refs.backboneId
    })
  );
  if (code !== 0) throw new Error(`almostrec ablation failed (exit ${code}): ${lastErr}`);
}
