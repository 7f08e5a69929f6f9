// The ALMOSTREC ablation study: which variants a full config yields (and which are skipped, with why), how a
// study's runs are created and tagged, and the job that trains them strictly one after another — a failed
// variant does not stop the others, a cancel stops every later one before it starts. Training is a stand-in
// here that updates the run rows as runTrainingJob does; the e2e test trains real variants.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/core/catalog';
import { importDataset } from '../../src/core/importers';
import { runAblationJob, type TrainRun } from '../../src/core/jobs/ablation-job';
import { createAblationStudy, groupAblationStudies, readAblationStudy } from '../../src/core/jobs/ablation-study';
import { runModelConfig, type RunJobContext } from '../../src/core/jobs/run-jobs';
import { CancelledError, type JobProgress } from '../../src/core/progress';
import { ABLATION_STUDY_KEY, ABLATION_VARIANT_KEY, isAblatedRun, planAblation } from '../../src/shared/ablation';
import { defaultConfig } from '../../src/shared/models';
import { finishedBackbone, finishedSeqRun } from './ablation-refs';

// Interleaved (layout 1), so the concat layout of eq. 1 is a variant whatever the catalogue's default layout is.
const full = { ...defaultConfig('almostrec'), backboneId: 1, seqRunId: 2, epochs: 1, layout: 1 };

describe('planAblation', () => {
  it('yields the full model and one change per variant, in Figure 3 order', () => {
    const { variants, skipped } = planAblation({ full, seqRunModel: 'sasrec', gru4recRunId: 9 });
    expect(skipped).toEqual([]);
    expect(variants.map((v) => v.id)).toEqual(['full', 'no-images', 'no-text', 'no-pretrained-ids', 'gru4rec', 'no-lora', 'concat']);
    const changed = variants.map((v) => Object.fromEntries(Object.entries(v.config).filter(([k, value]) => full[k as keyof typeof full] !== value)));
    expect(changed).toEqual([{}, { useImages: 0 }, { useText: 0 }, { pretrainedIds: 0 }, { seqRunId: 9 }, { useLora: 0 }, { layout: 0 }]);
    // Every variant keeps everything else, seed included: the bars differ by one component only.
    for (const v of variants) expect(Object.keys(v.config).sort()).toEqual(Object.keys(full).sort());
  });

  it('skips what cannot be built or would train the full model again, saying why', () => {
    expect(planAblation({ full, seqRunModel: 'sasrec', gru4recRunId: null }).skipped).toEqual([
      { id: 'gru4rec', reason: 'no finished GRU4Rec run on this dataset: train GRU4Rec first' }
    ]);
    expect(planAblation({ full, seqRunModel: 'gru4rec', gru4recRunId: 9 }).skipped).toEqual([
      { id: 'gru4rec', reason: 'the full model already takes M from a GRU4Rec run' }
    ]);
    const noImages = planAblation({ full: { ...full, useImages: 0 }, seqRunModel: 'sasrec', gru4recRunId: 9 });
    expect(noImages.variants.map((v) => v.id)).toEqual(['full', 'no-text', 'no-pretrained-ids', 'gru4rec', 'no-lora', 'concat']);
    expect(noImages.skipped).toEqual([{ id: 'no-images', reason: 'the full model already has useImages = 0' }]);
    // A full model in the concat layout already is the concat variant.
    const concat = planAblation({ full: { ...full, layout: 0 }, seqRunModel: 'sasrec', gru4recRunId: 9 });
    expect(concat.variants.map((v) => v.id)).toEqual(['full', 'no-images', 'no-text', 'no-pretrained-ids', 'gru4rec', 'no-lora']);
    expect(concat.skipped).toEqual([{ id: 'concat', reason: 'the full model already has layout = 0' }]);
  });
});

let dir: string;
let catalog: Catalog;
let datasetId: number;
let backboneId: number;
let sasrec: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'almostrec-ablation-'));
  catalog = Catalog.open(join(dir, 'catalog.sqlite'));
  ({ datasetId } = await importDataset(catalog, { format: 'movielens-latest', path: resolve(__dirname, '../fixtures/importers/ml-latest'), name: 'tiny', options: {} }));
  backboneId = finishedBackbone(catalog, dir, datasetId);
  sasrec = finishedSeqRun(catalog, dir, datasetId, 'sasrec');
});

afterAll(() => {
  catalog.close();
  rmSync(dir, { recursive: true, force: true });
});

const clearRuns = () => {
  for (const r of catalog.listRuns(datasetId)) if (r.model === 'almostrec' || r.model === 'gru4rec') catalog.deleteRun(r.id);
};

