// `almostrec` — the command line over the same core as the app (catalog, importers, trainers, evaluator).
// Results go to stdout (text, or one JSON object per line with --json); progress goes to stderr.
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { importInputSchema, parseModelConfig, parsePretrainConfig } from '../shared/api';
import { defaultBackboneName, uniqueName, VISUAL_TOKEN_COUNTS, type BackboneSummary, type VisualTokenCount } from '../shared/backbones';
import { ablationVariantInfo } from '../shared/ablation';
import { ADAPTER_EXPORT_FORMATS, type AdapterExportFormat } from '../shared/adapters';
import { MODEL_KINDS, modelDescriptor, usesBackbone } from '../shared/models';
import type { DatasetSummary, ModelKind, RunSummary } from '../shared/types';
import { createPretrainedBackbone, removeBackboneFiles } from '../core/backbone/backbone-store';
import { Catalog, claimDataDir, isInterruptedError } from '../core/catalog';
import { createAblationStudy, readAblationStudy } from '../core/jobs/ablation-study';
import { exportAdapter } from '../core/adapters/export-adapter';
import { importAdapter } from '../core/adapters/import-adapter';
import { executeJob } from '../core/jobs/execute';
import { recommendForUser } from '../core/jobs/recommend';
import { runCheckpointDir } from '../core/jobs/run-jobs';
import { backendsCommand } from './backends-cli';
import { caseStudyFigureCommand, recommendationsCommand } from './figures-cli';
import type { AlmostrecConfig } from '../core/models/almostrec-config';
import { resolveAlmostrecReferences } from '../core/models/almostrec-references';
import { isAvailable } from '../core/models/registry';
import type { JobProgress } from '../core/progress';
import { catalogPath, defaultDataDir } from '../main/app-paths';

const USAGE = `Usage: almostrec <command> [options]

Commands:
  import <format> <path> --name N   Import a dataset (format: movielens-100k | movielens-latest | microlens | generic)
        [--items-csv F] [--images DIR] [--delimiter D] [--columns user=COL,item=COL,timestamp=COL,...]
  datasets                          List datasets
  train <model> --dataset N         Train a model on a dataset (name or id); models: ${MODEL_KINDS.join(', ')}
        [--epochs E] [--seed S] [--max-len L] [--batch-size B] [--lr X] [--patience P] [--eval-every K]
        [--param key=value ...]       any other hyper-parameter of the model (see the UI's Train view)
        [--seq-run R] [--backbone B]  ${MODEL_KINDS.filter(usesBackbone).join(', ')}: the SASRec/GRU4Rec run whose item table is M, and the backbone
                                      (name, id, or a llava-hf folder, registered on first use)
  ablation --dataset N              ALMOSTREC's ablation study (paper Figure 3): the full model and one variant per
                                    component, trained one after another with the same settings; one line per variant
        [--epochs E] [--param key=value ...] [--seq-run R] [--backbone B]   the full model, as for train almostrec
        [--gru4rec-run G]             the GRU4Rec run of the "GRU4Rec IDs" variant (default: the best by validation)
  ablation --resume <study>         Continue a cancelled or failed study (its id is its full-model run's id)
  resume <run>                      Resume an interrupted, failed or cancelled run from its last good checkpoint
  eval <run>                        Re-evaluate a finished run (validation + test)
  recommend <run> --user U [--k K]  Top-K next items for user U (external id) from a finished run
  recommendations <run> [--k K] [--out F.csv]
                                    Every test user's stored top-K (default 20) as CSV: user, rank, item_id, title, score, hit
  figure case-study --runs R1,R2 --user U --out F.svg|F.png [--k K] [--dpi D]
                                    The case study (paper Figure 4), 7 in wide; PNG at 300 dpi (2100 px) unless --dpi
  runs [--dataset N]                List runs with their metrics
  pretrain --dataset N [--name B]   Pretrain a compact LLaVA backbone on a dataset's posters and captions
        [--param key=value ...]       pretraining hyper-parameters (see the UI's Backbones view), e.g. --param stage1Steps=50
  backbone list                     List backbones (pretrained here or registered)
  backbone register <path> --name B Register a Hugging Face llava-hf checkpoint folder (validated, never copied)
  backbone features --backbone B --dataset N [--k 1|4|9|all]
                                    Cache the backbone's visual tokens (k per image) for the dataset's items
  backbone resume <backbone>        Resume a failed or cancelled pretraining from its last checkpoint
  backbone delete <backbone>        Delete a backbone (the folder too if it was pretrained here)
  adapters [--dataset N] [--backbone B]  List trained adapters (LoRA + heads of the models on a backbone)
  export <run> --format peft|bundle --out DIR [--force]
                                    Export a run's adapter: peft = the PEFT LoRA folder; bundle = PEFT + W^B, W^T, M,
                                    item mapping and a manifest, for import-adapter in another catalog (atomic; refuses
                                    an existing DIR unless --force)
  import-adapter <dir> [--name N]   Import a bundle into this catalog (same dataset by fingerprint, same backbone by
                                    content hash), then evaluate it: it becomes a finished run

  backends                          Each compute backend (webgpu, tensorflow-gpu, tensorflow, wasm, cpu): its device and
                                    self-test (one training step equal to cpu's to 1e-4), or why it is not offered;
                                    then the one training uses (ALMOSTREC_BACKEND=webgpu|tensorflow|wasm|cpu forces it)

Global options: --db <file> (default: the app's catalog), --json (one JSON object per line)`;

