// Cached image features in the catalog's vision_features table (item, encoder id, JSON shape, little-endian
// float32 blob). Read and written through catalog.db directly so the catalog module needs no vision code.
import type { Catalog } from '../catalog';

export interface ItemImage {
  itemId: number;
  bytes: Uint8Array;
}

const CHUNK = 500; // SQLite's host-parameter limit is far above this; keeps statements small.

function chunks<T>(xs: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += CHUNK) out.push(xs.slice(i, i + CHUNK));
  return out;
}

/** Cached vectors of `encoderId` for those of `itemIds` that have one. Throws on a blob that does not match its shape. */
export function readFeatures(catalog: Catalog, encoderId: string, itemIds: readonly number[]): Map<number, Float32Array> {
  const out = new Map<number, Float32Array>();
  for (const part of chunks(itemIds)) {
    const rows = catalog.db
      .prepare(`SELECT item_id, dims, tensor FROM vision_features WHERE encoder_id = ? AND item_id IN (${part.map(() => '?').join(',')})`)
      .all(encoderId, ...part) as { item_id: number; dims: string; tensor: Buffer }[];
    for (const r of rows) {
      const dims = JSON.parse(r.dims) as number[];
      const size = dims.reduce((a, b) => a * b, 1);
      if (r.tensor.length !== size * 4) {
        throw new Error(`catalog vision_features: item ${r.item_id} (${encoderId}) has ${r.tensor.length} bytes for shape [${dims}]`);
      }
      const v = new Float32Array(size);
      for (let i = 0; i < size; i++) v[i] = r.tensor.readFloatLE(i * 4);
      out.set(r.item_id, v);
    }
  }
  return out;
}

/** Stores vectors (replacing any for the same item and encoder) in one transaction. */
export function writeFeatures(catalog: Catalog, encoderId: string, rows: readonly { itemId: number; vector: Float32Array }[]): void {
  const stmt = catalog.db.prepare('INSERT OR REPLACE INTO vision_features (item_id, encoder_id, dims, tensor) VALUES (?, ?, ?, ?)');
  catalog.db.transaction(() => {
    for (const { itemId, vector } of rows) {
      const blob = Buffer.alloc(vector.length * 4);
      for (let i = 0; i < vector.length; i++) blob.writeFloatLE(vector[i], i * 4);
      stmt.run(itemId, encoderId, JSON.stringify([vector.length]), blob);
    }
  })();
}

/** The stored image bytes of those of `itemIds` that have an image. */
export function readItemImages(catalog: Catalog, itemIds: readonly number[]): ItemImage[] {
  const out: ItemImage[] = [];
  for (const part of chunks(itemIds)) {
    const rows = catalog.db
      .prepare(`SELECT id, image FROM items WHERE image IS NOT NULL AND id IN (${part.map(() => '?').join(',')}) ORDER BY id`)
      .all(...part) as { id: number; image: Buffer }[];
    for (const r of rows) out.push({ itemId: r.id, bytes: r.image });
  }
  return out;
}

/** Those of `itemIds` whose item has a stored image, in id order. */
export function itemsWithImage(catalog: Catalog, itemIds: readonly number[]): number[] {
  const out: number[] = [];
  for (const part of chunks(itemIds)) {
    const rows = catalog.db
      .prepare(`SELECT id FROM items WHERE image IS NOT NULL AND id IN (${part.map(() => '?').join(',')}) ORDER BY id`)
      .raw()
      .all(...part) as [number][];
    for (const [id] of rows) out.push(id);
  }
  return out;
}