describe('createAblationStudy', () => {
  beforeEach(clearRuns);

  it('creates one queued run per variant, tagged with the study (its full run) and the variant', () => {
    const before = catalog.listRuns(datasetId).length;
    const study = createAblationStudy(catalog, datasetId, { backboneId, seqRunId: sasrec, epochs: 2, layout: 1 }, { backend: null });
    expect(study.variants).toEqual(['full', 'no-images', 'no-text', 'no-pretrained-ids', 'no-lora', 'concat']);
    expect(study.skipped.map((s) => s.id)).toEqual(['gru4rec']);
    expect(study.studyId).toBe(study.runIds[0]);
    expect(catalog.listRuns(datasetId).length).toBe(before + 6);
    const runs = study.runIds.map((id) => catalog.getRun(id)!);
    expect(runs.map((r) => [r.model, r.status, r.config[ABLATION_STUDY_KEY], r.config[ABLATION_VARIANT_KEY]])).toEqual(
      study.variants.map((v) => ['almostrec', 'queued', study.studyId, v])
    );
    // The tags are bookkeeping: the model's config reads back without them, complete.
    expect(runModelConfig('almostrec', runs[1].config)).toEqual({ ...defaultConfig('almostrec'), backboneId, seqRunId: sasrec, epochs: 2, layout: 1, useImages: 0 });
    expect(runModelConfig('almostrec', runs[5].config)).toEqual({ ...defaultConfig('almostrec'), backboneId, seqRunId: sasrec, epochs: 2, layout: 0 });
    expect(runs.map((r) => isAblatedRun(r.config))).toEqual([false, true, true, true, true, true]);

    const [grouped] = groupAblationStudies(catalog.listRuns(datasetId));
    expect(grouped.id).toBe(study.studyId);
    expect(grouped.variants.map((v) => [v.variant, v.label, v.run.id])).toEqual([
      ['full', 'ALMOSTREC', study.runIds[0]],
      ['no-images', 'w/o images', study.runIds[1]],
      ['no-text', 'w/o text', study.runIds[2]],
      ['no-pretrained-ids', 'w/o pretrained IDs', study.runIds[3]],
      ['no-lora', 'w/o LoRA', study.runIds[4]],
      ['concat', 'concat layout (eq. 1)', study.runIds[5]]
    ]);
    // A study outlives the deletion of its full run.
    catalog.deleteRun(study.studyId);
    expect(readAblationStudy(catalog, study.studyId)!.variants.map((v) => v.variant)).toEqual(['no-images', 'no-text', 'no-pretrained-ids', 'no-lora', 'concat']);
  });

  it('leaves the concat variant out of a full model already in the concat layout', () => {
    const study = createAblationStudy(catalog, datasetId, { backboneId, seqRunId: sasrec, layout: 0 }, { backend: null });
    expect(study.variants).toEqual(['full', 'no-images', 'no-text', 'no-pretrained-ids', 'no-lora']);
    expect(study.skipped).toContainEqual({ id: 'concat', reason: 'the full model already has layout = 0' });
    expect(study.runIds.map((id) => catalog.getRun(id)!.config.layout)).toEqual([0, 0, 0, 0, 0]);
  });

  it('takes the best GRU4Rec run by validation when none is given, or the one given', () => {
    const weak = finishedSeqRun(catalog, dir, datasetId, 'gru4rec', 0.05);
    const strong = finishedSeqRun(catalog, dir, datasetId, 'gru4rec', 0.2);
    finishedSeqRun(catalog, dir, datasetId, 'gru4rec', 0.1);
    const picked = createAblationStudy(catalog, datasetId, { backboneId, seqRunId: sasrec }, { backend: null });
    expect(picked.variants).toContain('gru4rec');
    expect(catalog.getRun(picked.runIds[picked.variants.indexOf('gru4rec')])!.config.seqRunId).toBe(strong);
    const given = createAblationStudy(catalog, datasetId, { backboneId, seqRunId: sasrec }, { backend: null, gru4recRunId: weak });
    expect(catalog.getRun(given.runIds[given.variants.indexOf('gru4rec')])!.config.seqRunId).toBe(weak);
  });

  it('refuses unusable references before writing anything', () => {
    const before = catalog.listRuns().length;
    expect(() => createAblationStudy(catalog, datasetId, { seqRunId: sasrec }, { backend: null })).toThrow(/^ALMOSTREC needs a backbone/);
    expect(() => createAblationStudy(catalog, datasetId, { backboneId, seqRunId: sasrec }, { backend: null, gru4recRunId: sasrec })).toThrow(
      `Ablation: run ${sasrec} is a sasrec run, not GRU4Rec`
    );
    expect(() => createAblationStudy(catalog, datasetId, { backboneId, seqRunId: sasrec, visualTokens: 3 }, { backend: null })).toThrow(/visualTokens/);
    expect(catalog.listRuns().length).toBe(before);
  });
});