class CliError extends Error {}

const options = {
  db: { type: 'string' },
  json: { type: 'boolean', default: false },
  name: { type: 'string' },
  'items-csv': { type: 'string' },
  images: { type: 'string' },
  delimiter: { type: 'string' },
  columns: { type: 'string' },
  dataset: { type: 'string' },
  epochs: { type: 'string' },
  seed: { type: 'string' },
  'max-len': { type: 'string' },
  'batch-size': { type: 'string' },
  lr: { type: 'string' },
  patience: { type: 'string' },
  'eval-every': { type: 'string' },
  user: { type: 'string' },
  k: { type: 'string' },
  backbone: { type: 'string' },
  'seq-run': { type: 'string' },
  'gru4rec-run': { type: 'string' },
  resume: { type: 'string' },
  out: { type: 'string' },
  runs: { type: 'string' },
  dpi: { type: 'string' },
  param: { type: 'string', multiple: true },
  format: { type: 'string' },
  force: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false }
} as const;

type Flags = ReturnType<typeof parse>['values'];

function parse(argv: string[]) {
  return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
}

function num(flags: Flags, key: keyof Flags, label: string): number | undefined {
  const v = flags[key];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n)) throw new CliError(`--${label} must be a number (got "${String(v)}")`);
  return n;
}

function out(json: boolean, obj: unknown, text: string): void {
  process.stdout.write(json ? `${JSON.stringify(obj)}\n` : `${text}\n`);
}

function progressPrinter(): (p: JobProgress) => void {
  let last = 0;
  let lastPhase = '';
  return (p) => {
    const now = Date.now();
    if (p.phase === lastPhase && now - last < 1000 && p.done !== p.total) return;
    last = now;
    lastPhase = p.phase;
    const m = p.metrics ? ' ' + Object.entries(p.metrics).map(([k, v]) => `${k}=${Number.isInteger(v) ? v : v.toFixed(4)}`).join(' ') : '';
    process.stderr.write(`[${p.phase}] ${p.done}/${p.total}${m}\n`);
  };
}

function findDataset(catalog: Catalog, ref: string | undefined): DatasetSummary {
  if (!ref) throw new CliError('--dataset is required');
  const byName = catalog.findDatasetByName(ref);
  if (byName) return byName;
  const id = Number(ref);
  const byId = Number.isInteger(id) ? catalog.getDataset(id) : null;
  if (!byId) throw new CliError(`No dataset named or numbered "${ref}" (see "almostrec datasets")`);
  return byId;
}

/** `--param key=value` flags as numbers; the schema of the command checks keys and ranges. */
function params(flags: Flags): Record<string, number> {
  const out: Record<string, number> = {};
  for (const kv of flags.param ?? []) {
    const [key, value] = kv.split('=');
    const n = Number(value);
    if (!key || value === undefined || value.trim() === '' || !Number.isFinite(n)) throw new CliError(`--param expects key=number (got "${kv}")`);
    out[key.trim()] = n;
  }
  return out;
}

