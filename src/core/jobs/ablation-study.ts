// Creating and reading ALMOSTREC ablation studies. A study is its runs (shared/ablation.ts): created here
// all at once, 'queued', each tagged with the study id and its variant, then trained one after another by
// the ablation job (ablation-job.ts).
import {
  ABLATION_STUDY_KEY,
  ABLATION_VARIANTS,
  ABLATION_VARIANT_KEY,
  ablationStudyOf,
  ablationVariantInfo,
  ablationVariantOf,
  planAblation,
  type AblationStudyVariant,
  type AblationVariantId,
  type SkippedVariant
} from '../../shared/ablation';
import { parseModelConfig } from '../../shared/api';
import type { BackendInfo, RunSummary } from '../../shared/types';
import type { Catalog } from '../catalog';
import { InvalidReferenceError, resolveAlmostrecReferences } from '../models/almostrec-references';

export interface CreatedStudy {
  studyId: number;
  /** In training order (Figure 3's). */
  runIds: number[];
  variants: AblationVariantId[];
  skipped: SkippedVariant[];
}

export interface StudyOptions {
  /** The GRU4Rec run for the "GRU4Rec IDs" variant; absent: the dataset's best by validation NDCG@10, if any. */
  gru4recRunId?: number;
  backend: BackendInfo | null;
}

/** Validation NDCG@10 of a run, −∞ without one (never chosen on test). */
const validNdcg = (r: RunSummary): number => r.valid?.ndcg10 ?? -Infinity;

/** The finished GRU4Rec run of the dataset with usable item embeddings and the best validation NDCG@10 (ties: newest). */
function bestGru4recRun(catalog: Catalog, datasetId: number, backboneId: number): number | null {
  const usable = catalog.listRuns(datasetId).filter((r) => {
    if (r.model !== 'gru4rec' || r.status !== 'succeeded') return false;
    try {
      resolveAlmostrecReferences(catalog, datasetId, { backboneId, seqRunId: r.id });
      return true;
    } catch {
      return false; // e.g. an old run without an item_embeddings artifact
    }
  });
  usable.sort((a, b) => validNdcg(b) - validNdcg(a) || b.id - a.id);
  return usable[0]?.id ?? null;
}

/**
 * Checks the full model's config like train.start does, plans the variants and creates their runs in one
 * transaction. Throws (with what to fix) before anything is written when a reference is unusable.
 */
export function createAblationStudy(catalog: Catalog, datasetId: number, rawConfig: Record<string, number>, opts: StudyOptions): CreatedStudy {
  const full = parseModelConfig('almostrec', rawConfig);
  const refs = resolveAlmostrecReferences(catalog, datasetId, { backboneId: full.backboneId, seqRunId: full.seqRunId });
  let gru4recRunId: number | null;
  if (opts.gru4recRunId !== undefined) {
    const given = resolveAlmostrecReferences(catalog, datasetId, { backboneId: full.backboneId, seqRunId: opts.gru4recRunId });
    if (given.seqRun.model !== 'gru4rec') throw new InvalidReferenceError(`Ablation: run ${given.seqRun.id} is a ${given.seqRun.model} run, not GRU4Rec`);
    gru4recRunId = given.seqRun.id;
  } else {
    gru4recRunId = bestGru4recRun(catalog, datasetId, full.backboneId);
  }
  const { variants, skipped } = planAblation({ full, seqRunModel: refs.seqRun.model, gru4recRunId });

  const runIds = catalog.db.transaction(() => {
    const ids: number[] = [];
    const tagged = (i: number, studyId: number) => ({ ...variants[i].config, [ABLATION_STUDY_KEY]: studyId, [ABLATION_VARIANT_KEY]: variants[i].id });
    for (const [i, v] of variants.entries()) {
      ids.push(catalog.createRun({ datasetId, model: 'almostrec', config: i === 0 ? v.config : tagged(i, ids[0]), backend: opts.backend }));
    }
    // The study is named after its first run (the full model), whose id exists only once it is inserted.
    catalog.updateRun(ids[0], { config: tagged(0, ids[0]) });
    return ids;
  })();
  return { studyId: runIds[0], runIds, variants: variants.map((v) => v.id), skipped };
}

/** The study's runs in Figure 3's order (then by id), each with its variant. */
function variantsOf(runs: readonly RunSummary[]): AblationStudyVariant[] {
  const order = (v: AblationVariantId) => ABLATION_VARIANTS.findIndex((x) => x.id === v);
  return runs
    .flatMap((run) => {
      const variant = ablationVariantOf(run.config);
      return variant ? [{ variant, label: ablationVariantInfo(variant)!.label, run }] : [];
    })
    .sort((a, b) => order(a.variant) - order(b.variant) || a.run.id - b.run.id);
}

/** Every study among `runs` (a dataset's), newest first. */
export function groupAblationStudies(runs: readonly RunSummary[]): { id: number; datasetId: number; datasetName: string; variants: AblationStudyVariant[] }[] {
  const byStudy = new Map<number, RunSummary[]>();
  for (const r of runs) {
    const id = ablationStudyOf(r.config);
    if (id === null) continue;
    const list = byStudy.get(id);
    if (list) list.push(r);
    else byStudy.set(id, [r]);
  }
  return [...byStudy.entries()]
    .sort(([a], [b]) => b - a)
    .map(([id, list]) => ({ id, datasetId: list[0].datasetId, datasetName: list[0].datasetName, variants: variantsOf(list) }));
}

/** The study's runs, or null when none is left. */
export function readAblationStudy(catalog: Catalog, studyId: number): ReturnType<typeof groupAblationStudies>[number] | null {
  // The study id is its full-model run's id; when that run was deleted, look through every dataset.
  const datasetId = catalog.getRun(studyId)?.datasetId;
  return groupAblationStudies(catalog.listRuns(datasetId)).find((s) => s.id === studyId) ?? null;
}
