// Live recommendations from a finished run for one user, given the user's whole sequence (what the model
// would suggest next today). History items are excluded, as in evaluation.
import type { Catalog } from '../catalog';
import { initBackend } from '../tensor/backend';
import { loadRunScorer } from './run-jobs';

export interface LiveRecommendation {
  rank: number;
  itemId: number;
  externalId: string;
  title: string;
  score: number;
}

export async function recommendForUser(catalog: Catalog, runId: number, userId: number, k: number): Promise<LiveRecommendation[]> {
  const run = catalog.getRun(runId);
  if (!run) throw new Error(`Run ${runId} not found`);
  if (run.status !== 'succeeded') throw new Error(`Run ${runId} is ${run.status}; only finished runs can recommend`);
  const data = catalog.loadSequences(run.datasetId);
  const user = data.users.find((u) => u.userId === userId);
  if (!user) throw new Error(`User ${userId} is not in run ${runId}'s dataset after filtering`);
  await initBackend('auto');
  const scorer = await loadRunScorer(catalog, run, data);
  let scores: Float32Array;
  try {
    scores = await scorer.scoreBatch([user.items]);
  } finally {
    scorer.dispose?.();
  }
  const seen = new Set(user.items);
  const candidates: { index: number; score: number }[] = [];
  for (let i = 1; i <= data.numItems; i++) if (!seen.has(i)) candidates.push({ index: i, score: scores[i] });
  candidates.sort((a, b) => b.score - a.score || a.index - b.index);
  const top = candidates.slice(0, k);
  const items = catalog.getItems(top.map((c) => data.itemIds[c.index]));
  return top.map((c, rank) => {
    const item = items.get(data.itemIds[c.index])!;
    return { rank, itemId: item.id, externalId: item.externalId, title: item.title, score: c.score };
  });
}
