// SASRec through the generic loop (train/train-model.ts): kept as named entry points for callers and tests
// that predate the ModelSpec contract.
import type { SasrecConfig } from '../../shared/api';
import type { SequenceData } from '../data/types';
import type { Scorer } from '../eval/evaluator';
import { loadScorer, trainModel, type TrainModelOptions, type TrainModelResult } from '../train/train-model';
import { sasrecSpec } from './sasrec';

export type TrainSasrecOptions = TrainModelOptions;
export type TrainSasrecResult = TrainModelResult;

export function trainSasrec(data: SequenceData, config: Partial<SasrecConfig>, opts: TrainSasrecOptions): Promise<TrainSasrecResult> {
  return trainModel(sasrecSpec, { data }, config, opts);
}

/** A scorer backed by saved SASRec weights (best or training checkpoint). Call dispose() when done. */
export function loadSasrecScorer(checkpointPath: string, data: SequenceData): Promise<Scorer & { dispose(): void }> {
  return loadScorer(sasrecSpec, { data }, checkpointPath);
}
