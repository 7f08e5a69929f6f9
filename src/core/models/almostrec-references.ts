// The catalog entries an ALMOSTREC run config points at — a finished backbone and a finished SASRec/GRU4Rec
// run on the same dataset with its item_embeddings artifact — checked with errors that say what to fix.
// Light on purpose: the API service checks a config here before it queues the job.
import { existsSync } from 'node:fs';
import type { BackboneSummary } from '../../shared/backbones';
import type { RunDetail } from '../../shared/types';
import type { Catalog } from '../catalog';
import type { AlmostrecConfig } from './almostrec-config';

/** A run config points at a catalog entry that cannot serve (the caller's input to fix, not a failure). */
export class InvalidReferenceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidReferenceError';
  }
}

/** The kinds whose item table can be M (DESIGN §5). */
export const SEQUENTIAL_RUN_KINDS: readonly string[] = ['sasrec', 'gru4rec'];

export interface AlmostrecReferences {
  backbone: BackboneSummary;
  /** null for a model that reads no item IDs (its config has no seqRunId: TALLRec). */
  seqRun: RunDetail | null;
  itemEmbeddingsPath: string | null;
}

/**
 * Checks the run config's backbone and sequential run against the catalog; every error says what to fix. A
 * config without a seqRunId key (a model that reads titles, not IDs) refers to a backbone only.
 */
export function resolveAlmostrecReferences(
  catalog: Catalog,
  datasetId: number,
  config: Pick<AlmostrecConfig, 'backboneId' | 'seqRunId'>,
  model?: string
): AlmostrecReferences & { seqRun: RunDetail; itemEmbeddingsPath: string };
export function resolveAlmostrecReferences(
  catalog: Catalog,
  datasetId: number,
  config: Pick<AlmostrecConfig, 'backboneId'> & Partial<Pick<AlmostrecConfig, 'seqRunId'>>,
  model?: string
): AlmostrecReferences;
export function resolveAlmostrecReferences(
  catalog: Catalog,
  datasetId: number,
  config: Pick<AlmostrecConfig, 'backboneId'> & Partial<Pick<AlmostrecConfig, 'seqRunId'>>,
  model = 'ALMOSTREC'
): AlmostrecReferences {
  if (!config.backboneId) throw new InvalidReferenceError(`${model} needs a backbone: set backboneId to the id of a finished backbone (Backbones view, or \`almostrec backbone list\`)`);
  const backbone = catalog.getBackbone(config.backboneId);
  if (!backbone) throw new InvalidReferenceError(`${model}: backbone ${config.backboneId} not found`);
  if (backbone.status !== 'succeeded') throw new InvalidReferenceError(`${model}: backbone ${backbone.id} (${backbone.name}) is ${backbone.status}; it must finish pretraining first`);
  if (config.seqRunId === undefined) return { backbone, seqRun: null, itemEmbeddingsPath: null };
  if (!config.seqRunId) {
    throw new InvalidReferenceError(`${model} needs a sequential run: set seqRunId to a finished SASRec or GRU4Rec run on this dataset (its item embeddings are M)`);
  }
  const seqRun = catalog.getRun(config.seqRunId);
  if (!seqRun) throw new InvalidReferenceError(`${model}: run ${config.seqRunId} not found`);
  if (!SEQUENTIAL_RUN_KINDS.includes(seqRun.model)) throw new InvalidReferenceError(`${model}: run ${seqRun.id} is a ${seqRun.model} run; M comes from a SASRec or GRU4Rec run`);
  if (seqRun.datasetId !== datasetId) {
    throw new InvalidReferenceError(`${model}: run ${seqRun.id} is on dataset ${seqRun.datasetId} (${seqRun.datasetName}), not on this run's dataset ${datasetId}`);
  }
  if (seqRun.status !== 'succeeded') throw new InvalidReferenceError(`${model}: run ${seqRun.id} is ${seqRun.status}; its item embeddings exist once it has finished`);
  const artifact = catalog
    .getArtifacts(seqRun.id)
    .filter((a) => a.kind === 'item_embeddings')
    .at(-1);
  if (!artifact) throw new InvalidReferenceError(`${model}: run ${seqRun.id} has no item_embeddings artifact (train a new ${seqRun.model} run)`);
  if (!existsSync(artifact.path)) throw new InvalidReferenceError(`${model}: run ${seqRun.id}'s item embeddings ${artifact.path} are missing`);
  return { backbone, seqRun, itemEmbeddingsPath: artifact.path };
}
