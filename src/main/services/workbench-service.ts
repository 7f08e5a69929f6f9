// The API implementation: one method per entry of src/shared/api.ts, whatever the transport. Input is
// validated here with the contract's schemas; heavy work goes to the job manager's worker threads.
import { existsSync, rmSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { exportAdapter } from '../../core/adapters/export-adapter';
import { importAdapter } from '../../core/adapters/import-adapter';
import type { AdapterSummary } from '../../shared/adapters';
import { createPretrainedBackbone, removeBackboneFiles } from '../../core/backbone/backbone-store';
import { Catalog, claimDataDir } from '../../core/catalog';
import { CaseStudyError, heldOutHistory, readCaseStudy } from '../../core/catalog/case-study';
import { EMBEDDED_DATASET, resolveEmbeddedDatasetDir } from '../../core/importers';
import { runCheckpointDir } from '../../core/jobs/run-jobs';
import type { AlmostrecConfig } from '../../core/models/almostrec-config';
import { resolveAlmostrecReferences } from '../../core/models/almostrec-references';
import { isAvailable } from '../../core/models/registry';
import { getBackendInfo, initBackend } from '../../core/tensor/backend';
import { ablationStudyOf } from '../../shared/ablation';
import { isPendingJob } from '../../shared/jobs';
import { isLlmKind, modelDescriptor, usesBackbone } from '../../shared/models';
import {
  apiInputs,
  parseModelConfig,
  type ApiMethod,
  type ApiOutput,
  type ApiParsedInput,
  type Envelope,
  type JobEvent
} from '../../shared/api';
import type { BackboneDetail, BackboneStatus, BackboneSummary } from '../../shared/backbones';
import type { BackendInfo, CaseStudy, HistoryEntry, InferenceTopK, JobInfo, LlmCaseStudy, RunStatus, UserSummary } from '../../shared/types';
import { createAblationHandlers } from './ablation-handlers';
import { ApiFailure, notFound, toApiError } from './api-errors';
import { InferenceClient } from './inference-client';
import { JobManager } from './job-manager';
import { jobSlotsFromEnv, type JobSlots } from './job-slots';

export interface WorkbenchServiceOptions {
  dataDir: string;
  dbPath: string;
  workerPath: string;
  transport: 'ipc' | 'http';
  version: string;
  /** Import the embedded dataset on first start (default true). */
  autoImport?: boolean;
  /** Jobs that may run at once per lane; default from ALMOSTREC_HEAVY_JOBS / ALMOSTREC_LIGHT_JOBS (job-slots.ts). */
  jobSlots?: JobSlots;
  /** The built inference worker; default inference-worker.js beside workerPath (run on this thread where it is not built). */
  inferenceWorkerPath?: string;
}

/** How often the listing views look for runs and pretraining that a dead process left (a query and no write). */
const SWEEP_INTERVAL_MS = 2_000;

export type Handlers = { [M in ApiMethod]: (input: ApiParsedInput<M>) => Promise<ApiOutput<M>> | ApiOutput<M> };

/** A run or backbone whose job has not reached an end yet (statuses are the same for both). */
const isUnfinished = (status: RunStatus | BackboneStatus): boolean => status === 'running' || status === 'queued';

/**
 * The end to record for a run or backbone whose job ended without its worker saying so: a worker that died
 * (crashed, exited, terminated) interrupted it, and it resumes from its last checkpoint like a killed process's.
 */
function unreportedEnd(job: JobInfo): { status: 'cancelled' | 'failed'; endedAt: string; error: string | null } {
  if (job.status === 'cancelled') return { status: 'cancelled', endedAt: new Date().toISOString(), error: null };
  const why = job.error?.message ?? 'the job worker stopped';
  return { status: 'failed', endedAt: new Date().toISOString(), error: `Interrupted: ${why}. Resume it to continue from its last checkpoint.` };
}

export class WorkbenchService {
  readonly catalog: Catalog;
  readonly jobs: JobManager;
  readonly inference: InferenceClient;
  private backend: BackendInfo | null = null;
  private readonly handlers: Handlers;
  /** The 'llm-case' job last started per "runId:userId", so a second start joins it while it runs. */
  private readonly llmCaseJobs = new Map<string, string>();
  private lastSweep = 0;

  constructor(private readonly opts: WorkbenchServiceOptions) {
    claimDataDir(opts.dataDir, opts.dbPath);
    this.catalog = Catalog.open(opts.dbPath);
    // Only what a dead process left unfinished becomes interrupted (resumable); a live owner's work, such
    // as a CLI training while the app opens, is left to it (ownership.ts).
    this.catalog.sweepOrphans(true);
    this.jobs = new JobManager({
      workerPath: opts.workerPath,
      dbPath: opts.dbPath,
      dataDir: opts.dataDir,
      onJobEnded: (job) => this.onJobEnded(job),
      slots: opts.jobSlots ?? jobSlotsFromEnv()
    });
    this.inference = new InferenceClient({
      workerPath: opts.inferenceWorkerPath ?? join(dirname(opts.workerPath), 'inference-worker.js'),
      dbPath: opts.dbPath,
      catalog: this.catalog
    });
    this.handlers = this.createHandlers();
  }

  /**
   * While the app runs, another process (a CLI) may die with a run in hand: the views that list runs and
   * backbones show it interrupted within SWEEP_INTERVAL_MS, and a resume sees it at once (`now`).
   */
  private sweepOtherProcesses(now = false): void {
    if (!now && Date.now() - this.lastSweep < SWEEP_INTERVAL_MS) return;
    this.lastSweep = Date.now();
    this.catalog.sweepOrphans(false);
  }

  /** Backend detection loads tfjs; done once at start-up, off the request path. */
  async init(): Promise<void> {
    this.backend = await initBackend();
    if (this.opts.autoImport !== false) this.ensureDefaultDataset();
  }

  onEvent(listener: (e: JobEvent) => void): () => void {
    return this.jobs.onEvent(listener);
  }

  /** Validates and dispatches one call; never throws — errors come back in the envelope. */
  async handle(method: string, rawInput: unknown): Promise<Envelope<unknown>> {
    try {
      if (!Object.hasOwn(apiInputs, method)) throw new ApiFailure('not_found', `Unknown API method "${method}"`);
      const m = method as ApiMethod;
      const input = apiInputs[m].parse(rawInput ?? {});
      const handler = this.handlers[m] as (i: unknown) => unknown;
      return { ok: true, result: await handler(input) };
    } catch (err) {
      return { ok: false, error: toApiError(err) };
    }
  }

  async close(): Promise<void> {
    await this.jobs.shutdown();
    await this.inference.close();
    this.catalog.close();
  }

  ensureDefaultDataset(): JobInfo | null {
    if (this.catalog.findDatasetByName(EMBEDDED_DATASET.name)) return null;
    const pending = this.jobs.list().find((j) => j.kind === 'import' && isPendingJob(j) && j.title.includes(EMBEDDED_DATASET.name));
    if (pending) return pending;
    return this.jobs.start('import', `Importing ${EMBEDDED_DATASET.name}`, {
      kind: 'import',
      input: { format: EMBEDDED_DATASET.format, path: resolveEmbeddedDatasetDir(), name: EMBEDDED_DATASET.name, options: {} }
    });
  }

  private createHandlers(): Handlers {
    const c = this.catalog;
    return {
      'app.info': () => {
        const ds = c.findDatasetByName(EMBEDDED_DATASET.name);
        return {
          version: this.opts.version,
          transport: this.opts.transport,
          dataDir: this.opts.dataDir,
          dbPath: this.opts.dbPath,
          backend: this.backend ?? getBackendInfo(),
          defaultDataset: { name: EMBEDDED_DATASET.name, imported: ds !== null, datasetId: ds?.id ?? null }
        };
      },
      'datasets.list': () => c.listDatasets(),
      'datasets.import': (input) => {
        if (c.findDatasetByName(input.name)) throw new ApiFailure('conflict', `A dataset named "${input.name}" already exists`);
        const title = `Importing ${input.name}`;
        if (this.jobs.list().some((j) => j.kind === 'import' && isPendingJob(j) && j.title === title)) {
          throw new ApiFailure('conflict', `A dataset named "${input.name}" is already being imported`);
        }
        const job = this.jobs.start('import', title, { kind: 'import', input });
        return { jobId: job.jobId };
      },
      'datasets.delete': ({ datasetId }) => {
        this.assertNoRunningJob((j) => j.datasetId === datasetId, 'dataset');
        const runs = c.listRuns(datasetId);
        const deleted = c.deleteDataset(datasetId);
        if (deleted) for (const r of runs) this.removeRunFiles(r.id);
        return { deleted };
      },
      'items.search': ({ datasetId, query, offset, limit }) => {
        this.requireDataset(datasetId);
        return c.searchItems(datasetId, query, offset, limit);
      },
      'users.search': ({ datasetId, query, limit }) => {
        this.requireDataset(datasetId);
        return c.searchUsers(datasetId, query, limit);
      },
      'runs.list': ({ datasetId }) => {
        this.sweepOtherProcesses();
        return c.listRuns(datasetId);
      },
      'runs.get': ({ runId }) => {
        this.sweepOtherProcesses();
        const run = c.getRun(runId);
        if (!run) throw notFound(`Run ${runId}`);
        return run;
      },
      'runs.delete': ({ runId }) => {
        this.assertNoRunningJob(this.onRun(runId), 'run');
        const deleted = c.deleteRun(runId);
        if (deleted) {
          this.removeRunFiles(runId);
          void this.inference.forget(runId);
        }
        return { deleted };
      },
      'runs.recommendations': ({ runId, k }) => {
        const run = c.getRun(runId);
        if (!run) throw notFound(`Run ${runId}`);
        if (run.status !== 'succeeded') throw new ApiFailure('conflict', `Run ${runId} is ${run.status}; only finished runs have recommendations`);
        return { runId, model: run.model, datasetName: run.datasetName, rows: c.listRecommendationRows(runId, k) };
      },
      'train.start': (input) => {
        const ds = this.requireDataset(input.datasetId);
        if (!isAvailable(input.model)) throw new ApiFailure('invalid_input', `Model ${input.model} is not available in this build`);
        // Store the complete config (defaults filled in) so a run record says exactly what was trained.
        const config = parseModelConfig(input.model, input.config);
        // ALMOSTREC's references are checked now, not minutes later in the job (which checks them again).
        if (usesBackbone(input.model)) resolveAlmostrecReferences(c, ds.id, config as unknown as AlmostrecConfig, modelDescriptor(input.model).label);
        const runId = c.createRun({ datasetId: ds.id, model: input.model, config, backend: this.backend });
        const job = this.jobs.start('train', `Training ${input.model} on ${ds.name} (run ${runId})`, { kind: 'train', runId, resume: false }, { runId, datasetId: ds.id });
        return { jobId: job.jobId, runId };
      },
      'train.resume': ({ runId }) => {
        this.sweepOtherProcesses(true);
        const run = c.getRun(runId);
        if (!run) throw notFound(`Run ${runId}`);
        if (run.status === 'running' || run.status === 'succeeded') {
          throw new ApiFailure('conflict', `Run ${runId} is ${run.status}; only failed or cancelled runs can be resumed`);
        }
        this.assertNoRunningJob(this.onRun(runId), 'run');
        // The run waits as 'queued' until its job has a slot (the worker then marks it 'running'); owned by this
        // process first, so that no sweep (another process's included) takes it for a dead process's work.
        c.claimOwnership('runs', runId);
        c.updateRun(runId, { status: 'queued', error: null });
        const job = this.jobs.start('train', `Resuming ${run.model} run ${runId}`, { kind: 'train', runId, resume: true }, { runId, datasetId: run.datasetId });
        return { jobId: job.jobId, runId };
      },
      'eval.start': ({ runId }) => {
        const run = c.getRun(runId);
        if (!run) throw notFound(`Run ${runId}`);
        if (run.status !== 'succeeded') throw new ApiFailure('conflict', `Run ${runId} is ${run.status}; only finished runs can be evaluated`);
        this.assertNoRunningJob(this.onRun(runId), 'run');
        const job = this.jobs.start('evaluate', `Evaluating run ${runId}`, { kind: 'evaluate', runId }, { runId, datasetId: run.datasetId });
        return { jobId: job.jobId };
      },
      'adapters.list': ({ backboneId, datasetId }) => c.listAdapters({ backboneId, datasetId }),
      'adapters.get': ({ runId }) => this.requireAdapter(runId),
      'adapters.rename': ({ runId, name }) => {
        this.requireAdapter(runId);
        c.renameAdapter(runId, name);
        return this.requireAdapter(runId);
      },
      'adapters.delete': ({ runId }) => {
        // An adapter is its run's output: deleting it deletes the run, refused while a job uses the run.
        this.requireAdapter(runId);
        this.assertNoRunningJob(this.onRun(runId), 'adapter\'s run');
        const deleted = c.deleteRun(runId);
        if (deleted) this.removeRunFiles(runId);
        return { deleted };
      },
      'adapters.export': async ({ runId, format, out, force }) => {
        this.requireAdapter(runId);
        if (!isAbsolute(out)) throw new ApiFailure('invalid_input', `Destination "${out}" must be an absolute folder path`);
        try {
          return await exportAdapter(c, runId, format, out, force);
        } catch (e) {
          throw new ApiFailure('invalid_input', (e as Error).message);
        }
      },
      'adapters.import': async ({ path, name }) => {
        if (!isAbsolute(path)) throw new ApiFailure('invalid_input', `Bundle folder "${path}" must be an absolute path`);
        let imported;
        try {
          imported = await importAdapter(c, this.opts.dataDir, path, { name });
        } catch (e) {
          throw new ApiFailure('invalid_input', (e as Error).message);
        }
        // Scoring needs the backbone loaded: an evaluation job fills the metrics and the case study's recommendations.
        const job = this.jobs.start('evaluate', `Evaluating imported adapter (run ${imported.runId})`, { kind: 'evaluate', runId: imported.runId }, { runId: imported.runId, datasetId: imported.datasetId });
        return { jobId: job.jobId, runId: imported.runId };
      },
      'backbones.list': () => {
        this.sweepOtherProcesses();
        return c.listBackbones();
      },
      'backbones.get': ({ backboneId }) => {
        this.sweepOtherProcesses();
        return this.requireBackbone(backboneId);
      },
      'backbones.pretrain': ({ datasetId, name, config }) => {
        const ds = this.requireDataset(datasetId);
        this.assertBackboneNameFree(name);
        const backboneId = createPretrainedBackbone(c, this.opts.dataDir, { name, datasetId: ds.id, config });
        const job = this.jobs.start('pretrain', `Pretraining ${name} on ${ds.name}`, { kind: 'pretrain', backboneId, resume: false }, { backboneId, datasetId: ds.id });
        return { jobId: job.jobId, backboneId };
      },
      'backbones.resume': ({ backboneId }) => {
        this.sweepOtherProcesses(true);
        const b = this.requireBackbone(backboneId);
        if (b.source !== 'pretrained') throw new ApiFailure('conflict', `Backbone "${b.name}" is a registered checkpoint; only backbones pretrained here can be resumed`);
        if (b.status !== 'failed' && b.status !== 'cancelled') {
          throw new ApiFailure('conflict', `Backbone "${b.name}" is ${b.status}; only failed or cancelled pretraining can be resumed`);
        }
        if (b.datasetId === null) throw new ApiFailure('conflict', `Backbone "${b.name}" cannot be resumed: the dataset it was pretrained on has been deleted`);
        this.assertNoRunningJob((j) => j.backboneId === backboneId, 'backbone');
        this.catalog.claimOwnership('backbones', backboneId); // before 'queued', as for a run
        this.catalog.updateBackbone(backboneId, { status: 'queued', error: null });
        const job = this.jobs.start('pretrain', `Resuming pretraining of ${b.name}`, { kind: 'pretrain', backboneId, resume: true }, { backboneId, datasetId: b.datasetId });
        return { jobId: job.jobId };
      },
      'backbones.register': ({ path, name }) => this.registerBackbone(path, name),
      'backbones.delete': ({ backboneId }) => {
        this.assertNoRunningJob((j) => j.backboneId === backboneId, 'backbone');
        const b = c.getBackbone(backboneId);
        const deleted = c.deleteBackbone(backboneId);
        if (deleted && b) removeBackboneFiles(this.opts.dataDir, b);
        return { deleted };
      },
      'backbones.encodeFeatures': ({ backboneId, datasetId, k }) => {
        const b = this.requireBackbone(backboneId);
        const ds = this.requireDataset(datasetId);
        if (b.status !== 'succeeded') throw new ApiFailure('conflict', `Backbone "${b.name}" is ${b.status}; visual tokens need a finished backbone`);
        const same = (j: JobInfo) => j.kind === 'backbone-features' && j.backboneId === backboneId && j.datasetId === datasetId;
        if (this.jobs.list().some((j) => isPendingJob(j) && same(j))) {
          throw new ApiFailure('conflict', `Visual tokens of "${b.name}" for ${ds.name} are already being computed`);
        }
        const job = this.jobs.start(
          'backbone-features',
          `Visual tokens (k = ${k}) of ${b.name} for ${ds.name}`,
          { kind: 'backbone-features', backboneId, datasetId, k },
          { backboneId, datasetId }
        );
        return { jobId: job.jobId };
      },
      ...createAblationHandlers({
        catalog: c,
        jobs: this.jobs,
        backend: () => this.backend,
        requireDataset: (id) => this.requireDataset(id),
        removeRunFiles: (id) => this.removeRunFiles(id)
      }),
      'jobs.list': () => this.jobs.list(),
      'jobs.cancel': ({ jobId }) => ({ cancelled: this.jobs.cancel(jobId) }),
      'caseStudy.get': ({ datasetId, userId, runIds, k }) => this.caseStudy(datasetId, userId, runIds, k),
      'caseStudy.llm.start': ({ runId, userId }) => this.startLlmCase(runId, userId),
      'caseStudy.llm.get': ({ runId, userId }) => this.llmCase(runId, userId),
      'inference.topK': ({ runId, history, k }) => this.liveTopK(runId, history, k)
    };
  }

  /** A user's sequence with its held-out (test) item last, or a not_found saying why there is none. */
  private heldOutHistory(datasetId: number, user: UserSummary): HistoryEntry[] {
    return asApiFailure(() => heldOutHistory(this.catalog, datasetId, user));
  }

  /** The LLM case job loads the run's backbone: a worker's work, started once per run and user at a time. */
  private startLlmCase(runId: number, userId: number): { jobId: string } {
    const c = this.catalog;
    const run = c.getRun(runId);
    if (!run) throw notFound(`Run ${runId}`);
    if (!isLlmKind(run.model)) throw new ApiFailure('invalid_input', `Run ${runId} is a ${run.model} run; only the LLM models read a prompt`);
    if (run.status !== 'succeeded') throw new ApiFailure('conflict', `Run ${runId} is ${run.status}; only finished runs have a case study`);
    const user = c.getUser(userId);
    if (!user) throw notFound(`User ${userId}`);
    this.heldOutHistory(run.datasetId, user);
    const key = `${runId}:${userId}`;
    const previous = this.llmCaseJobs.get(key);
    const previousJob = previous ? this.jobs.get(previous) : null;
    if (previousJob && isPendingJob(previousJob)) return { jobId: previousJob.jobId };
    const job = this.jobs.start(
      'llm-case',
      `Case study: ${modelDescriptor(run.model).label} run ${runId}, user ${user.externalId}`,
      { kind: 'llm-case', runId, userId },
      { runId, datasetId: run.datasetId }
    );
    this.llmCaseJobs.set(key, job.jobId);
    return { jobId: job.jobId };
  }

  private llmCase(runId: number, userId: number): LlmCaseStudy | null {
    const c = this.catalog;
    if (!c.getRun(runId)) throw notFound(`Run ${runId}`);
    const stored = c.getLlmCase(runId, userId);
    if (!stored) return null;
    const matched = stored.llara?.matched;
    // Posters are read now rather than stored: the catalog holds them, and one is all the column shows.
    const matchedImageUrl = matched?.hasImage ? (c.getItems([matched.id]).get(matched.id)?.imageUrl ?? null) : null;
    return { ...stored, matchedImageUrl };
  }

  private async liveTopK(runId: number, history: number[], k: number): Promise<InferenceTopK> {
    const run = this.catalog.getRun(runId);
    if (!run) throw notFound(`Run ${runId}`);
    if (run.status !== 'succeeded') throw new ApiFailure('conflict', `Run ${runId} is ${run.status}; only finished runs recommend`);
    const answer = await this.inference.topK(runId, history, k);
    const items = this.catalog.getItems(answer.items.map((r) => r.itemId));
    return {
      runId,
      recommendations: answer.items.map((r, rank) => ({ rank, score: r.score, item: items.get(r.itemId)! })),
      load: answer.load,
      loadMs: answer.loadMs,
      scoreMs: answer.scoreMs
    };
  }

  private caseStudy(datasetId: number, userId: number, runIds: number[], k: number): CaseStudy {
    return asApiFailure(() => readCaseStudy(this.catalog, datasetId, userId, runIds, k));
  }

  /** Validation runs in this process: it reads config.json and the tensor headers, not the weights. */
  private async registerBackbone(path: string, name: string): Promise<BackboneSummary> {
    this.assertBackboneNameFree(name);
    const folder = resolve(path);
    if (!existsSync(folder)) throw new ApiFailure('not_found', `Folder ${folder} not found`);
    // Loaded on first use: the backbone modules are not needed to serve anything else.
    const { registerHfBackbone } = await import('../../core/jobs/backbone-jobs');
    let backboneId: number;
    try {
      backboneId = registerHfBackbone(this.catalog, folder, name);
    } catch (err) {
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      throw new ApiFailure(missing ? 'not_found' : 'invalid_input', toApiError(err).message);
    }
    const { history: _history, ...summary } = this.requireBackbone(backboneId);
    return summary;
  }

  private requireAdapter(runId: number): AdapterSummary {
    const a = this.catalog.getAdapter(runId);
    if (!a) throw notFound(`Adapter of run ${runId}`);
    return a;
  }

  private requireBackbone(backboneId: number): BackboneDetail {
    const b = this.catalog.getBackbone(backboneId);
    if (!b) throw notFound(`Backbone ${backboneId}`);
    return b;
  }

  private assertBackboneNameFree(name: string): void {
    if (this.catalog.findBackboneByName(name)) throw new ApiFailure('conflict', `A backbone named "${name}" already exists`);
  }

  private requireDataset(datasetId: number) {
    const ds = this.catalog.getDataset(datasetId);
    if (!ds) throw notFound(`Dataset ${datasetId}`);
    return ds;
  }

  /** Refuses while a job works on it or waits in the queue to (a second click must not enqueue a duplicate). */
  private assertNoRunningJob(match: (j: JobInfo) => boolean, what: string): void {
    const pending = this.jobs.list().find((j) => isPendingJob(j) && match(j));
    if (pending) {
      throw new ApiFailure('conflict', `A job is still ${pending.status === 'queued' ? `queued (#${pending.queuePosition} in line)` : 'running'} on this ${what}; cancel it first`);
    }
  }

  /** Matches the jobs working on a run: its own, or the ablation job of the study it belongs to. */
  private onRun(runId: number): (j: JobInfo) => boolean {
    const run = this.catalog.getRun(runId);
    const studyId = run ? ablationStudyOf(run.config) : null;
    return (j) => j.runId === runId || (studyId !== null && j.kind === 'ablation' && j.studyId === studyId);
  }

  private removeRunFiles(runId: number): void {
    rmSync(runCheckpointDir(this.opts.dataDir, runId), { recursive: true, force: true });
  }

  /** A worker that died without reporting leaves its run or backbone 'running'; make that visible. */
  private onJobEnded(job: JobInfo): void {
    // A case job changes no run: only its entry for joining goes.
    if (job.kind === 'llm-case') {
      for (const [key, jobId] of this.llmCaseJobs) if (jobId === job.jobId) this.llmCaseJobs.delete(key);
      return;
    }
    if (job.kind === 'ablation' && job.studyId !== null) {
      // Every variant the job did not get to end: the one in training and those still queued.
      for (const run of this.catalog.listRuns(job.datasetId ?? undefined)) {
        if (ablationStudyOf(run.config) === job.studyId && isUnfinished(run.status)) this.catalog.updateRun(run.id, unreportedEnd(job));
      }
      return;
    }
    if (job.kind === 'pretrain' && job.backboneId !== null) {
      const b = this.catalog.getBackbone(job.backboneId);
      if (b && isUnfinished(b.status)) this.catalog.updateBackbone(job.backboneId, unreportedEnd(job));
      return;
    }
    if (job.runId === null || job.kind !== 'train') return;
    const run = this.catalog.getRun(job.runId);
    if (run && isUnfinished(run.status)) this.catalog.updateRun(job.runId, unreportedEnd(job));
  }
}

/** The case-study reader's refusals as the API's errors (same code and message). */
function asApiFailure<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof CaseStudyError) throw new ApiFailure(err.code, err.message);
    throw err;
  }
}
