// `npm run bench -- llm-baselines --dataset D --catalog FILE [--epochs E] [--param key=value …]`: the LLM
// recommenders of Table 2 that this build has, besides ALMOSTREC, trained one after another on a catalog
// that already holds what they read — typically the one `bench table2 --catalog FILE` left: the dataset's
// latest finished SASRec run (M) and backbone pretrained on it (or --param seqRunId=… / backboneId=…).
// Each is an `almostrec train <kind>` CLI process (the app's job code). Prints one JSON line per model
// (epochs, s/epoch, wall, validation and test metrics, as bench table2's lines), then
// {"llm_baselines_wall_sec": …}. Model selection is on validation only; test is read once per run.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { MODEL_CATALOG, usesBackbone, type ModelKind } from '../shared/models';
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
  const shared = Object.entries({ ...params, seqRunId: refs.seqRunId, backboneId: refs.backboneId }).flatMap(([k, v]) => ['--param', `${k}=${v}`]);
  for (const kind of kinds) {
    const r = await cli(db, kind, ['train', kind, '--dataset', refs.datasetName, '--epochs', String(o.epochs), ...shared]);
    const after = Catalog.open(db);
    try {
      const run = after.getRun(Number(r.json.id));
      if (!run) throw new Error(`run ${String(r.json.id)} (${kind}) is not in the catalog`);
      console.log(runLine(refs.datasetName, run, r.seconds, { seq_run: refs.seqRunId, backbone: refs.backboneId }));
    } finally {
      after.close();
    }
  }
  console.log(JSON.stringify({ llm_baselines_wall_sec: Math.round((performance.now() - started) / 1000), models: kinds }));
}
