// `npm run bench -- llm-baselines --dataset D --catalog FILE [--epochs E] [--param key=value …]`: the LLM
// recommenders of Table 2 that this build has, besides ALMOSTREC, trained one after another on a catalog
// that already holds what they read — typically the one `bench table2 --catalog FILE` left: the dataset's
// latest finished SASRec run (M) and backbone pretrained on it (or --param seqRunId=… / backboneId=…).
// Each is an `almostrec train <kind>` CLI process (the app's job code). Prints one JSON line per model
// (epochs, s/epoch, wall, validation and test metrics, as bench table2's lines; LLaRA also its HR@1 and valid
// ratio over candidates), then
// {"llm_baselines_wall_sec": …}. Model selection is on validation only; test is read once per run.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { MODEL_CATALOG, modelDescriptor, usesBackbone, type ModelKind } from '../shared/models';
import { Catalog } from '../core/catalog';
import { isAvailable } from '../core/models/registry';
import { parseParams, pickAblationRefs } from './bench-ablation';
import { cli, runLine } from './bench-table2';

const log = (msg: string) => process.stderr.write(msg + '\n');

export interface LlmBenchOptions {
  dataset: string;
  catalog: string;
  /** Epochs per model (ALMOSTREC's Table 2 budget by default, so the rows compare). */
  epochs: number;
  /** Hyper-parameters given to every model (key=value), seqRunId and backboneId included if given. */
  params: string[];
}

/** The LLM baselines of this build, in catalogue order: every model on a backbone but ALMOSTREC itself. */
export function llmBaselineKinds(available: (kind: ModelKind) => boolean = isAvailable): ModelKind[] {
  return MODEL_CATALOG.filter((m) => m.kind !== 'almostrec' && usesBackbone(m.kind) && available(m.kind)).map((m) => m.kind);
}

/** A model's own figures recorded beside the run (LLaRA: HR@1 and valid ratio over its candidates). */
function ownFigures(catalog: Catalog, runId: number): Record<string, unknown> {
  const file = catalog.getArtifacts(runId).find((a) => a.kind === 'llara_eval');
  if (!file) return {};
  const e = JSON.parse(readFileSync(file.path, 'utf8')) as { candidates: number; valid: { hr1: number; validRatio: number }; test: { hr1: number; validRatio: number } };
  const r = (x: number) => Math.round(x * 1e6) / 1e6;
  return { candidates: e.candidates, hr1: { valid: r(e.valid.hr1), test: r(e.test.hr1) }, valid_ratio: { valid: r(e.valid.validRatio), test: r(e.test.validRatio) } };
}

export async function benchLlmBaselines(o: LlmBenchOptions): Promise<void> {
  const started = performance.now();
  const db = resolve(o.catalog);
  if (!existsSync(db)) throw new Error(`catalog ${db} not found (run \`bench table2 --dataset ${o.dataset} --catalog ${o.catalog}\` first)`);
  const params = parseParams(o.params);
  const catalog = Catalog.open(db);
  let refs;
  try {
    refs = pickAblationRefs(catalog, o.dataset, params);
  } finally {
    catalog.close();
  }
  const kinds = llmBaselineKinds();
  log(`LLM baselines on ${refs.datasetName}: ${kinds.join(', ')}; SASRec run ${refs.seqRunId}, backbone ${refs.backboneId}, ${o.epochs} epoch(s) each`);
  const given: Record<string, number> = { ...params, seqRunId: refs.seqRunId, backboneId: refs.backboneId };
  for (const kind of kinds) {
    // Each model gets the settings it has (TALLRec reads no item IDs: no seqRunId).
    const keys = new Set(modelDescriptor(kind).params.map((p) => p.key));
    const flags = Object.entries(given)
      .filter(([k]) => keys.has(k))
      .flatMap(([k, v]) => ['--param', `${k}=${v}`]);
    const r = await cli(db, kind, ['train', kind, '--dataset', refs.datasetName, '--epochs', String(o.epochs), ...flags]);
    const after = Catalog.open(db);
    try {
      const run = after.getRun(Number(r.json.id));
      if (!run) throw new Error(`run ${String(r.json.id)} (${kind}) is not in the catalog`);
      console.log(runLine(refs.datasetName, run, r.seconds, { seq_run: keys.has('seqRunId') ? refs.seqRunId : null, backbone: refs.backboneId, ...ownFigures(after, run.id) }));
    } finally {
      after.close();
    }
  }
  console.log(JSON.stringify({ llm_baselines_wall_sec: Math.round((performance.now() - started) / 1000), models: kinds }));
}
