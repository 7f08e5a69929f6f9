// Model catalogue for the UI. Data-driven so later models (GRU4Rec, ALMOSTREC, …) are one entry each.
import type { SasrecConfig } from '../../../shared/api';
import type { ModelKind } from '../../../shared/types';

export interface ConfigField<C> {
  key: keyof C & string;
  label: string;
  integer: boolean;
  min?: number;
  max?: number;
  step?: number;
  hint?: string;
}

/** Mirrors the defaults and bounds of `sasrecConfigSchema` in src/shared/api.ts. Duplicated here (the
 *  one place in the renderer) because importing the schema would pull zod into the bundle; the
 *  `satisfies` check makes a renamed or added field a compile error. Keep the values in step. */
export const SASREC_DEFAULTS = {
  epochs: 200,
  batchSize: 128,
  maxLen: 200,
  hiddenSize: 64,
  numBlocks: 2,
  numHeads: 1,
  dropout: 0.2,
  learningRate: 1e-3,
  beta2: 0.98,
  seed: 42,
  evalEvery: 1,
  patience: 10
} satisfies Required<SasrecConfig>;

const SASREC_FIELDS: ConfigField<SasrecConfig>[] = [
  { key: 'epochs', label: 'Epochs', integer: true, min: 1, max: 1000 },
  { key: 'batchSize', label: 'Batch size', integer: true, min: 1, max: 4096, hint: 'users per batch' },
  { key: 'maxLen', label: 'Max length', integer: true, min: 2, max: 1000, hint: 'history window L' },
  { key: 'hiddenSize', label: 'Hidden size', integer: true, min: 4, max: 1024 },
  { key: 'numBlocks', label: 'Blocks', integer: true, min: 1, max: 12 },
  { key: 'numHeads', label: 'Heads', integer: true, min: 1, max: 16 },
  { key: 'dropout', label: 'Dropout', integer: false, min: 0, max: 0.9, step: 0.05 },
  { key: 'learningRate', label: 'Learning rate', integer: false, min: 0, max: 1, step: 0.0001 },
  { key: 'beta2', label: 'Adam β2', integer: false, min: 0, max: 0.99999, step: 0.001 },
  { key: 'seed', label: 'Seed', integer: true, min: 0 },
  { key: 'evalEvery', label: 'Eval every', integer: true, min: 1, hint: 'epochs between validations' },
  { key: 'patience', label: 'Patience', integer: true, min: 1, hint: 'validations without gain' }
];

export interface ModelSpec {
  kind: ModelKind;
  label: string;
  description: string;
  /** Hyper-parameter form; empty when the model has none. */
  fields: ConfigField<Record<string, number>>[];
  defaults: Record<string, number>;
  /** Trained epoch by epoch, so progress/loss charts and resume apply. */
  iterative: boolean;
}

// Keyed by ModelKind so a model added to the contract is a compile error until it is described here.
const MODEL_SPECS: Record<ModelKind, Omit<ModelSpec, 'kind'>> = {
  sasrec: {
    label: 'SASRec',
    description: 'Self-attentive sequential recommender, cross-entropy over all items.',
    fields: SASREC_FIELDS as ConfigField<Record<string, number>>[],
    defaults: { ...SASREC_DEFAULTS },
    iterative: true
  },
  popularity: {
    label: 'Popularity',
    description: 'Ranks items by training interactions; a sanity baseline.',
    fields: [],
    defaults: {},
    iterative: false
  }
};

export const MODELS: ModelSpec[] = Object.entries(MODEL_SPECS).map(([kind, spec]) => ({ kind: kind as ModelKind, ...spec }));

export function modelSpec(kind: string): ModelSpec | undefined {
  return MODELS.find((m) => m.kind === kind);
}

export function modelLabel(kind: string): string {
  return modelSpec(kind)?.label ?? kind;
}
