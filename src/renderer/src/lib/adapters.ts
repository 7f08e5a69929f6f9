// The Adapters view's plain logic: the registry grouped per backbone and dataset, and sizes in words.
import type { AdapterSummary } from '../../../shared/adapters';

export interface AdapterGroup {
  key: string;
  backbone: string;
  dataset: string;
  adapters: AdapterSummary[];
}

/** Groups by backbone, then dataset (both by name), newest adapter first within a group. */
export function groupAdapters(list: readonly AdapterSummary[]): AdapterGroup[] {
  const groups = new Map<string, AdapterGroup>();
  for (const a of list) {
    const backbone = a.backboneName ?? '(backbone deleted)';
    const key = `${a.backboneId ?? backbone}\u0000${a.datasetId}`;
    const g = groups.get(key) ?? { key, backbone, dataset: a.datasetName, adapters: [] };
    g.adapters.push(a);
    groups.set(key, g);
  }
  const out = [...groups.values()];
  for (const g of out) g.adapters.sort((x, y) => y.runId - x.runId);
  return out.sort((x, y) => x.backbone.localeCompare(y.backbone) || x.dataset.localeCompare(y.dataset));
}

/** 1536 → "1.5 KiB". */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** What the adapter depends on, in words: its sequential run, or where an imported one came from. */
export function dependsOn(a: AdapterSummary): string {
  if (a.seqRunId !== null) return `M from run ${a.seqRunId}`;
  if (a.origin) return `imported from run ${a.origin.runId} (${a.origin.datasetName}${a.origin.seqRunModel ? `, M of ${a.origin.seqRunModel}` : ''})`;
  return 'backbone only';
}
