// Model catalogue for the UI: a view of src/shared/models.ts (plain data, no schema library), so forms,
// defaults and bounds come from the same place the API validates against.
import { MODEL_CATALOG, type HyperParameter, type ModelKind } from '../../../shared/models';

export interface ConfigField<C> {
  key: keyof C & string;
  label: string;
  integer: boolean;
  min?: number;
  max?: number;
  step?: number;
  hint?: string;
}

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

function field(p: HyperParameter): ConfigField<Record<string, number>> {
  return { key: p.key, label: p.label, integer: p.integer, min: p.min, max: p.max, step: p.step, hint: p.hint };
}

export const MODELS: ModelSpec[] = MODEL_CATALOG.map((m) => ({
  kind: m.kind,
  label: m.label,
  description: m.description,
  fields: m.params.map(field),
  defaults: Object.fromEntries(m.params.map((p) => [p.key, p.default])),
  iterative: m.iterative
}));

export function modelSpec(kind: string): ModelSpec | undefined {
  return MODELS.find((m) => m.kind === kind);
}

export function modelLabel(kind: string): string {
  return modelSpec(kind)?.label ?? kind;
}
