// Runs one job request against a catalog. The same function serves the worker thread (app) and the CLI
// (in-process), so both behave identically.
import type { Catalog } from '../catalog';
import { importDataset } from '../importers';
import { runAblationJob } from './ablation-job';
import type { JobRequest, JobResult } from './requests';
import { runEvaluationJob, runTrainingJob } from './run-jobs';
import type { CancelSignal, ProgressFn } from '../progress';

export interface JobContext {
  catalog: Catalog;
  dataDir: string;
  onProgress: ProgressFn;
  onLog: (message: string) => void;
  signal: CancelSignal;
}

export async function executeJob(request: JobRequest, ctx: JobContext): Promise<JobResult> {
  switch (request.kind) {
    case 'import': {
      const { datasetId, warnings } = await importDataset(ctx.catalog, request.input, ctx.onProgress, ctx.signal);
      for (const w of warnings) ctx.onLog(w);
      return { kind: 'import', datasetId, warnings };
    }
    case 'train':
      await runTrainingJob(ctx.catalog, request.runId, { ...ctx, resume: request.resume });
      return { kind: 'train', runId: request.runId, status: 'succeeded' };
    case 'evaluate':
      await runEvaluationJob(ctx.catalog, request.runId, ctx);
      return { kind: 'evaluate', runId: request.runId };
    case 'pretrain': {
      // Loaded on demand: the backbone code (decoder, vision tower, tokenizer) is only needed by these jobs.
      const { runPretrainJob } = await import('./backbone-jobs');
      await runPretrainJob(ctx.catalog, request.backboneId, { ...ctx, resume: request.resume });
      return { kind: 'pretrain', backboneId: request.backboneId, status: 'succeeded' };
    }
    case 'backbone-features': {
      const { runBackboneFeaturesJob } = await import('./backbone-jobs');
      const { backboneId, datasetId, k } = request;
      const counts = await runBackboneFeaturesJob(ctx.catalog, { backboneId, datasetId, k }, ctx);
      return { kind: 'backbone-features', backboneId, datasetId, ...counts };
    }
    case 'ablation': {
      const { succeeded } = await runAblationJob(ctx.catalog, request, ctx);
      return { kind: 'ablation', studyId: request.studyId, succeeded };
    }
    case 'llm-case': {
      // Loaded on demand, like the backbone jobs; the result goes to the catalog, where the API reads it.
      const { runLlmCaseJob } = await import('./llm-case');
      await runLlmCaseJob(ctx.catalog, request.runId, request.userId, ctx);
      return { kind: 'llm-case', runId: request.runId, userId: request.userId };
    }
  }
}
