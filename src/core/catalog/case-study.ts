// A user's case study (paper Figure 4) read from the catalog: the history, the held-out test item and each
// run's stored top-k. One reader for the app's caseStudy.get and the CLI's figure export.
import type { CaseStudy, HistoryEntry, UserSummary } from '../../shared/types';
import type { Catalog } from './catalog';

/** Why a case study cannot be read; `code` is the API error code the app answers with. */
export class CaseStudyError extends Error {
  constructor(
    readonly code: 'not_found' | 'invalid_input',
    message: string
  ) {
    super(message);
  }
}

/** The user's history ending with the held-out test item; refused when the split has none. */
export function heldOutHistory(catalog: Catalog, datasetId: number, user: UserSummary): HistoryEntry[] {
  const history = catalog.getUserHistory(datasetId, user.id);
  if (history.at(-1)?.role !== 'test') {
    throw new CaseStudyError('not_found', `User ${user.externalId} has no held-out item (fewer than 5 interactions after filtering)`);
  }
  return history;
}

export function readCaseStudy(catalog: Catalog, datasetId: number, userId: number, runIds: readonly number[], k: number): CaseStudy {
  if (!catalog.getDataset(datasetId)) throw new CaseStudyError('not_found', `Dataset ${datasetId} not found`);
  const user = catalog.getUser(userId);
  if (!user) throw new CaseStudyError('not_found', `User ${userId} not found`);
  const history = heldOutHistory(catalog, datasetId, user);
  const heldOut = history[history.length - 1];
  const columns = runIds.map((runId) => {
    const run = catalog.getRun(runId);
    if (!run) throw new CaseStudyError('not_found', `Run ${runId} not found`);
    if (run.datasetId !== datasetId) throw new CaseStudyError('invalid_input', `Run ${runId} belongs to another dataset`);
    const recs = catalog.getRecommendations(runId, userId, k);
    if (recs.length === 0) throw new CaseStudyError('not_found', `Run ${runId} has no stored recommendations (status ${run.status})`);
    const items = catalog.getItems(recs.map((r) => r.itemId));
    return {
      runId,
      model: run.model,
      label: `${run.model} · run ${runId}`,
      targetRank: catalog.getUserRank(runId, 'test', userId) ?? -1,
      recommendations: recs.map((r) => ({
        rank: r.rank,
        score: r.score,
        item: items.get(r.itemId)!,
        hit: r.itemId === heldOut.item.id
      }))
    };
  });
  return { datasetId, user, history: history.slice(0, -1), heldOut, columns };
}
