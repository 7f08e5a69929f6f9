// Trained adapters (issue 14): what a finished backbone run leaves to plug onto its backbone — the LoRA in
// Hugging Face PEFT format and, for the ALMOSTREC family, W^B, W^T and M. Plain data only (crosses the API).
import { z } from 'zod';
import type { Metrics, ModelKind } from './types';

export const ADAPTER_EXPORT_FORMATS = ['peft', 'bundle'] as const;
export type AdapterExportFormat = (typeof ADAPTER_EXPORT_FORMATS)[number];

/** One file of an adapter, relative to its run folder. */
export interface AdapterFile {
  path: string;
  bytes: number;
  sha256: string;
}

export interface AdapterSummary {
  /** The run that trained (or imported) it: one adapter per run. */
  runId: number;
  name: string;
  model: ModelKind;
  datasetId: number;
  datasetName: string;
  backboneId: number | null;
  backboneName: string | null;
  /** The SASRec/GRU4Rec run whose item table is M; null for models without one and for imported adapters. */
  seqRunId: number | null;
  source: 'trained' | 'imported';
  /** sha256 over the files' relative paths and sha256s (contentHash in adapter-files.ts). */
  contentHash: string;
  sizeBytes: number;
  files: AdapterFile[];
  valid: Metrics | null;
  test: Metrics | null;
  createdAt: string;
  /** Where an imported adapter came from: the exporting catalog's run, dataset and sequential run. */
  origin: { runId: number; datasetName: string; seqRunModel: string | null } | null;
}

const id = z.number().int().positive();
/** A folder typed as a path (browser mode has no native dialog). */
const folder = z.string().trim().min(1).max(4096);

export const adapterInputs = {
  'adapters.list': z.object({ backboneId: id.optional(), datasetId: id.optional() }).strict(),
  'adapters.get': z.object({ runId: id }).strict(),
  'adapters.rename': z.object({ runId: id, name: z.string().trim().min(1).max(200) }).strict(),
  'adapters.delete': z.object({ runId: id }).strict(),
  'adapters.export': z.object({ runId: id, format: z.enum(ADAPTER_EXPORT_FORMATS), out: folder, force: z.boolean().default(false) }).strict(),
  'adapters.import': z.object({ path: folder, name: z.string().trim().min(1).max(200).optional() }).strict()
} as const;

export interface AdapterOutputs {
  'adapters.list': AdapterSummary[];
  'adapters.get': AdapterSummary;
  'adapters.rename': AdapterSummary;
  'adapters.delete': { deleted: boolean };
  'adapters.export': { path: string; format: AdapterExportFormat; files: string[]; seconds: number };
  'adapters.import': { jobId: string; runId: number };
}
