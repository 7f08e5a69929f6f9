// A stored configuration (a run's or a backbone's) as labelled rows: the catalogue's fields first, in its
// order and with its labels and value names, then any key the catalogue does not know (a config written by
// another build) under its own name. Pure: unit tests import it under node.
import { bitNames } from './bitmask';
import type { ConfigField } from './models';

export interface ConfigRow {
  key: string;
  label: string;
  value: string;
}

/** One value as the form would name it: ticked bits, a choice's label, yes/no, a catalog id. */
export function configValue(f: ConfigField<Record<string, number>> | undefined, v: unknown): string {
  if (typeof v !== 'number') return typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
  if (f?.bits) return `${bitNames(v, f.bits).join(', ') || 'none'} (${v})`;
  if (f?.toggle) return v === 1 ? 'yes' : v === 0 ? 'no' : String(v);
  if (f?.refersTo) return v === 0 ? 'none' : `#${v}`;
  const i = f?.choices?.indexOf(v) ?? -1;
  if (i >= 0 && f?.choiceLabels?.[i]) return f.choiceLabels[i];
  return String(v);
}

export function configRows(config: Readonly<Record<string, unknown>>, fields: readonly ConfigField<Record<string, number>>[]): ConfigRow[] {
  const known = fields.filter((f) => f.key in config).map((f) => ({ key: f.key, label: f.label, value: configValue(f, config[f.key]) }));
  const keys = new Set(fields.map((f) => f.key));
  const others = Object.entries(config)
    .filter(([k]) => !keys.has(k))
    .map(([k, v]) => ({ key: k, label: k, value: configValue(undefined, v) }));
  return [...known, ...others];
}