describe('runAblationJob', () => {
  beforeEach(clearRuns);

  const phases: JobProgress[] = [];
  const logs: string[] = [];
  const ctx = (signal = { aborted: false }): RunJobContext => ({ dataDir: dir, onProgress: (p) => phases.push(p), onLog: (m) => logs.push(m), signal });

  /** Trains like runTrainingJob as far as the catalog sees it; `behave` decides how each run ends. */
  function standIn(behave: (runId: number, call: number) => 'ok' | 'fail' | 'cancel' = () => 'ok') {
    const calls: { runId: number; resume: boolean }[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const train: TrainRun = async (c, runId, jobCtx) => {
      calls.push({ runId, resume: jobCtx.resume });
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        c.updateRun(runId, { status: 'running', startedAt: new Date().toISOString() });
        jobCtx.onProgress({ phase: 'train', done: 1, total: 2, metrics: { epoch: 1, loss: 1 } });
        await new Promise((r) => setTimeout(r, 5));
        const how = behave(runId, calls.length);
        const endedAt = new Date().toISOString();
        if (how === 'fail') {
          c.updateRun(runId, { status: 'failed', endedAt, error: 'out of memory' });
          throw new Error('out of memory');
        }
        if (how === 'cancel') {
          c.updateRun(runId, { status: 'cancelled', endedAt });
          throw new CancelledError();
        }
        c.updateRun(runId, { status: 'succeeded', endedAt });
      } finally {
        inFlight--;
      }
    };
    return { train, calls, maxInFlight: () => maxInFlight };
  }

  /** Six variants: the full model (interleaved), four switches off, the concat layout (no GRU4Rec run here). */
  const newStudy = () => createAblationStudy(catalog, datasetId, { backboneId, seqRunId: sasrec, layout: 1 }, { backend: null });
  const statuses = (ids: number[]) => ids.map((id) => catalog.getRun(id)!.status);

  it('trains the variants one at a time in order, each phase naming its variant', async () => {
    const { studyId, runIds } = newStudy();
    const s = standIn();
    phases.length = 0;
    expect(await runAblationJob(catalog, { studyId, runIds }, ctx(), s.train)).toEqual({ succeeded: runIds });
    expect(s.calls).toEqual(runIds.map((runId) => ({ runId, resume: false })));
    expect(s.maxInFlight()).toBe(1);
    expect(statuses(runIds)).toEqual(runIds.map(() => 'succeeded'));
    expect(phases.filter((p) => p.phase.startsWith('2/6')).map((p) => p.phase)).toEqual([
      `2/6 w/o images (run ${runIds[1]})`,
      `2/6 w/o images (run ${runIds[1]}) · train`
    ]);
    expect(phases.filter((p) => p.phase.startsWith('6/6')).map((p) => p.phase)[0]).toBe(`6/6 concat layout (eq. 1) (run ${runIds[5]})`);
    expect(phases.find((p) => p.phase.endsWith('· train'))!.metrics).toEqual({ epoch: 1, loss: 1, variant: 1, variants: 6 });
    expect(phases.at(-1)).toMatchObject({ phase: 'done', done: 6, total: 6 });
  });

  it('goes on after a failed variant and reports the failures at the end', async () => {
    const { studyId, runIds } = newStudy();
    const s = standIn((runId) => (runId === runIds[1] ? 'fail' : 'ok'));
    await expect(runAblationJob(catalog, { studyId, runIds }, ctx(), s.train)).rejects.toThrow(
      `1 of 6 ablation variants failed — w/o images (run ${runIds[1]}): out of memory`
    );
    expect(s.calls.map((c) => c.runId)).toEqual(runIds);
    expect(statuses(runIds)).toEqual(['succeeded', 'failed', 'succeeded', 'succeeded', 'succeeded', 'succeeded']);
    expect(logs).toContain(`Ablation study ${studyId}: w/o images (run ${runIds[1]}) failed (out of memory); going on with the next variant`);
  });

  it('stops at a cancel: the variant in training ends cancelled, the later ones never start', async () => {
    const { studyId, runIds } = newStudy();
    const signal = { aborted: false };
    // The user cancels while the third variant trains; runTrainingJob then throws CancelledError.
    const s = standIn((_, call) => {
      if (call === 3) signal.aborted = true;
      return call === 3 ? 'cancel' : 'ok';
    });
    await expect(runAblationJob(catalog, { studyId, runIds }, ctx(signal), s.train)).rejects.toBeInstanceOf(CancelledError);
    expect(s.calls.map((c) => c.runId)).toEqual(runIds.slice(0, 3));
    expect(statuses(runIds)).toEqual(['succeeded', 'succeeded', 'cancelled', 'cancelled', 'cancelled', 'cancelled']);

    // Resuming trains what is left: the cancelled variant from its checkpoint, the never-started ones afresh.
    const again = standIn();
    await runAblationJob(catalog, { studyId, runIds }, ctx(), again.train);
    expect(again.calls).toEqual([
      { runId: runIds[2], resume: true },
      { runId: runIds[3], resume: false },
      { runId: runIds[4], resume: false },
      { runId: runIds[5], resume: false }
    ]);
    expect(statuses(runIds)).toEqual(runIds.map(() => 'succeeded'));
  });

  it('does not start anything once cancelled between variants', async () => {
    const { studyId, runIds } = newStudy();
    const signal = { aborted: false };
    const s = standIn((_, call) => {
      if (call === 1) signal.aborted = true; // set after the first variant ended well
      return 'ok';
    });
    await expect(runAblationJob(catalog, { studyId, runIds }, ctx(signal), s.train)).rejects.toBeInstanceOf(CancelledError);
    expect(s.calls).toHaveLength(1);
    expect(statuses(runIds)).toEqual(['succeeded', 'cancelled', 'cancelled', 'cancelled', 'cancelled', 'cancelled']);
  });
});
