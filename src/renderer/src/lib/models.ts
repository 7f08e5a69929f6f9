// Model catalogue for the UI: a view of src/shared/models.ts (plain data, no schema library), so forms,
// defaults and bounds come from the same place the API validates against. Pure (no DOM, no runes): unit
// tests and lib/table2.ts import it under node.
//
// Runs may carry kinds the catalogue does not list (a run stored by another build): every helper below
// takes a plain string and falls back gracefully (label = the kind, family = 'other').
import { MODEL_CATALOG, type HyperParameter, type ModelKind } from '../../../shared/models';

export interface ConfigField<C> {
  key: keyof C & string;
  label: string;
  integer: boolean;
  min?: number;
  max?: number;
  step?: number;
  hint?: string;
  /** The only values allowed, when the catalogue restricts them. */
  choices?: readonly number[];
  /** Labels of `choices`, same order (a select shows them). */
  choiceLabels?: readonly string[];
  /** A 0/1 switch (a checkbox). */
  toggle?: boolean;
  /** The id of a catalog entry (0 = none chosen): the form offers a picker of them. */
  refersTo?: 'backbone' | 'sequential-run';
  /** A bitmask: one checkbox per named bit (bit i = 2^i). */
  bits?: readonly string[];
}

export interface ModelSpec {
  kind: ModelKind;
  label: string;
  family: string;
  description: string;
  /** Where the defaults come from (paper, RecBole config, ...). */
  reference: string;
  /** Hyper-parameter form; empty when the model has none. */
  fields: ConfigField<Record<string, number>>[];
  defaults: Record<string, number>;
  /** Trained epoch by epoch, so progress/loss charts and resume apply. */
  iterative: boolean;
  /** Needs frozen per-item image features. */
  usesImages: boolean;
}

/** A form field for one catalogue entry (models here, the backbone's pretraining in lib/backbones.ts). */
export function configField(p: HyperParameter): ConfigField<Record<string, number>> {
  const { key, label, integer, min, max, step, hint, choices, choiceLabels, toggle, refersTo, bits } = p;
  return { key, label, integer, min, max, step, hint, choices, choiceLabels, toggle, refersTo, bits };
}

/** What is wrong with a form value (as the API's schema would say it), or null when it is valid. */
export function fieldProblem(f: ConfigField<Record<string, number>>, v: unknown): string | null {
  if (typeof v !== 'number' || !Number.isFinite(v)) return 'required';
  if (f.integer && !Number.isInteger(v)) return 'whole number';
  if (f.bits && v === 0) return 'tick at least one';
  if (f.min != null && v < f.min) return `≥ ${f.min}`;
  if (f.max != null && v > f.max) return `≤ ${f.max}`;
  if (f.choices && !f.choices.includes(v)) return `one of ${f.choices.join(', ')}`;
  if (f.refersTo && v === 0) return 'choose one';
  return null;
}

export const MODELS: ModelSpec[] = MODEL_CATALOG.map((m) => ({
  kind: m.kind,
  label: m.label,
  family: m.family,
  description: m.description,
  reference: m.reference,
  fields: m.params.map(configField),
  defaults: Object.fromEntries(m.params.map((p) => [p.key, p.default])),
  iterative: m.iterative,
  usesImages: m.usesImages
}));

export function modelSpec(kind: string): ModelSpec | undefined {
  return MODELS.find((m) => m.kind === kind);
}

export function modelLabel(kind: string): string {
  return modelSpec(kind)?.label ?? kind;
}

/** Family of a model kind; kinds the catalogue does not know are 'other'. */
export function modelFamily(kind: string): string {
  return modelSpec(kind)?.family ?? OTHER_FAMILY;
}

/** The paper's Table 2 order (the LLM family last); families added later follow (alphabetically), 'other' last. */
export const FAMILY_ORDER: readonly string[] = ['non-sequential', 'sequential', 'visual-sequential', 'text-sequential-llm', 'multimodal-llm'];
export const OTHER_FAMILY = 'other';

const FAMILY_LABELS: Record<string, string> = {
  'non-sequential': 'Non-sequential',
  sequential: 'Sequential',
  'visual-sequential': 'Visual sequential',
  'text-sequential-llm': 'LLM: text + sequential',
  'multimodal-llm': 'LLM: text + visual + sequential',
  [OTHER_FAMILY]: 'Other'
};

export function familyLabel(family: string): string {
  const known = FAMILY_LABELS[family];
  if (known) return known;
  const words = family.replace(/[-_]+/g, ' ').trim();
  return words ? words[0].toUpperCase() + words.slice(1) : family;
}

export function compareFamilies(a: string, b: string): number {
  const rank = (f: string): number => {
    const i = FAMILY_ORDER.indexOf(f);
    return i >= 0 ? i : f === OTHER_FAMILY ? FAMILY_ORDER.length + 1 : FAMILY_ORDER.length;
  };
  return rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0);
}

/** Family order, then catalogue order, then kinds the catalogue does not know, alphabetically. */
export function compareKinds(a: string, b: string): number {
  const byFamily = compareFamilies(modelFamily(a), modelFamily(b));
  if (byFamily !== 0) return byFamily;
  const ia = MODELS.findIndex((m) => m.kind === a);
  const ib = MODELS.findIndex((m) => m.kind === b);
  const ra = ia < 0 ? MODELS.length : ia;
  const rb = ib < 0 ? MODELS.length : ib;
  return ra - rb || (a < b ? -1 : a > b ? 1 : 0);
}

export interface FamilyGroup<T> {
  family: string;
  label: string;
  items: T[];
}

/** Groups items by family in Table 2 order, keeping the items' order inside each group. */
export function groupByFamily<T>(items: readonly T[], familyOf: (item: T) => string): FamilyGroup<T>[] {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const f = familyOf(item);
    const list = groups.get(f);
    if (list) list.push(item);
    else groups.set(f, [item]);
  }
  return [...groups.entries()]
    .sort(([a], [b]) => compareFamilies(a, b))
    .map(([family, list]) => ({ family, label: familyLabel(family), items: list }));
}
