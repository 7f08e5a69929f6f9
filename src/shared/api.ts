// The one API contract. Each method is declared once: its input schema (validated on the main side for
// both transports) and its output type. Transports: Electron IPC (preload) and HTTP POST /api/<method>.
import { z } from 'zod';
import { MODEL_KINDS, modelDescriptor, type ModelKind } from './models';
import type {
  AppInfo,
  CaseStudy,
  DatasetSummary,
  ItemSummary,
  JobInfo,
  RunDetail,
  RunSummary,
  UserSummary
} from './types';

const id = z.number().int().positive();

/** A zod schema for one model's hyper-parameters, built from the catalogue (defaults filled in, unknown keys refused). */
export function modelConfigSchema(kind: ModelKind): z.ZodType<Record<string, number>, Record<string, number> | undefined> {
  const shape: Record<string, z.ZodType<number, number | undefined>> = {};
  for (const p of modelDescriptor(kind).params) {
    let n = z.number();
    if (p.integer) n = n.int();
    shape[p.key] = n.min(p.min).max(p.max).default(p.default);
  }
  return z.object(shape).strict() as unknown as z.ZodType<Record<string, number>, Record<string, number> | undefined>;
}

/** Validates `config` for `kind` and returns it complete (defaults filled in); throws a ZodError. */
export function parseModelConfig(kind: ModelKind, config: unknown): Record<string, number> {
  return modelConfigSchema(kind).parse(config ?? {});
}

/** Hyper-parameters every iterative model trains with. */
export interface TrainingConfig {
  epochs: number;
  batchSize: number;
  learningRate: number;
  seed: number;
  /** Evaluate validation NDCG@10 every N epochs; stop after `patience` evaluations without improvement. */
  evalEvery: number;
  patience: number;
}

export interface SasrecConfig extends TrainingConfig {
  maxLen: number;
  hiddenSize: number;
  numBlocks: number;
  numHeads: number;
  dropout: number;
  beta2: number;
}

export const sasrecConfigSchema = modelConfigSchema('sasrec') as unknown as z.ZodType<SasrecConfig, Partial<SasrecConfig> | undefined>;

export const trainInputSchema = z
  .object({
    model: z.enum(MODEL_KINDS as unknown as [ModelKind, ...ModelKind[]]),
    datasetId: id,
    /** Validated against the model's own schema by parseModelConfig. */
    config: z.record(z.string(), z.number()).default({})
  })
  .strict();
export type TrainInput = z.input<typeof trainInputSchema>;

const columnMapping = z
  .object({
    user: z.string().min(1),
    item: z.string().min(1),
    timestamp: z.string().min(1).optional(),
    rating: z.string().min(1).optional(),
    itemId: z.string().min(1).optional(),
    title: z.string().min(1).optional(),
    text: z.string().min(1).optional(),
    genres: z.string().min(1).optional(),
    image: z.string().min(1).optional()
  })
  .strict();

export const importInputSchema = z
  .object({
    format: z.enum(['movielens-100k', 'movielens-latest', 'microlens', 'generic']),
    /** Folder (or, for `generic`, the interactions CSV file). */
    path: z.string().min(1),
    name: z.string().min(1).max(200),
    options: z
      .object({
        itemsCsv: z.string().min(1).optional(),
        imagesDir: z.string().min(1).optional(),
        delimiter: z.string().min(1).max(2).optional(),
        columns: columnMapping.optional()
      })
      .strict()
      .default({})
  })
  .strict();
export type ImportInput = z.input<typeof importInputSchema>;

/** Every method: name → input schema. Outputs are typed in ApiOutputs. */
export const apiInputs = {
  'app.info': z.object({}).strict(),
  'datasets.list': z.object({}).strict(),
  'datasets.import': importInputSchema,
  'datasets.delete': z.object({ datasetId: id }).strict(),
  'items.search': z
    .object({
      datasetId: id,
      query: z.string().max(200).default(''),
      offset: z.number().int().min(0).default(0),
      limit: z.number().int().min(1).max(500).default(60)
    })
    .strict(),
  'users.search': z
    .object({ datasetId: id, query: z.string().max(200).default(''), limit: z.number().int().min(1).max(500).default(50) })
    .strict(),
  'runs.list': z.object({ datasetId: id.optional() }).strict(),
  'runs.get': z.object({ runId: id }).strict(),
  'runs.delete': z.object({ runId: id }).strict(),
  'train.start': trainInputSchema,
  'train.resume': z.object({ runId: id }).strict(),
  'eval.start': z.object({ runId: id }).strict(),
  'jobs.list': z.object({}).strict(),
  'jobs.cancel': z.object({ jobId: z.string().min(1) }).strict(),
  'caseStudy.get': z
    .object({
      datasetId: id,
      /** Catalog user id. */
      userId: id,
      runIds: z.array(id).max(8).default([]),
      k: z.number().int().min(1).max(100).default(10)
    })
    .strict()
} as const;

export type ApiMethod = keyof typeof apiInputs;

export interface ApiOutputs {
  'app.info': AppInfo;
  'datasets.list': DatasetSummary[];
  'datasets.import': { jobId: string };
  'datasets.delete': { deleted: boolean };
  'items.search': { total: number; items: ItemSummary[] };
  'users.search': { total: number; users: UserSummary[] };
  'runs.list': RunSummary[];
  'runs.get': RunDetail;
  'runs.delete': { deleted: boolean };
  'train.start': { jobId: string; runId: number };
  'train.resume': { jobId: string; runId: number };
  'eval.start': { jobId: string };
  'jobs.list': JobInfo[];
  'jobs.cancel': { cancelled: boolean };
  'caseStudy.get': CaseStudy;
}

export type ApiInput<M extends ApiMethod> = z.input<(typeof apiInputs)[M]>;
export type ApiParsedInput<M extends ApiMethod> = z.output<(typeof apiInputs)[M]>;
export type ApiOutput<M extends ApiMethod> = ApiOutputs[M];

/** What the renderer sees, whichever transport serves it. */
export interface WorkbenchApi {
  call<M extends ApiMethod>(method: M, input: ApiInput<M>): Promise<ApiOutput<M>>;
  /** Subscribe to job events; returns an unsubscribe function. */
  onEvent(listener: (event: JobEvent) => void): () => void;
}

export type JobEvent =
  | {
      type: 'progress';
      jobId: string;
      phase: string;
      done: number;
      total: number;
      etaSeconds: number | null;
      metrics?: Record<string, number>;
      runId?: number | null;
    }
  | { type: 'log'; jobId: string; message: string }
  | { type: 'finished'; job: JobInfo };

export { IPC_INVOKE_CHANNEL, IPC_EVENT_CHANNEL } from './ipc';
export type { Envelope } from './ipc';

/** Error codes used across the boundary. */
export type ApiErrorCode =
  | 'invalid_input'
  | 'not_found'
  | 'import_error'
  | 'conflict'
  | 'unauthorized'
  | 'internal';
