// The one API contract. Each method is declared once: its input schema (validated on the main side for
// both transports) and its output type. Transports: Electron IPC (preload) and HTTP POST /api/<method>.
import { z } from 'zod';
import type { AblationStudy, AblationVariantId, SkippedVariant } from './ablation';
import { adapterInputs, type AdapterOutputs } from './adapters';
import { PRETRAIN_PARAMS, VISUAL_TOKEN_COUNTS, type BackboneDetail, type BackboneSummary } from './backbones';
import type { RecommendationRow } from './figures/recommendations-csv';
import { MODEL_KINDS, modelDescriptor, type HyperParameter, type ModelKind } from './models';
import type {
  AppInfo,
  CaseStudy,
  DatasetSummary,
  InferenceTopK,
  ItemSummary,
  JobInfo,
  LlmCaseStudy,
  RunDetail,
  RunSummary,
  UserSummary
} from './types';

const id = z.number().int().positive();

type NumberShape = Record<string, z.ZodType<number, number | undefined>>;

/** One field per catalogue entry: bounds, integer-ness and default from the plain data in src/shared. */
function paramShape(params: readonly HyperParameter[]): NumberShape {
  const shape: NumberShape = {};
  for (const p of params) {
    let n = z.number();
    if (p.integer) n = n.int();
    const bounded = n.min(p.min).max(p.max);
    const choices = p.choices;
    shape[p.key] = (choices ? bounded.refine((v) => choices.includes(v), { message: `must be one of ${choices.join(', ')}` }) : bounded).default(p.default);
  }
  return shape;
}

/** A zod schema for one model's hyper-parameters, built from the catalogue (defaults filled in, unknown keys refused). */
export function modelConfigSchema(kind: ModelKind): z.ZodType<Record<string, number>, Record<string, number> | undefined> {
  return z.object(paramShape(modelDescriptor(kind).params)).strict() as unknown as z.ZodType<Record<string, number>, Record<string, number> | undefined>;
}

/** Validates `config` for `kind` and returns it complete (defaults filled in); throws a ZodError. */
export function parseModelConfig(kind: ModelKind, config: unknown): Record<string, number> {
  return modelConfigSchema(kind).parse(config ?? {});
}

/**
 * The compact backbone's pretraining config: PRETRAIN_PARAMS (defaults filled in, unknown keys refused) plus
 * what the architecture needs beyond per-field bounds, so a bad combination fails here, not minutes into a job.
 */
export const pretrainConfigSchema = z
  .object(paramShape(PRETRAIN_PARAMS))
  .strict()
  // Only once every field is valid on its own: "must be a multiple of" next to "too small" reads as noise.
  .superRefine((raw, ctx) => {
    const c = raw as Record<string, number>;
    const issue = (key: string, message: string) => ctx.addIssue({ code: 'custom', path: [key], message });
    const { hiddenSize, numHeads, numKvHeads, gridSize, maxTokens, stage0Steps, stage1Steps, stage2Steps } = c;
    if (hiddenSize % numHeads !== 0) {
      issue('numHeads', `hiddenSize ${hiddenSize} must be a multiple of numHeads ${numHeads}`);
    } else if ((hiddenSize / numHeads) % 2 !== 0) {
      issue('numHeads', `head size hiddenSize / numHeads = ${hiddenSize / numHeads} must be even (rotary embeddings rotate pairs)`);
    }
    if (numHeads % numKvHeads !== 0) issue('numKvHeads', `numHeads ${numHeads} must be a multiple of numKvHeads ${numKvHeads}`);
    if (maxTokens <= gridSize * gridSize) {
      issue('maxTokens', `maxTokens ${maxTokens} leaves no room for a caption after the ${gridSize * gridSize} image tokens (gridSize²)`);
    }
    if (stage0Steps + stage1Steps + stage2Steps < 1) issue('stage2Steps', 'stage0Steps + stage1Steps + stage2Steps must be at least 1');
  }, { when: (payload) => payload.issues.length === 0 }) as unknown as z.ZodType<Record<string, number>, Record<string, number> | undefined>;

/** Validates a pretraining config and returns it complete (defaults filled in); throws a ZodError. */
export function parsePretrainConfig(config: unknown): Record<string, number> {
  return pretrainConfigSchema.parse(config ?? {});
}

export const pretrainInputSchema = z
  .object({
    datasetId: id,
    name: z.string().trim().min(1).max(200),
    config: pretrainConfigSchema.prefault({})
  })
  .strict();
