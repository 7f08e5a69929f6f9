// Exports a trained model's item-embedding table in the layout ALMOSTREC loads as its M: safetensors with
// one tensor `item_embeddings` [(numItems + 1), d_i] (row i = item index i, row 0 = padding, zeros) and
// metadata telling which model, config and dataset it came from and which catalog item each row is.
import { dirname, join } from 'node:path';
import type { TrainingConfig } from '../../shared/api';
import { writeSafetensors } from '../tensor/safetensors';
import { readModelWeights } from './checkpoint';
import type { ModelContext, ModelSpec } from './model-spec';

export const ITEM_EMBEDDINGS_FILE = 'item_embeddings.safetensors';
export const ITEM_EMBEDDINGS_FORMAT = 'almostrec-item-embeddings/1';

/**
 * Writes `outPath` (default: item_embeddings.safetensors next to the checkpoint) and returns its path.
 * `ctx.data` must be the dataset the checkpoint was trained on: it supplies the row → catalog item id mapping.
 */
export function exportItemEmbeddings<C extends TrainingConfig>(
  spec: ModelSpec<C>,
  checkpointPath: string,
  ctx: ModelContext,
  outPath = join(dirname(checkpointPath), ITEM_EMBEDDINGS_FILE)
): string {
  const { data } = ctx;
  if (!spec.itemEmbeddings) throw new Error(`model ${spec.kind} has no item-embedding table to export`);
  const { weights: w, config } = readModelWeights<C>(checkpointPath, spec.kind, data, (c) => spec.paramShapes(c, ctx));
  const { table, dim } = spec.itemEmbeddings(w.params, config);
  if (table.length !== (data.numItems + 1) * dim) {
    throw new Error(`model ${spec.kind}: item table has ${table.length} values, expected ${data.numItems + 1} × ${dim}`);
  }
  // Row 0 is padding, never a real item: zero it even where a tied softmax gave it gradient.
  const out = table.slice();
  out.fill(0, 0, dim);
  writeSafetensors(
    outPath,
    { item_embeddings: { dtype: 'F32', shape: [data.numItems + 1, dim], data: out } },
    {
      format: ITEM_EMBEDDINGS_FORMAT,
      model: spec.kind,
      config: JSON.stringify(w.config),
      datasetId: String(data.datasetId),
      epoch: String(w.epoch),
      itemIds: JSON.stringify(Array.from(data.itemIds))
    }
  );
  return outPath;
}
