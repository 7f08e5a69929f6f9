// ALMOSTREC's ablation study (paper §5.3–5.4, Figure 3): the variants and how each one changes the full
// model's config. Plain data and pure functions (the renderer imports this file directly), like models.ts.
//
// A study is bookkeeping on its runs, not a table of its own: every run of a study carries the study id and
// its variant in its config (beside backboneName & co.), so a run read anywhere — Runs view, CLI, exports —
// says what it is, and Table 2 can leave the ablated variants out of the ALMOSTREC row.
import type { RunSummary } from './types';

/** Run-config key: the study a run belongs to (the id of the study's full-model run). */
export const ABLATION_STUDY_KEY = 'ablationStudy';
/** Run-config key: which variant of its study the run is (an AblationVariantId). */
export const ABLATION_VARIANT_KEY = 'ablationVariant';

export type AblationVariantId = 'full' | 'no-images' | 'no-text' | 'no-pretrained-ids' | 'gru4rec' | 'no-lora' | 'concat';

export interface AblationVariantInfo {
  id: AblationVariantId;
  /** As in the paper's Figure 3. */
  label: string;
  description: string;
  /** The hyper-parameters this variant changes (the GRU4Rec one changes seqRunId to the GRU4Rec run). */
  overrides: Readonly<Record<string, number>>;
}

/**
 * Figure 3's order: the full model first, then one component taken away (or swapped) at a time; last the
 * input layout of eq. 1 against the interleaved one (the concat layout trains only its last position).
 */
export const ABLATION_VARIANTS: readonly AblationVariantInfo[] = [
  { id: 'full', label: 'ALMOSTREC', description: 'the full model as configured', overrides: {} },
  { id: 'no-images', label: 'w/o images', description: 'no visual tokens (useImages 0)', overrides: { useImages: 0 } },
  { id: 'no-text', label: 'w/o text', description: 'no prompt text (useText 0)', overrides: { useText: 0 } },
  {
    id: 'no-pretrained-ids',
    label: 'w/o pretrained IDs',
    description: 'M replaced by a frozen random table (pretrainedIds 0)',
    overrides: { pretrainedIds: 0 }
  },
  { id: 'gru4rec', label: 'GRU4Rec IDs', description: 'M from a GRU4Rec run instead of SASRec', overrides: {} },
  { id: 'no-lora', label: 'w/o LoRA', description: 'only the adapters W^B and W^T train (useLora 0)', overrides: { useLora: 0 } },
  {
    id: 'concat',
    label: 'concat layout (eq. 1)',
    description: 'V, T, S concatenated as in eq. 1; only the last position trains (layout 0)',
    overrides: { layout: 0 }
  }
];

export function ablationVariantInfo(id: string): AblationVariantInfo | undefined {
  return ABLATION_VARIANTS.find((v) => v.id === id);
}

/** The variant's overrides that the full config already has (the variant would train the full model again). */
export function overridesAlreadyIn(v: AblationVariantInfo, full: Readonly<Record<string, unknown>>): [string, number][] {
  return Object.entries(v.overrides).filter(([key, value]) => full[key] === value);
}

export interface PlannedVariant {
  id: AblationVariantId;
  config: Record<string, number>;
}

export interface SkippedVariant {
  id: AblationVariantId;
  reason: string;
}

export interface AblationPlanInput {
  /** The full model's complete config (defaults filled in). */
  full: Record<string, number>;
  /** The model kind of the full config's sequential run ('sasrec' or 'gru4rec'). */
  seqRunModel: string;
  /** A finished GRU4Rec run on the dataset with item embeddings, or null when there is none. */
  gru4recRunId: number | null;
}

/**
 * The variants of a study in Figure 3's order. A variant that would train exactly the full model again (its
 * switch is already off, or M already comes from GRU4Rec) or that cannot be built (no GRU4Rec run) is
 * skipped with the reason, never trained twice or faked.
 */
export function planAblation({ full, seqRunModel, gru4recRunId }: AblationPlanInput): { variants: PlannedVariant[]; skipped: SkippedVariant[] } {
  const variants: PlannedVariant[] = [];
  const skipped: SkippedVariant[] = [];
  for (const v of ABLATION_VARIANTS) {
    if (v.id === 'gru4rec') {
      if (seqRunModel === 'gru4rec') skipped.push({ id: v.id, reason: 'the full model already takes M from a GRU4Rec run' });
      else if (gru4recRunId === null) skipped.push({ id: v.id, reason: 'no finished GRU4Rec run on this dataset: train GRU4Rec first' });
      else variants.push({ id: v.id, config: { ...full, seqRunId: gru4recRunId } });
      continue;
    }
    const unchanged = overridesAlreadyIn(v, full);
    if (v.id !== 'full' && unchanged.length > 0) {
      skipped.push({ id: v.id, reason: `the full model already has ${unchanged.map(([k, value]) => `${k} = ${value}`).join(', ')}` });
      continue;
    }
    variants.push({ id: v.id, config: { ...full, ...v.overrides } });
  }
  return { variants, skipped };
}

/** The study a run belongs to, or null. */
export function ablationStudyOf(config: Record<string, unknown>): number | null {
  const v = config[ABLATION_STUDY_KEY];
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : null;
}

/** The variant a run is in its study, or null when it is in none. */
export function ablationVariantOf(config: Record<string, unknown>): AblationVariantId | null {
  const v = config[ABLATION_VARIANT_KEY];
  return typeof v === 'string' && ablationVariantInfo(v) ? (v as AblationVariantId) : null;
}

/** A study's run with a component taken away: a different model, not a candidate for ALMOSTREC's Table 2 row. */
export function isAblatedRun(config: Record<string, unknown>): boolean {
  const v = ablationVariantOf(config);
  return v !== null && v !== 'full';
}

export interface AblationStudyVariant {
  variant: AblationVariantId;
  label: string;
  run: RunSummary;
}

export interface AblationStudy {
  /** The id of the study's full-model run. */
  id: number;
  datasetId: number;
  datasetName: string;
  /** In Figure 3's order. */
  variants: AblationStudyVariant[];
  /** The job training the study now, or null. */
  jobId: string | null;
  status: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
}