function findBackbone(catalog: Catalog, ref: string | undefined): BackboneSummary {
  if (!ref) throw new CliError('Expected a backbone name or id');
  const byName = catalog.findBackboneByName(ref);
  if (byName) return byName;
  const id = Number(ref);
  const byId = Number.isInteger(id) && id > 0 ? catalog.getBackbone(id) : null;
  if (!byId) throw new CliError(`No backbone named or numbered "${ref}" (see "almostrec backbone list")`);
  return byId;
}

function describeBackbone(b: BackboneSummary): string {
  const size = b.parameters != null ? `${b.parameters.toLocaleString('en-US')} parameters` : '—';
  return `${b.id}\t${b.name}\t${b.source}\t${b.status}\t${b.datasetName ?? '—'}\t${b.architecture ?? '—'}\t${size}\t${b.path}`;
}

/** The row without its step history: one short JSON line, whatever the number of steps. */
function summary(catalog: Catalog, backboneId: number): BackboneSummary {
  const { history: _history, ...rest } = catalog.getBackbone(backboneId)!;
  return rest;
}

/** A backbone by name or id, or a llava-hf folder (registered under its folder name the first time). */
async function backboneFor(catalog: Catalog, ref: string): Promise<BackboneSummary> {
  const path = resolve(ref);
  if (!existsSync(path)) return findBackbone(catalog, ref);
  const known = catalog.listBackbones().find((b) => b.path === path);
  if (known) return known;
  const { registerHfBackbone } = await import('../core/jobs/backbone-jobs');
  const name = uniqueName(basename(path), catalog.listBackbones().map((b) => b.name));
  const id = registerHfBackbone(catalog, path, name);
  process.stderr.write(`Registered ${path} as backbone "${name}" (id ${id})\n`);
  return catalog.getBackbone(id)!;
}

/** The hyper-parameters a training command's flags give (the model's schema checks keys and ranges). */
async function configFlags(catalog: Catalog, flags: Flags, model: ModelKind): Promise<Record<string, number>> {
  const partial = Object.fromEntries(
    Object.entries({
      epochs: num(flags, 'epochs', 'epochs'),
      seed: num(flags, 'seed', 'seed'),
      maxLen: num(flags, 'max-len', 'max-len'),
      batchSize: num(flags, 'batch-size', 'batch-size'),
      learningRate: num(flags, 'lr', 'lr'),
      patience: num(flags, 'patience', 'patience'),
      evalEvery: num(flags, 'eval-every', 'eval-every')
    }).filter(([, v]) => v !== undefined)
  ) as Record<string, number>;
  Object.assign(partial, params(flags));
  if (flags['seq-run'] !== undefined || flags.backbone !== undefined) {
    if (!usesBackbone(model)) throw new CliError(`--seq-run and --backbone apply to the models on a backbone only (${MODEL_KINDS.filter(usesBackbone).join(', ')})`);
    if (flags['seq-run'] !== undefined) {
      if (!modelDescriptor(model).params.some((p) => p.key === 'seqRunId')) throw new CliError(`${model} reads titles, not item IDs: --seq-run does not apply`);
      partial.seqRunId = num(flags, 'seq-run', 'seq-run')!;
    }
    if (flags.backbone !== undefined) partial.backboneId = (await backboneFor(catalog, flags.backbone)).id;
  }
  return partial;
}

/** A run's status as the list shows it: a run whose process died reads "interrupted", not "failed". */
function statusText(r: RunSummary): string {
  return r.status === 'failed' && isInterruptedError(r.error) ? 'interrupted' : r.status;
}

/** Trains (or resumes) a run in this process; a failure says how to continue. */
async function trainInProcess(catalog: Catalog, dataDir: string, runId: number, resume: boolean): Promise<void> {
  try {
    await runJobInProcess(catalog, dataDir, { kind: 'train', runId, resume });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new CliError(`Run ${runId}: ${message} (continue with "almostrec resume ${runId}")`);
  }
}

