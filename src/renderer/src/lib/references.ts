// Pickers for hyper-parameters that hold the id of another catalog entry (HyperParameter.refersTo): what a
// Train form offers for ALMOSTREC's backbone and sequential run, and what it says when nothing fits yet.
// Pure (no DOM, no runes): unit tests import it under node.
import type { BackboneSummary } from '../../../shared/backbones';
import type { RunSummary } from '../../../shared/types';
import { metric } from './format';
import { modelLabel, type ConfigField } from './models';

export interface PickerOption {
  value: number;
  label: string;
}

export interface Picker {
  options: PickerOption[];
  /** Shown instead of the options when there are none: what to do first. */
  empty: string;
  /** The options are still being fetched: nothing can be judged (or started) yet. */
  loading?: boolean;
}

/** Stands in for a picker until its options arrive, so the field is a picker from the start. */
export const LOADING_PICKER: Picker = { options: [], empty: 'Loading…', loading: true };

export type Pickers = Partial<Record<'backbone' | 'sequential-run', Picker>>;

/** Finished backbones, newest first: name and architecture. */
export function backbonePicker(list: readonly BackboneSummary[]): Picker {
  return {
    options: list
      .filter((b) => b.status === 'succeeded')
      .sort((a, b) => b.id - a.id)
      .map((b) => ({ value: b.id, label: `${b.name} · ${b.architecture ?? (b.source === 'huggingface' ? 'Hugging Face checkpoint' : 'compact')}` })),
    empty: 'No finished backbone yet: pretrain or register a backbone in Backbones.'
  };
}

/** A finished run as a picker option: id, model and its validation NDCG@10 (never its test figures). */
function runOption(r: RunSummary): PickerOption {
  return { value: r.id, label: `#${r.id} ${modelLabel(r.model)} · valid NDCG@10 ${metric(r.valid?.ndcg10)}` };
}

/** The dataset's finished runs of `kinds`, newest first. */
function finishedRuns(runs: readonly RunSummary[], kinds: readonly string[]): RunSummary[] {
  return runs.filter((r) => kinds.includes(r.model) && r.status === 'succeeded').sort((a, b) => b.id - a.id);
}

/** Runs whose item table can be ALMOSTREC's M (runs of the selected dataset only). */
export function sequentialRunPicker(runs: readonly RunSummary[]): Picker {
  return {
    options: finishedRuns(runs, ['sasrec', 'gru4rec']).map(runOption),
    empty: 'No finished SASRec or GRU4Rec run on this dataset: train SASRec first.'
  };
}

/** GRU4Rec runs for the ablation's "GRU4Rec IDs" variant. */
export function gru4recPicker(runs: readonly RunSummary[]): Picker {
  return {
    options: finishedRuns(runs, ['gru4rec']).map(runOption),
    empty: 'No finished GRU4Rec run on this dataset: the "GRU4Rec IDs" variant is left out (train GRU4Rec to include it).'
  };
}

/** A chosen id the picker no longer offers (another dataset's run, a deleted backbone), or null when fine. */
export function pickerProblem(picker: Picker | undefined, value: unknown): string | null {
  if (!picker || picker.loading || typeof value !== 'number' || value === 0) return null;
  return picker.options.some((o) => o.value === value) ? null : 'not available';
}

/** The option a picker chooses by itself: the newest finished entry (options are newest first), if any. */
export function newestOption(picker: Picker | undefined): PickerOption | null {
  return picker && !picker.loading ? (picker.options[0] ?? null) : null;
}

/** The line under a picker saying which entry it chose by itself. */
export function newestHint(picker: Picker | undefined): string | null {
  const newest = newestOption(picker);
  return newest ? `newest finished: ${newest.label}` : null;
}

/**
 * Values for the picker fields still on "— choose —" (0) whose picker has a finished entry: the newest one.
 * Empty when there is nothing to fill, so a form can apply it in an effect without looping. A choice the user
 * made (or one that is no longer offered, shown as "not available") is left alone.
 */
export function pickerDefaults(
  fields: readonly ConfigField<Record<string, number>>[],
  values: Readonly<Record<string, number>>,
  pickers: Pickers
): Record<string, number> {
  const filled: Record<string, number> = {};
  for (const f of fields) {
    const newest = f.refersTo ? newestOption(pickers[f.refersTo]) : null;
    if (newest && values[f.key] === 0) filled[f.key] = newest.value;
  }
  return filled;
}
