// Catalog rows an ALMOSTREC config can point at without training anything: a finished backbone and finished
// SASRec/GRU4Rec runs with an item_embeddings artifact (an existing file; nothing reads it before training).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Catalog } from '../../src/core/catalog';
import type { Metrics } from '../../src/shared/types';

const metrics = (ndcg10: number): Metrics => ({ hr10: ndcg10 * 2, ndcg10, hr20: ndcg10 * 3, ndcg20: ndcg10 * 1.5, mrr: ndcg10 / 2 });

/** A succeeded sequential run whose item embeddings exist on disk, with the given validation NDCG@10. */
export function finishedSeqRun(catalog: Catalog, dir: string, datasetId: number, model: 'sasrec' | 'gru4rec', validNdcg10 = 0.1): number {
  const runId = catalog.createRun({ datasetId, model, config: {}, backend: null });
  catalog.updateRun(runId, { status: 'succeeded' });
  catalog.saveMetrics(runId, 'valid', metrics(validNdcg10));
  const file = join(dir, `item-embeddings-${runId}.safetensors`);
  writeFileSync(file, 'not read by these tests');
  catalog.addArtifact(runId, 'item_embeddings', file, '0'.repeat(64));
  return runId;
}

/** A succeeded backbone row. */
export function finishedBackbone(catalog: Catalog, dir: string, datasetId: number, name = 'compact-tiny'): number {
  const id = catalog.createBackbone({ name, source: 'pretrained', datasetId, path: join(dir, name), config: {} });
  catalog.updateBackbone(id, { status: 'succeeded' });
  return id;
}