async function pretrainInProcess(catalog: Catalog, dataDir: string, backboneId: number, resume: boolean): Promise<void> {
  try {
    await runJobInProcess(catalog, dataDir, { kind: 'pretrain', backboneId, resume });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new CliError(`Backbone ${backboneId}: ${message} (continue with "almostrec backbone resume ${backboneId}")`);
  }
}

async function backboneCommand(catalog: Catalog, dataDir: string, flags: Flags, args: string[]): Promise<void> {
  const json = flags.json === true;
  const [sub, arg] = args;
  switch (sub) {
    case 'list':
      for (const b of catalog.listBackbones()) out(json, b, describeBackbone(b));
      return;
    case 'register': {
      if (!arg || !flags.name) throw new CliError('Usage: almostrec backbone register <path> --name B');
      const name = flags.name.trim();
      if (catalog.findBackboneByName(name)) throw new CliError(`A backbone named "${name}" already exists`);
      const folder = resolve(arg);
      if (!existsSync(folder)) throw new CliError(`Folder ${folder} not found`);
      const { registerHfBackbone } = await import('../core/jobs/backbone-jobs');
      const b = summary(catalog, registerHfBackbone(catalog, folder, name));
      out(json, b, `Registered "${b.name}" (id ${b.id}): ${b.architecture ?? 'architecture unknown'}`);
      return;
    }
    case 'features': {
      const b = findBackbone(catalog, flags.backbone);
      const ds = findDataset(catalog, flags.dataset);
      const k = tokenCount(flags.k);
      if (b.status !== 'succeeded') throw new CliError(`Backbone "${b.name}" is ${b.status}; visual tokens need a finished backbone`);
      const result = await runJobInProcess(catalog, dataDir, { kind: 'backbone-features', backboneId: b.id, datasetId: ds.id, k });
      if (result.kind !== 'backbone-features') throw new Error('unexpected job result');
      const { encoded, cached, withoutImage } = result;
      out(json, { backboneId: b.id, datasetId: ds.id, k, encoded, cached, withoutImage }, `Visual tokens (k = ${k}) of "${b.name}" for ${ds.name}: ${encoded} encoded, ${cached} already cached, ${withoutImage} items without an image`);
      return;
    }
    case 'resume': {
      const b = findBackbone(catalog, arg);
      if (b.source !== 'pretrained' || (b.status !== 'failed' && b.status !== 'cancelled')) {
        throw new CliError(`Backbone "${b.name}" is ${b.source === 'pretrained' ? b.status : 'a registered checkpoint'}; only failed or cancelled pretraining can be resumed`);
      }
      if (b.datasetId === null) throw new CliError(`Backbone "${b.name}" cannot be resumed: the dataset it was pretrained on has been deleted`);
      await pretrainInProcess(catalog, dataDir, b.id, true);
      const done = summary(catalog, b.id);
      out(json, done, describeBackbone(done));
      return;
    }
    case 'delete': {
      const b = findBackbone(catalog, arg);
      catalog.deleteBackbone(b.id);
      const removed = removeBackboneFiles(dataDir, b);
      out(json, { deleted: true, backboneId: b.id, removedFolder: removed }, `Deleted backbone "${b.name}"${removed ? ` and ${removed}` : ''}`);
      return;
    }
    default:
      throw new CliError(`Usage: almostrec backbone <list | register | features | resume | delete> (got "${sub ?? ''}")`);
  }
}

/** Training flags that only a new study takes (a resumed one keeps the config its runs were created with). */
const STUDY_FLAGS = ['dataset', 'epochs', 'seed', 'max-len', 'batch-size', 'lr', 'patience', 'eval-every', 'param', 'seq-run', 'backbone', 'gru4rec-run'] as const;

/** A study's variants in Figure 3's order, one line each: what ran, how it ended, its metrics. */
function printStudy(catalog: Catalog, studyId: number, json: boolean): void {
  for (const v of readAblationStudy(catalog, studyId)?.variants ?? []) {
    const r = v.run;
    out(
      json,
      { studyId, variant: v.variant, label: v.label, runId: r.id, status: r.status, bestEpoch: r.bestEpoch, valid: r.valid, test: r.test, error: r.error },
      `${v.variant}\t${v.label}\trun ${r.id}\t${r.status}\tvalid NDCG@10 ${r.valid ? r.valid.ndcg10.toFixed(4) : '—'}\ttest ${fmt(r.test)}`
    );
  }
}

