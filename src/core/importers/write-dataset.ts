// The shared tail of every import: 5-core filter, protocol ordering, poster validation, and one catalog
// transaction that writes the dataset, its items/users/interactions and the leave-one-out split.
import type { Catalog } from '../catalog';
import { crashPoint } from '../crash-point';
import { coreFilter, type CoreFilterResult } from '../data/five-core';
import { orderUserSequences, roleAt } from '../data/sequence-order';
import { throwIfCancelled, type CancelSignal, type ProgressFn } from '../progress';
import type { DatasetStats, ImportFormat } from '../../shared/types';
import type { DatasetBuilder } from './dataset-builder';
import { loadImage } from './image-check';
import { ImportError } from './import-error';
import type { WarningList } from './warning-list';

const MIN_INTERACTIONS = 5;
const CHECK_EVERY = 5000;

export interface DatasetMeta {
  name: string;
  format: ImportFormat;
  sourcePath: string;
}

interface Prepared {
  filter: CoreFilterResult;
  sequences: Int32Array[];
  images: Map<number, { bytes: Buffer; mime: string }>;
}

/**
 * Posters are validated (decoded) and stored only for items that survive the 5-core filter: those are
 * the items models train on and recommend, and decoding every poster of a large catalogue would
 * dominate the import time.
 */
function prepare(b: DatasetBuilder, warnings: WarningList, onProgress?: ProgressFn, signal?: CancelSignal): Prepared {
  onProgress?.({ phase: 'filtering', done: 0, total: 1 });
  const userOf = Int32Array.from(b.userOf);
  const filter = coreFilter(userOf, Int32Array.from(b.itemOf), b.userIds.length, b.items.length, MIN_INTERACTIONS);
  const sequences = orderUserSequences(userOf, Float64Array.from(b.timestamps), b.userIds.length, filter.keep);
  onProgress?.({ phase: 'filtering', done: 1, total: 1 });

  const keptItem = new Uint8Array(b.items.length);
  for (let i = 0; i < b.itemOf.length; i++) if (filter.keep[i]) keptItem[b.itemOf[i]] = 1;
  const wanted = b.items.map((it, i) => (keptItem[i] && it.image ? i : -1)).filter((i) => i >= 0);
  const images = new Map<number, { bytes: Buffer; mime: string }>();
  wanted.forEach((i, n) => {
    if (n % 100 === 0) {
      throwIfCancelled(signal);
      onProgress?.({ phase: 'posters', done: n, total: wanted.length });
    }
    const img = b.items[i].image!;
    const res = loadImage(img.path);
    if (res.ok) images.set(i, { bytes: res.bytes, mime: res.mime });
    else warnings.add(`${img.label}: ${res.problem}`);
  });
  onProgress?.({ phase: 'posters', done: wanted.length, total: wanted.length });
  return { filter, sequences, images };
}

function statsOf(b: DatasetBuilder, p: Prepared): DatasetStats {
  let first = Infinity;
  let last = -Infinity;
  for (const t of b.timestamps) {
    if (t < first) first = t;
    if (t > last) last = t;
  }
  const f = p.filter;
  return {
    users: b.userIds.length,
    items: b.items.length,
    interactions: b.interactionCount,
    itemsWithImage: p.images.size,
    itemsWithText: b.items.filter((it) => it.text !== null && it.text.trim() !== '').length,
    firstTimestamp: Number.isFinite(first) ? first : null,
    lastTimestamp: Number.isFinite(last) ? last : null,
    filtered: {
      users: f.users,
      items: f.items,
      interactions: f.interactions,
      removedUsers: f.removedUsers,
      removedItems: f.removedItems,
      removedInteractions: f.removedInteractions
    }
  };
}

