// Row shapes as SQLite returns them, and their mapping to the shared API types.
import type { BackboneSource, BackboneStatus, BackboneSummary, PretrainPoint } from '../../shared/backbones';
import type {
  BackendInfo,
  DatasetStats,
  DatasetSummary,
  EpochRecord,
  ImportFormat,
  ItemSummary,
  Metrics,
  ModelKind,
  RunStatus,
  RunSummary,
  UserSummary
} from '../../shared/types';

export interface DatasetRow {
  id: number;
  name: string;
  format: string;
  source_path: string;
  imported_at: string;
  warnings: string;
  stats: string;
}

export interface ItemRow {
  id: number;
  external_id: string;
  title: string;
  text: string | null;
  genres: string;
  image: Buffer | null;
  image_mime: string | null;
  interactions: number;
}

export interface UserRow {
  id: number;
  external_id: string;
  kept_interactions: number;
}

export interface RunRow {
  id: number;
  dataset_id: number;
  dataset_name: string;
  model: string;
  config: string;
  status: string;
  backend: string | null;
  started_at: string | null;
  ended_at: string | null;
  checkpoint_path: string | null;
  error: string | null;
  best_epoch: number | null;
}

export interface EpochRow {
  epoch: number;
  loss: number;
  valid_ndcg10: number | null;
  seconds: number;
}

export interface MetricRow {
  split: 'valid' | 'test';
  metric: string;
  k: number;
  value: number;
}

export const ITEM_COLUMNS = 'id, external_id, title, text, genres, image, image_mime, interactions';

export function toDataset(r: DatasetRow): DatasetSummary {
  return {
    id: r.id,
    name: r.name,
    format: r.format as ImportFormat,
    sourcePath: r.source_path,
    importedAt: r.imported_at,
    stats: JSON.parse(r.stats) as DatasetStats,
    warnings: JSON.parse(r.warnings) as string[]
  };
}

export function toItem(r: ItemRow): ItemSummary {
  return {
    id: r.id,
    externalId: r.external_id,
    title: r.title,
    genres: JSON.parse(r.genres) as string[],
    text: r.text,
    imageUrl: r.image && r.image_mime ? `data:${r.image_mime};base64,${r.image.toString('base64')}` : null,
    interactions: r.interactions
  };
}

/** UserSummary.interactions = length of the user's 5-core sequence (what models train and test on). */
export function toUser(r: UserRow): UserSummary {
  return { id: r.id, externalId: r.external_id, interactions: r.kept_interactions };
}

export function toEpoch(r: EpochRow): EpochRecord {
  return { epoch: r.epoch, loss: r.loss, validNdcg10: r.valid_ndcg10, seconds: r.seconds };
}

/** Metrics are stored one row per (metric, k); MRR has no cut-off and uses k = 0. */
export const METRIC_KEYS: readonly { key: keyof Metrics; metric: string; k: number }[] = [
  { key: 'hr10', metric: 'hr', k: 10 },
  { key: 'ndcg10', metric: 'ndcg', k: 10 },
  { key: 'hr20', metric: 'hr', k: 20 },
  { key: 'ndcg20', metric: 'ndcg', k: 20 },
  { key: 'mrr', metric: 'mrr', k: 0 }
];

/** Rebuilds a split's Metrics; null unless every metric is present. */
export function toMetrics(rows: MetricRow[], split: 'valid' | 'test'): Metrics | null {
  const out: Partial<Metrics> = {};
  for (const { key, metric, k } of METRIC_KEYS) {
    const row = rows.find((r) => r.split === split && r.metric === metric && r.k === k);
    if (!row) return null;
    out[key] = row.value;
  }
  return out as Metrics;
}

export function toRun(r: RunRow, metrics: MetricRow[]): RunSummary {
  return {
    id: r.id,
    datasetId: r.dataset_id,
    datasetName: r.dataset_name,
    model: r.model as ModelKind,
    status: r.status as RunStatus,
    backend: r.backend ? (JSON.parse(r.backend) as BackendInfo) : null,
    config: JSON.parse(r.config) as Record<string, unknown>,
    startedAt: r.started_at,
    endedAt: r.ended_at,
    error: r.error,
    valid: toMetrics(metrics, 'valid'),
    test: toMetrics(metrics, 'test'),
    bestEpoch: r.best_epoch
  };
}

export interface BackboneRow {
  id: number;
  name: string;
  source: string;
  status: string;
  dataset_id: number | null;
  dataset_name: string | null;
  path: string;
  config: string;
  architecture: string | null;
  parameters: number | null;
  created_at: string;
  started_at: string | null;
  ended_at: string | null;
  error: string | null;
  backend: string | null;
}

export interface PretrainPointRow {
  step: number;
  stage: number;
  loss: number;
  learning_rate: number;
  seconds: number;
}

export function toBackbone(r: BackboneRow): BackboneSummary {
  return {
    id: r.id,
    name: r.name,
    source: r.source as BackboneSource,
    status: r.status as BackboneStatus,
    datasetId: r.dataset_id,
    datasetName: r.dataset_name,
    path: r.path,
    config: JSON.parse(r.config) as Record<string, number>,
    architecture: r.architecture,
    parameters: r.parameters,
    createdAt: r.created_at,
    startedAt: r.started_at,
    endedAt: r.ended_at,
    error: r.error,
    backend: r.backend ? (JSON.parse(r.backend) as BackendInfo) : null
  };
}

export function toPretrainPoint(r: PretrainPointRow): PretrainPoint {
  return { step: r.step, stage: r.stage === 0 ? 0 : r.stage === 1 ? 1 : 2, loss: r.loss, learningRate: r.learning_rate, seconds: r.seconds };
}