/**
 * `almostrec ablation`: creates the study as the app's ablation.start does (same checks, same runs) and trains
 * it with the app's ablation job in this process; `--resume S` continues a study as ablation.resume does.
 */
async function ablationCommand(catalog: Catalog, dataDir: string, flags: Flags): Promise<void> {
  const json = flags.json === true;
  let studyId: number;
  let runIds: number[];
  if (flags.resume !== undefined) {
    const extra = STUDY_FLAGS.find((k) => flags[k] !== undefined);
    if (extra) throw new CliError(`--resume continues a study with the settings it was created with; --${extra} does not apply`);
    studyId = Number(flags.resume);
    if (!Number.isInteger(studyId) || studyId <= 0) throw new CliError(`--resume expects a study id (its full-model run's id), got "${flags.resume}"`);
    const s = readAblationStudy(catalog, studyId);
    if (!s) throw new CliError(`No ablation study ${studyId} (a study's id is its full-model run's id)`);
    if (s.variants.every((v) => v.run.status === 'succeeded')) throw new CliError(`Every variant of ablation study ${studyId} has finished`);
    const busy = s.variants.find((v) => v.run.status === 'running');
    if (busy) throw new CliError(`Run ${busy.run.id} (${busy.label}) is marked running: another process (the app, another CLI) may be training it`);
    runIds = s.variants.map((v) => v.run.id);
    const left = s.variants.filter((v) => v.run.status !== 'succeeded').length;
    process.stderr.write(`Ablation study ${studyId} on ${s.datasetName}: resuming ${left} of ${runIds.length} variants\n`);
  } else {
    const ds = findDataset(catalog, flags.dataset);
    const gru4recRunId = flags['gru4rec-run'] === undefined ? undefined : runId(flags['gru4rec-run']);
    // The app's ablation.start: the full config checked like train.start, references resolved, runs created at once.
    const created = createAblationStudy(catalog, ds.id, await configFlags(catalog, flags, 'almostrec'), { gru4recRunId, backend: null });
    ({ studyId, runIds } = created);
    for (const sk of created.skipped) process.stderr.write(`Left out ${ablationVariantInfo(sk.id)!.label}: ${sk.reason}\n`);
    process.stderr.write(`Ablation study ${studyId} on ${ds.name}: ${runIds.length} variants (${created.variants.join(', ')}), one after another\n`);
  }
  try {
    await runJobInProcess(catalog, dataDir, { kind: 'ablation', studyId, runIds });
  } catch (err) {
    // What finished is worth printing; a failed or cancelled variant continues from its checkpoint on resume.
    printStudy(catalog, studyId, json);
    const message = err instanceof Error ? err.message : String(err);
    throw new CliError(`Ablation study ${studyId}: ${message} (continue with "almostrec ablation --resume ${studyId}")`);
  }
  printStudy(catalog, studyId, json);
}

function tokenCount(v: string | undefined): VisualTokenCount {
  if (v === undefined) return 1;
  const k = VISUAL_TOKEN_COUNTS.find((c) => String(c) === v.trim());
  if (k === undefined) throw new CliError(`--k must be one of ${VISUAL_TOKEN_COUNTS.join(', ')} (got "${v}")`);
  return k;
}

function runId(ref: string | undefined): number {
  const id = Number(ref);
  if (!ref || !Number.isInteger(id) || id <= 0) throw new CliError(`Expected a run id, got "${ref ?? ''}"`);
  return id;
}

function fmt(m: RunSummary['test']): string {
  return m ? `HR@10 ${m.hr10.toFixed(4)} NDCG@10 ${m.ndcg10.toFixed(4)} HR@20 ${m.hr20.toFixed(4)} NDCG@20 ${m.ndcg20.toFixed(4)} MRR ${m.mrr.toFixed(4)}` : '—';
}