export function writeDataset(
  catalog: Catalog,
  meta: DatasetMeta,
  b: DatasetBuilder,
  warnings: WarningList,
  onProgress?: ProgressFn,
  signal?: CancelSignal
): number {
  if (b.interactionCount === 0) throw new ImportError(meta.sourcePath, null, 'no interactions found');
  const p = prepare(b, warnings, onProgress, signal);
  const db = catalog.db;
  const total = b.userIds.length + b.items.length + b.interactionCount + p.filter.interactions;
  let done = 0;
  const tick = (): void => {
    if (++done % CHECK_EVERY === 0) {
      throwIfCancelled(signal);
      onProgress?.({ phase: 'writing', done, total });
    }
  };
  const nUsers = b.userIds.length;
  const userRaw = new Int32Array(nUsers);
  const itemRaw = new Int32Array(b.items.length);
  for (let i = 0; i < b.interactionCount; i++) {
    userRaw[b.userOf[i]]++;
    itemRaw[b.itemOf[i]]++;
  }

  const run = db.transaction((): number => {
    onProgress?.({ phase: 'writing', done: 0, total });
    if (catalog.findDatasetByName(meta.name)) {
      throw new ImportError(meta.sourcePath, null, `a dataset named '${meta.name}' already exists`);
    }
    const datasetId = Number(
      db
        .prepare(
          'INSERT INTO datasets (name, format, source_path, imported_at, warnings, stats) VALUES (?, ?, ?, ?, ?, ?)'
        )
        .run(meta.name, meta.format, meta.sourcePath, new Date().toISOString(), '[]', JSON.stringify(statsOf(b, p)))
        .lastInsertRowid
    );
    const insUser = db.prepare(
      'INSERT INTO users (dataset_id, external_id, interactions, kept_interactions) VALUES (?, ?, ?, ?)'
    );
    const userIds = new Int32Array(nUsers);
    for (let u = 0; u < nUsers; u++) {
      userIds[u] = Number(insUser.run(datasetId, b.userIds[u], userRaw[u], p.sequences[u].length).lastInsertRowid);
      tick();
    }
    const insItem = db.prepare(
      `INSERT INTO items (dataset_id, external_id, title, text, genres, image, image_mime, interactions)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
    );
    const itemIds = new Int32Array(b.items.length);
    b.items.forEach((it, i) => {
      const img = p.images.get(i);
      itemIds[i] = Number(
        insItem.run(datasetId, it.externalId, it.title, it.text, JSON.stringify(it.genres), img?.bytes ?? null, img?.mime ?? null, itemRaw[i])
          .lastInsertRowid
      );
      tick();
    });
    const insInteraction = db.prepare(
      'INSERT INTO interactions (dataset_id, user_id, item_id, timestamp, rating, ordinal) VALUES (?, ?, ?, ?, ?, ?)'
    );
    const interactionIds = new Float64Array(b.interactionCount);
    for (let i = 0; i < b.interactionCount; i++) {
      const ts = b.timestamps[i];
      const rating = b.ratings[i];
      interactionIds[i] = Number(
        insInteraction.run(
          datasetId,
          userIds[b.userOf[i]],
          itemIds[b.itemOf[i]],
          Number.isNaN(ts) ? null : ts,
          Number.isNaN(rating) ? null : rating,
          i
        ).lastInsertRowid
      );
      tick();
    }
    // Half-way through the transaction: a kill here must leave no trace (crash-safety tests).
    crashPoint('import-write');
    const insSplit = db.prepare(
      'INSERT INTO splits (interaction_id, dataset_id, user_id, position, role) VALUES (?, ?, ?, ?, ?)'
    );
    for (let u = 0; u < nUsers; u++) {
      const seq = p.sequences[u];
      for (let pos = 0; pos < seq.length; pos++) {
        insSplit.run(interactionIds[seq[pos]], datasetId, userIds[u], pos, roleAt(pos, seq.length));
        tick();
      }
    }
    db.prepare('UPDATE datasets SET warnings = ? WHERE id = ?').run(JSON.stringify(warnings.list()), datasetId);
    throwIfCancelled(signal);
    return datasetId;
  });
  // IMMEDIATE takes the write lock up front, so the name check and the inserts see the same snapshot even
  // when a worker and the main process import at the same time.
  const id = run.immediate();
  onProgress?.({ phase: 'writing', done: total, total });
  return id;
}
