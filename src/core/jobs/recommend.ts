// Live recommendations from a finished run for one user, given the user's whole sequence (what the model
// would suggest next today). History items are excluded, as in evaluation.
import type { Catalog } from '../catalog';
import type { Scorer } from '../eval';
import { fitPopularity } from '../models/popularity';
import { initBackend } from '../tensor/backend';
import { loadSasrecScorer } from '../train';

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
  await initBackend();
  let scorer: Scorer;
  if (run.model === 'popularity') scorer = fitPopularity(data);
  else {
    if (!run.checkpointPath) throw new Error(`Run ${runId} has no checkpoint`);
    scorer = await loadSasrecScorer(run.checkpointPath, data);
  }
  const scores = await scorer.scoreBatch([user.items]);
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