export type PretrainInput = z.input<typeof pretrainInputSchema>;

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
  /** Every test user's stored top-k of a finished run (the CSV export of the Runs view). */
  'runs.recommendations': z.object({ runId: id, k: z.number().int().min(1).max(100).default(20) }).strict(),
  'train.start': trainInputSchema,
  'train.resume': z.object({ runId: id }).strict(),
  'eval.start': z.object({ runId: id }).strict(),
  'backbones.list': z.object({}).strict(),
  'backbones.get': z.object({ backboneId: id }).strict(),
  'backbones.pretrain': pretrainInputSchema,
  'backbones.resume': z.object({ backboneId: id }).strict(),
  'backbones.register': z
    .object({
      /** A llava-hf checkpoint folder (config.json + safetensors + tokenizer). */
      path: z.string().trim().min(1),
      name: z.string().trim().min(1).max(200)
    })
    .strict(),
  'backbones.delete': z.object({ backboneId: id }).strict(),
  'backbones.encodeFeatures': z
    .object({
      backboneId: id,
      datasetId: id,
      k: z.literal([...VISUAL_TOKEN_COUNTS]).default(1)
    })
    .strict(),
  'ablation.start': z
    .object({
      datasetId: id,
      /** The full model's ALMOSTREC config; each variant changes one thing in it. */
      config: z.record(z.string(), z.number()).default({}),
      /** The GRU4Rec run for the "GRU4Rec IDs" variant; absent: the dataset's best one by validation, if any. */
      gru4recRunId: id.optional()
    })
    .strict(),
  'ablation.list': z.object({ datasetId: id }).strict(),
  'ablation.get': z.object({ studyId: id }).strict(),
  'ablation.resume': z.object({ studyId: id }).strict(),
  'ablation.delete': z.object({ studyId: id }).strict(),
  ...adapterInputs,
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
    .strict(),
  /** Starts (or joins) the job reading an LLM run's prompt, and LLaRA's answer, for the user's held-out item. */
  'caseStudy.llm.start': z.object({ runId: id, userId: id }).strict(),
  /** That job's stored result; null until it has run. */
  'caseStudy.llm.get': z.object({ runId: id, userId: id }).strict(),
  /** Live top-k of a finished run for any history (catalog item ids, oldest first); history items excluded. */
  'inference.topK': z
    .object({
      runId: id,
      history: z.array(id).min(1).max(1000),
      k: z.number().int().min(1).max(100).default(10)
    })
    .strict()
} as const;

export type ApiMethod = keyof typeof apiInputs;

export interface ApiOutputs extends AdapterOutputs {
  'app.info': AppInfo;
  'datasets.list': DatasetSummary[];
  'datasets.import': { jobId: string };
  'datasets.delete': { deleted: boolean };
  'items.search': { total: number; items: ItemSummary[] };
  'users.search': { total: number; users: UserSummary[] };
  'runs.list': RunSummary[];
  'runs.get': RunDetail;
  'runs.delete': { deleted: boolean };
  'runs.recommendations': { runId: number; model: ModelKind; datasetName: string; rows: RecommendationRow[] };
  'train.start': { jobId: string; runId: number };
  'train.resume': { jobId: string; runId: number };
  'eval.start': { jobId: string };
  'backbones.list': BackboneSummary[];
  'backbones.get': BackboneDetail;
  'backbones.pretrain': { jobId: string; backboneId: number };
  'backbones.resume': { jobId: string };
  'backbones.register': BackboneSummary;
  'backbones.delete': { deleted: boolean };
  'backbones.encodeFeatures': { jobId: string };
  'ablation.start': { jobId: string; studyId: number; runIds: number[]; variants: AblationVariantId[]; skipped: SkippedVariant[] };
  'ablation.list': AblationStudy[];
  'ablation.get': AblationStudy;
  'ablation.resume': { jobId: string };
  'ablation.delete': { deleted: number };
  'jobs.list': JobInfo[];
  'jobs.cancel': { cancelled: boolean };
  'caseStudy.get': CaseStudy;
  'caseStudy.llm.start': { jobId: string };
  'caseStudy.llm.get': LlmCaseStudy | null;
  'inference.topK': InferenceTopK;
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
      backboneId?: number | null;
    }
  | { type: 'log'; jobId: string; message: string }
  /** A job entered the queue or moved up in it (job.queuePosition). */
  | { type: 'queued'; job: JobInfo }
  /** A job got its slot and its worker is starting (directly after 'queued' for one that waited). */
  | { type: 'started'; job: JobInfo }
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
