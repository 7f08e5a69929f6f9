// The ablation benchmark's pure parts: what it builds the study on (the dataset's latest finished SASRec run,
// backbone and GRU4Rec run, or what --param / --gru4rec-run name), the CLI command it runs, and its line per
// variant. The study itself is the CLI's (test/integration/ablation-cli.test.ts); the benchmark is not run here.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ablationArgs, parseParams, pickAblationRefs, variantLine } from '../../src/cli/bench-ablation';
import { Catalog } from '../../src/core/catalog';
import { importDataset } from '../../src/core/importers';
import type { Metrics, RunDetail } from '../../src/shared/types';
import { finishedBackbone, finishedSeqRun } from './ablation-refs';

let dir: string;
let catalog: Catalog;
let datasetId: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'almostrec-bench-ablation-'));
  catalog = Catalog.open(join(dir, 'catalog.sqlite'));
  ({ datasetId } = await importDataset(catalog, { format: 'movielens-latest', path: resolve(__dirname, '../fixtures/importers/ml-latest'), name: 'tiny', options: {} }));
});

afterAll(() => {
  catalog.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('pickAblationRefs', () => {
  it('says what to run first when the catalog lacks the dataset, a SASRec run or a backbone', () => {
    expect(() => pickAblationRefs(catalog, 'nope', {})).toThrow('the catalog holds no dataset "nope"');
    expect(() => pickAblationRefs(catalog, 'tiny', {})).toThrow('no finished SASRec run on tiny');
    finishedSeqRun(catalog, dir, datasetId, 'sasrec');
    expect(() => pickAblationRefs(catalog, 'tiny', {})).toThrow('no finished backbone pretrained on tiny');
  });

  it("takes the dataset's latest finished SASRec run, backbone and GRU4Rec run, or the ones given", () => {
    const oldSasrec = finishedSeqRun(catalog, dir, datasetId, 'sasrec');
    const sasrec = finishedSeqRun(catalog, dir, datasetId, 'sasrec');
    catalog.createRun({ datasetId, model: 'sasrec', config: {}, backend: null }); // queued: not finished
    const backbone = finishedBackbone(catalog, dir, datasetId, 'b1');
    catalog.createBackbone({ name: 'b2', source: 'pretrained', datasetId, path: join(dir, 'b2'), config: {} }); // not finished
    expect(pickAblationRefs(catalog, 'tiny', {})).toEqual({ datasetId, datasetName: 'tiny', seqRunId: sasrec, backboneId: backbone, gru4recRunId: null });
    const gru4rec = finishedSeqRun(catalog, dir, datasetId, 'gru4rec');
    expect(pickAblationRefs(catalog, String(datasetId), {}).gru4recRunId).toBe(gru4rec);
    expect(pickAblationRefs(catalog, 'tiny', { seqRunId: oldSasrec, backboneId: 77 }, 5)).toMatchObject({ seqRunId: oldSasrec, backboneId: 77, gru4recRunId: 5 });
  });

  it('runs the CLI with the picks and every other --param as given', () => {
    const refs = { datasetId, datasetName: 'tiny', seqRunId: 3, backboneId: 2, gru4recRunId: 4 };
    const params = parseParams(['layout=1', 'historyLength=10']);
    expect(ablationArgs(refs, 3, params)).toEqual(
      ['ablation', '--dataset', 'tiny', '--epochs', '3', '--param', 'layout=1', '--param', 'historyLength=10', '--param', 'seqRunId=3', '--param', 'backboneId=2', '--gru4rec-run', '4']
    );
    expect(ablationArgs({ ...refs, gru4recRunId: null }, 1, {})).not.toContain('--gru4rec-run');
    expect(() => parseParams(['layout'])).toThrow('--param expects key=number (got "layout")');
  });
});

describe('variantLine', () => {
  const metrics = (ndcg10: number): Metrics => ({ hr10: 0.123456789, ndcg10, hr20: 0.2, ndcg20: 0.1, mrr: 0.05 });
  const run = (id: number, ndcg10: number | null, seconds: number[]): RunDetail => ({
    id,
    datasetId: 1,
    datasetName: 'tiny',
    model: 'almostrec',
    status: ndcg10 === null ? 'failed' : 'succeeded',
    backend: null,
    config: {},
    startedAt: '2025-01-01T00:00:00.000Z',
    endedAt: '2025-01-01T00:02:05.400Z',
    error: null,
    valid: ndcg10 === null ? null : metrics(ndcg10 / 2),
    test: ndcg10 === null ? null : metrics(ndcg10),
    bestEpoch: 1,
    history: seconds.map((s, i) => ({ epoch: i + 1, loss: 1, validNdcg10: null, seconds: s })),
    checkpointPath: null
  });
  const v = (variant: string, runId: number) => ({ studyId: 10, variant, label: variant, runId, status: 'succeeded' });

  it('gives epochs, seconds per epoch, rounded metrics, wall time and test NDCG@10 against the full model', () => {
    const full = run(10, 0.08, [40, 42, 41]);
    expect(JSON.parse(variantLine('tiny', v('full', 10), full, full))).toEqual({
      dataset: 'tiny',
      variant: 'full',
      label: 'full',
      run: 10,
      status: 'succeeded',
      epochs: 3,
      sec_per_epoch: 41,
      valid: { hr10: 0.123457, ndcg10: 0.04, hr20: 0.2, ndcg20: 0.1, mrr: 0.05 },
      test: { hr10: 0.123457, ndcg10: 0.08, hr20: 0.2, ndcg20: 0.1, mrr: 0.05 },
      wall_sec: 125,
      ndcg10_vs_full: null,
      ndcg10_vs_full_pct: null
    });
    expect(JSON.parse(variantLine('tiny', v('no-images', 11), run(11, 0.06, [30]), full))).toMatchObject({ ndcg10_vs_full: -0.02, ndcg10_vs_full_pct: -25 });
    expect(JSON.parse(variantLine('tiny', v('no-text', 12), run(12, null, []), full))).toMatchObject({ status: 'failed', epochs: 0, test: null, ndcg10_vs_full: null });
    expect(JSON.parse(variantLine('tiny', v('no-lora', 13), run(13, 0.06, [30]), null)).ndcg10_vs_full_pct).toBeNull();
  });
});

it('bench llm-baselines trains every model on a backbone but ALMOSTREC, in catalogue order, that this build has', async () => {
  const { llmBaselineKinds } = await import('../../src/cli/bench-llm');
  expect(llmBaselineKinds()).toEqual(['tallrec', 'llara', 'e4srec', 'vip5']);
  expect(llmBaselineKinds((k) => k !== 'e4srec')).toEqual(['tallrec', 'llara', 'vip5']);
});