function parseColumns(spec: string | undefined): Record<string, string> | undefined {
  if (!spec) return undefined;
  const cols: Record<string, string> = {};
  for (const pair of spec.split(',')) {
    const [k, v] = pair.split('=');
    if (!k || !v) throw new CliError(`--columns expects key=column pairs separated by commas (got "${pair}")`);
    cols[k.trim()] = v.trim();
  }
  return cols;
}

async function runJobInProcess(catalog: Catalog, dataDir: string, request: Parameters<typeof executeJob>[0]) {
  const controller = new AbortController();
  const onSigint = () => {
    process.stderr.write('Cancelling…\n');
    controller.abort();
  };
  process.once('SIGINT', onSigint);
  try {
    return await executeJob(request, {
      catalog,
      dataDir,
      signal: controller.signal,
      onProgress: progressPrinter(),
      onLog: (m) => process.stderr.write(`${m}\n`)
    });
  } finally {
    process.off('SIGINT', onSigint);
  }
}

async function main(argv: string[]): Promise<void> {
  const { values: flags, positionals } = parse(argv);
  const [command, ...rest] = positionals;
  if (flags.help || !command) {
    process.stdout.write(`${USAGE}\n`);
    if (!command && !flags.help) process.exitCode = 2;
    return;
  }
  // Needs no catalog.
  if (command === 'backends') return backendsCommand(flags.json === true);
  const dbPath = resolve(flags.db ?? catalogPath(defaultDataDir()));
  const dataDir = dirname(dbPath);
  mkdirSync(dataDir, { recursive: true });
  claimDataDir(dataDir, dbPath);
  const json = flags.json === true;
  const catalog = Catalog.open(dbPath);
  try {
    // What a killed process (this CLI or the app) left running shows as interrupted, whatever the command;
    // a live process's job (the app training while this lists runs) is left alone (ownership.ts).
    const swept = catalog.sweepOrphans(true);
    for (const id of swept.runs) process.stderr.write(`Run ${id} was interrupted (its process is gone): continue it with "almostrec resume ${id}"\n`);
    for (const id of swept.backbones) process.stderr.write(`Backbone ${id} was interrupted (its process is gone): continue it with "almostrec backbone resume ${id}"\n`);
    switch (command) {
      case 'import': {
        const [format, path] = rest;
        if (!format || !path) throw new CliError('Usage: almostrec import <format> <path> --name N');
        const input = importInputSchema.parse({
          format,
          path: resolve(path),
          name: flags.name ?? '',
          options: {
            itemsCsv: flags['items-csv'] ? resolve(flags['items-csv']) : undefined,
            imagesDir: flags.images ? resolve(flags.images) : undefined,
            delimiter: flags.delimiter,
            columns: parseColumns(flags.columns)
          }
        });
        const result = await runJobInProcess(catalog, dataDir, { kind: 'import', input });
        if (result.kind !== 'import') throw new Error('unexpected job result');
        const ds = catalog.getDataset(result.datasetId)!;
        out(json, { dataset: ds }, `Imported "${ds.name}" (id ${ds.id}): ${ds.stats.users} users, ${ds.stats.items} items, ${ds.stats.interactions} interactions, ${result.warnings.length} warnings`);
        break;
      }
      case 'datasets':
        for (const ds of catalog.listDatasets()) {
          out(json, ds, `${ds.id}\t${ds.name}\t${ds.format}\t${ds.stats.users} users\t${ds.stats.items} items\t${ds.stats.interactions} interactions`);
        }
        break;
      case 'train': {
        const model = rest[0] as ModelKind | undefined;
        if (!model || !MODEL_KINDS.includes(model)) throw new CliError(`Usage: almostrec train <${MODEL_KINDS.join('|')}> --dataset N`);
        if (!isAvailable(model)) throw new CliError(`Model ${model} is not available in this build`);
        const ds = findDataset(catalog, flags.dataset);
        const config = parseModelConfig(model, await configFlags(catalog, flags, model));
        // As the app's train.start: refuse unusable references before a run row exists.
        if (usesBackbone(model)) resolveAlmostrecReferences(catalog, ds.id, config as unknown as AlmostrecConfig, modelDescriptor(model).label);
        const id = catalog.createRun({ datasetId: ds.id, model, config, backend: null });
        process.stderr.write(`Run ${id}: training ${model} on ${ds.name}\n`);
        await trainInProcess(catalog, dataDir, id, false);
        const run = catalog.getRun(id)!;
        out(json, run, `Run ${id} ${run.status} (best epoch ${run.bestEpoch ?? '—'})\n  valid: ${fmt(run.valid)}\n  test:  ${fmt(run.test)}`);
        break;
      }
      case 'resume': {
        const id = runId(rest[0]);
        const run = catalog.getRun(id);
        if (!run) throw new CliError(`Run ${id} not found`);
        // As the app's train.resume; a run still running here belongs to a live process (the sweep above).
        if (run.status === 'running' || run.status === 'queued') throw new CliError(`Run ${id} is ${run.status} in another process (the app or another CLI); resume it once that has stopped`);
        if (run.status === 'succeeded') throw new CliError(`Run ${id} has finished; only interrupted, failed or cancelled runs can be resumed`);
        if (!isAvailable(run.model)) throw new CliError(`Model ${run.model} is not available in this build`);
        process.stderr.write(`Run ${id}: resuming ${run.model} on ${run.datasetName}\n`);
        await trainInProcess(catalog, dataDir, id, true);
        const done = catalog.getRun(id)!;
        out(json, done, `Run ${id} ${done.status} (best epoch ${done.bestEpoch ?? '—'})\n  valid: ${fmt(done.valid)}\n  test:  ${fmt(done.test)}`);
        break;
      }
      case 'ablation':
        if (rest.length > 0) throw new CliError(`Usage: almostrec ablation --dataset N [options] | almostrec ablation --resume <study> (got "${rest[0]}")`);
        await ablationCommand(catalog, dataDir, flags);
        break;
      case 'eval': {
        const id = runId(rest[0]);
        await runJobInProcess(catalog, dataDir, { kind: 'evaluate', runId: id });
        const run = catalog.getRun(id)!;
        out(json, { runId: id, valid: run.valid, test: run.test }, `Run ${id}\n  valid: ${fmt(run.valid)}\n  test:  ${fmt(run.test)}`);
        break;
      }
      case 'recommend': {
        const id = runId(rest[0]);
        const run = catalog.getRun(id);
        if (!run) throw new CliError(`Run ${id} not found`);
        if (!flags.user) throw new CliError('--user is required');
        const user = catalog.searchUsers(run.datasetId, flags.user, 500).users.find((u) => u.externalId === flags.user);
        if (!user) throw new CliError(`User "${flags.user}" not found in dataset ${run.datasetName}`);
        const k = num(flags, 'k', 'k') ?? 10;
        if (!Number.isInteger(k) || k < 1 || k > 1000) throw new CliError('--k must be an integer between 1 and 1000');
        const recs = await recommendForUser(catalog, id, user.id, k);
        if (recs.length === 0) process.stderr.write(`User ${user.externalId} has no unseen items left to recommend\n`);
        for (const r of recs) out(json, { user: user.externalId, ...r }, `${r.rank + 1}\t${r.externalId}\t${r.score.toFixed(4)}\t${r.title}`);
        break;
      }
      case 'recommendations': {
        const written = recommendationsCommand(catalog, runId(rest[0]), { k: num(flags, 'k', 'k'), out: flags.out });
        if (written.path) out(json, written, `${written.rows} recommendations of ${written.users} users → ${written.path}`);
        break;
      }
      case 'figure': {
        if (rest[0] !== 'case-study') throw new CliError('Usage: almostrec figure case-study --runs R1,R2 --user U --out FILE.svg|FILE.png [--k K] [--dpi D]');
        const f = caseStudyFigureCommand(catalog, { runs: flags.runs, user: flags.user, k: num(flags, 'k', 'k'), dpi: num(flags, 'dpi', 'dpi'), out: flags.out });
        const size = f.pixels ? `${f.pixels.width} × ${f.pixels.height} px at ${f.dpi} dpi` : `${f.widthPt} × ${f.heightPt} pt`;
        out(json, f, `Case study → ${f.path} (${size})`);
        break;
      }
      case 'runs': {
        const ds = flags.dataset ? findDataset(catalog, flags.dataset) : null;
        for (const r of catalog.listRuns(ds?.id)) {
          out(json, r, `${r.id}\t${r.datasetName}\t${r.model}\t${statusText(r)}\tvalid NDCG@10 ${r.valid ? r.valid.ndcg10.toFixed(4) : '—'}\ttest ${fmt(r.test)}`);
        }
        break;
      }
      case 'pretrain': {
        const ds = findDataset(catalog, flags.dataset);
        const config = parsePretrainConfig(params(flags));
        const name = flags.name?.trim() || defaultBackboneName(ds.name, catalog.listBackbones().map((b) => b.name));
        if (catalog.findBackboneByName(name)) throw new CliError(`A backbone named "${name}" already exists (choose another with --name)`);
        const id = createPretrainedBackbone(catalog, dataDir, { name, datasetId: ds.id, config });
        process.stderr.write(`Backbone ${id}: pretraining "${name}" on ${ds.name}\n`);
        await pretrainInProcess(catalog, dataDir, id, false);
        const b = summary(catalog, id);
        out(json, b, `Backbone ${id} "${b.name}" ${b.status}: ${b.architecture ?? '—'}${b.parameters != null ? `, ${b.parameters.toLocaleString('en-US')} parameters` : ''}\n  ${b.path}`);
        break;
      }
      case 'backbone':
        await backboneCommand(catalog, dataDir, flags, rest);
        break;
      case 'adapters': {
        const ds = flags.dataset ? findDataset(catalog, flags.dataset) : null;
        const bb = flags.backbone ? findBackbone(catalog, flags.backbone) : null;
        for (const a of catalog.listAdapters({ datasetId: ds?.id, backboneId: bb?.id })) {
          out(json, a, `${a.runId}\t${a.name}\t${a.model}\t${a.datasetName}\t${a.backboneName ?? '—'}\t${a.source}\t${(a.sizeBytes / 2 ** 20).toFixed(2)} MiB\t${a.contentHash.slice(0, 12)}\ttest ${fmt(a.test)}`);
        }
        break;
      }
      case 'export': {
        const id = runId(rest[0]);
        const format = flags.format as AdapterExportFormat | undefined;
        if (!format || !ADAPTER_EXPORT_FORMATS.includes(format)) throw new CliError(`--format must be ${ADAPTER_EXPORT_FORMATS.join(' or ')}`);
        if (!flags.out) throw new CliError('--out DIR is required');
        const r = await exportAdapter(catalog, id, format, resolve(flags.out), flags.force === true);
        out(json, { runId: id, ...r }, `Exported run ${id} (${format}) to ${r.path}: ${r.files.join(', ')} in ${r.seconds.toFixed(2)} s`);
        break;
      }
      case 'import-adapter': {
        if (!rest[0]) throw new CliError('Usage: almostrec import-adapter <dir> [--name N]');
        const imported = await importAdapter(catalog, dataDir, resolve(rest[0]), { name: flags.name });
        process.stderr.write(`Run ${imported.runId}: imported "${imported.name}"; evaluating it\n`);
        try {
          await runJobInProcess(catalog, dataDir, { kind: 'evaluate', runId: imported.runId });
        } catch (e) {
          // All or nothing: an adapter that cannot be scored here is not left behind half imported.
          catalog.deleteRun(imported.runId);
          rmSync(runCheckpointDir(dataDir, imported.runId), { recursive: true, force: true });
          throw e;
        }
        const run = catalog.getRun(imported.runId)!;
        out(json, { ...catalog.getAdapter(imported.runId), valid: run.valid, test: run.test }, `Run ${run.id} ${run.model} on ${run.datasetName} (imported)\n  valid: ${fmt(run.valid)}\n  test:  ${fmt(run.test)}`);
        break;
      }
      default:
        throw new CliError(`Unknown command "${command}". Run "almostrec --help".`);
    }
  } finally {
    catalog.close();
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  const e = err as Error & { issues?: { path: PropertyKey[]; message: string }[] };
  const message = e?.issues
    ? e.issues.map((i) => `${i.path.join('.') || 'input'}: ${i.message}`).join('; ')
    : e instanceof Error
      ? e.message
      : String(err);
  process.stderr.write(`almostrec: ${message.split('\n')[0]}\n`);
  process.exit(1);
});
