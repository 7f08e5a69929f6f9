// Most-popular baseline: every user gets the same scores, the item's interaction count in the training
// parts (never validation/test items). The floor every sequential model must beat.
import { trainPart, type SequenceData } from '../data/types';
import type { Scorer } from '../eval/evaluator';

/** The model is its own scorer (`.scorer` is the same object, for callers that expect a model). */
export interface PopularityModel extends Scorer {
  /** counts[i] = training interactions of item index i (counts[0] = 0, padding). */
  counts: Float32Array;
  scorer: Scorer;
  scoreBatch(histories: Int32Array[]): Float32Array;
}

export function popularityCounts(data: SequenceData): Float32Array {
  const counts = new Float32Array(data.numItems + 1);
  for (const u of data.users) {
    const train = trainPart(u);
    for (let i = 0; i < train.length; i++) counts[train[i]] += 1;
  }
  return counts;
}

export function fitPopularity(data: SequenceData): PopularityModel {
  const counts = popularityCounts(data);
  const scoreBatch = (histories: Int32Array[]): Float32Array => {
    const out = new Float32Array(histories.length * counts.length);
    for (let b = 0; b < histories.length; b++) out.set(counts, b * counts.length);
    return out;
  };
  return { counts, scoreBatch, scorer: { scoreBatch } };
}
