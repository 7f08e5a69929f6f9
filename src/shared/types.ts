// Domain types that cross the API boundary. Plain data only: no Node, DOM or library imports.

export type ImportFormat = 'movielens-100k' | 'movielens-latest' | 'microlens' | 'generic';

export type { ModelKind, ModelFamily } from './models';
import type { ModelKind } from './models';

export interface BackendInfo {
  /** tfjs backend name actually in use, e.g. "wasm", "tensorflow", "cpu". */
  name: string;
  threads: number;
  /** Human-readable device, e.g. "CPU (wasm SIMD)" or "GPU (WebGPU: <adapter>; <memory>)". */
  device: string;
  simd: boolean;
  /** Why each backend tried before this one was not used (not found, or failed its self-test). */
  fallbacks?: string[];
}

export interface AppInfo {
  version: string;
  transport: 'ipc' | 'http';
  dataDir: string;
  dbPath: string;
  backend: BackendInfo;
  /** Name of the embedded default dataset and whether it has been imported. */
  defaultDataset: { name: string; imported: boolean; datasetId: number | null };
}

export interface DatasetStats {
  users: number;
  items: number;
  interactions: number;
  itemsWithImage: number;
  itemsWithText: number;
  firstTimestamp: number | null;
  lastTimestamp: number | null;
  /** Users/items kept by the 5-core filter used for splits, and what it removed. */
  filtered: { users: number; items: number; interactions: number; removedUsers: number; removedItems: number; removedInteractions: number } | null;
}

export interface DatasetSummary {
  id: number;
  name: string;
  format: ImportFormat;
  sourcePath: string;
  importedAt: string;
  stats: DatasetStats;
  /** Problems found during import that did not stop it (e.g. missing posters). */
  warnings: string[];
}

export interface ItemSummary {
  id: number;
  externalId: string;
  title: string;
  genres: string[];
  text: string | null;
  /** data: URL of the image, or null when the item has none. */
  imageUrl: string | null;
  interactions: number;
}

export interface UserSummary {
  id: number;
  externalId: string;
  interactions: number;
}

export interface HistoryEntry {
  item: ItemSummary;
  timestamp: number;
  rating: number | null;
  role: 'train' | 'valid' | 'test';
}

export interface Metrics {
  hr10: number;
  ndcg10: number;
  hr20: number;
  ndcg20: number;
  mrr: number;
}

export type RunStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface EpochRecord {
  epoch: number;
  loss: number;
  validNdcg10: number | null;
  seconds: number;
}

export interface RunSummary {
  id: number;
  datasetId: number;
  datasetName: string;
  model: ModelKind;
  status: RunStatus;
  backend: BackendInfo | null;
  config: Record<string, unknown>;
  startedAt: string | null;
  endedAt: string | null;
  error: string | null;
  valid: Metrics | null;
  test: Metrics | null;
  bestEpoch: number | null;
}

export interface RunDetail extends RunSummary {
  history: EpochRecord[];
  checkpointPath: string | null;
}

export interface Recommendation {
  rank: number;
  score: number;
  item: ItemSummary;
  hit: boolean;
}

export interface CaseStudyColumn {
  runId: number;
  model: ModelKind;
  label: string;
  /** Rank (0-based) of the held-out item in this model's full ranking. */
  targetRank: number;
  recommendations: Recommendation[];
}

export interface CaseStudy {
  datasetId: number;
  user: UserSummary;
  history: HistoryEntry[];
  /** The held-out next item (test item); its input is train + valid history. */
  heldOut: HistoryEntry;
  columns: CaseStudyColumn[];
}

/** A live top-k from the inference worker (issue 14 §4): best first, history items excluded. */
export interface InferenceTopK {
  runId: number;
  recommendations: { rank: number; score: number; item: ItemSummary }[];
  /** 'cached': the model was in memory; 'loaded': read now; 'adapter-switch': read now onto a backbone already loaded. */
  load: 'cached' | 'loaded' | 'adapter-switch';
  loadMs: number;
  scoreMs: number;
}

/** An item as an LLM case names it (no poster: `hasImage` says whether the catalog has one). */
export interface LlmCaseItem {
  /** Catalog item id. */
  id: number;
  externalId: string;
  title: string;
  hasImage: boolean;
}

/** What LLaRA writes for the case's prompt, read as its own evaluation reads it (llara-eval.ts). */
export interface LlaraCaseAnswer {
  /** The greedy answer's text, without the closing ";". */
  generated: string;
  /** The one candidate whose title the text contains; null when none or several do ("invalid output"). */
  matched: LlmCaseItem | null;
  /** The candidates the prompt lists, in the prompt's order (the held-out item among them). */
  candidates: LlmCaseItem[];
  /** The matched candidate is the held-out item. */
  hit: boolean;
}

/** One user's held-out test item as an LLM run sees it (the 'llm-case' job's result, stored per run and user). */
export interface LlmCase {
  runId: number;
  userId: number;
  model: ModelKind;
  /**
   * The input the model read (history = everything before the held-out item), as text: `<s>` for BOS, an
   * item's ID token as `[ID:title]`, its visual tokens as `<image×k:title>` (the external id when untitled).
   */
  prompt: string;
  heldOut: LlmCaseItem;
  /** Rank (0-based) of the held-out item in the run's full ranking. */
  targetRank: number;
  /** 'stored': the run's test ranks; 'computed': scored by this job (the catalog had none for the user). */
  rankSource: 'stored' | 'computed';
  /** LLaRA only. */
  llara: LlaraCaseAnswer | null;
  createdAt: string;
}

/** caseStudy.llm.get: the stored case and the matched candidate's poster (data: URL, or null). */
export interface LlmCaseStudy extends LlmCase {
  matchedImageUrl: string | null;
}

export type JobKind = 'import' | 'train' | 'evaluate' | 'pretrain' | 'backbone-features' | 'ablation' | 'llm-case';

/** 'queued': waiting for a free slot of its lane (shared/jobs.ts); it has no worker yet. */
export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

/** Jobs share slots per lane: 'heavy' (training-like) and 'light' (imports, evaluations). */
export type JobLane = 'heavy' | 'light';

export interface JobInfo {
  jobId: string;
  kind: JobKind;
  title: string;
  status: JobStatus;
  lane: JobLane;
  /** 1-based place among its lane's queued jobs while 'queued'; null otherwise. */
  queuePosition: number | null;
  runId: number | null;
  datasetId: number | null;
  /** The backbone a pretraining or visual-token job works on. */
  backboneId: number | null;
  /** The ablation study an 'ablation' job trains (shared/ablation.ts). */
  studyId: number | null;
  phase: string;
  done: number;
  total: number;
  etaSeconds: number | null;
  /** When the job was submitted. */
  queuedAt: string;
  /** When its worker started; null while queued, and for a job cancelled before it started. */
  startedAt: string | null;
  error: ApiErrorShape | null;
}

export interface ApiErrorShape {
  code: string;
  message: string;
  details?: unknown;
}
