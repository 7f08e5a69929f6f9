// The Adapters view's plain logic (src/renderer/src/lib/adapters.ts): grouping, sizes, dependencies.
import { describe, expect, it } from 'vitest';
import { bytes, dependsOn, groupAdapters } from '../../src/renderer/src/lib/adapters';
import type { AdapterSummary } from '../../src/shared/adapters';

const adapter = (runId: number, over: Partial<AdapterSummary> = {}): AdapterSummary => ({
  runId,
  name: `run ${runId}`,
  model: 'almostrec',
  datasetId: 1,
  datasetName: 'mls',
  backboneId: 1,
  backboneName: 'compact',
  seqRunId: 2,
  source: 'trained',
  contentHash: '0'.repeat(64),
  sizeBytes: 100,
  files: [],
  valid: null,
  test: null,
  createdAt: '2026-12-07T00:00:00.000Z',
  origin: null,
  ...over
});

describe('groupAdapters', () => {
  it('groups per backbone and dataset, sorted by name, newest run first within a group', () => {
    const groups = groupAdapters([
      adapter(3),
      adapter(5, { datasetId: 2, datasetName: 'ml100k' }),
      adapter(7),
      adapter(9, { backboneId: 4, backboneName: 'a-llava' }),
      adapter(11, { backboneId: null, backboneName: null })
    ]);
    expect(groups.map((g) => [g.backbone, g.dataset, g.adapters.map((a) => a.runId)])).toEqual([
      ['(backbone deleted)', 'mls', [11]],
      ['a-llava', 'mls', [9]],
      ['compact', 'ml100k', [5]],
      ['compact', 'mls', [7, 3]]
    ]);
  });
});

describe('bytes and dependsOn', () => {
  it('says sizes in binary units', () => {
    expect([bytes(0), bytes(1023), bytes(1536), bytes(5 * 2 ** 20), bytes(3 * 2 ** 30)]).toEqual(['0 B', '1023 B', '1.5 KiB', '5.0 MiB', '3.0 GiB']);
  });
  it('names the sequential run, or where an imported adapter came from', () => {
    expect(dependsOn(adapter(1))).toBe('M from run 2');
    expect(dependsOn(adapter(1, { seqRunId: null, source: 'imported', origin: { runId: 8, datasetName: 'mls', seqRunModel: 'sasrec' } }))).toBe('imported from run 8 (mls, M of sasrec)');
    expect(dependsOn(adapter(1, { model: 'tallrec', seqRunId: null }))).toBe('backbone only');
  });
});
