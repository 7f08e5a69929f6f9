// What an imported dataset holds, in a form two imports can be compared by: the proof that an input
// the importers accept was read right (a BOM or CRLF must not change a single id, title or rating).
import type Database from 'better-sqlite3';

export interface ItemView {
  title: string;
  genres: string[];
  text: string | null;
  mime: string | null;
}

export interface DatasetView {
  users: string[];
  items: Record<string, ItemView>;
  /** `user|item|timestamp|rating`, sorted. */
  interactions: string[];
}

export function datasetView(db: Database.Database, datasetId: number): DatasetView {
  const users = (db.prepare('SELECT external_id FROM users WHERE dataset_id = ? ORDER BY external_id').pluck().all(datasetId) as string[]);
  const items: Record<string, ItemView> = {};
  const rows = db.prepare('SELECT external_id, title, genres, text, image_mime FROM items WHERE dataset_id = ?').all(datasetId) as {
    external_id: string;
    title: string;
    genres: string;
    text: string | null;
    image_mime: string | null;
  }[];
  for (const r of rows) items[r.external_id] = { title: r.title, genres: JSON.parse(r.genres) as string[], text: r.text, mime: r.image_mime };
  const interactions = (
    db
      .prepare(
        `SELECT u.external_id AS user, i.external_id AS item, x.timestamp, x.rating
         FROM interactions x JOIN users u ON u.id = x.user_id JOIN items i ON i.id = x.item_id WHERE x.dataset_id = ?`
      )
      .all(datasetId) as { user: string; item: string; timestamp: number | null; rating: number | null }[]
  )
    .map((x) => interaction(x.user, x.item, x.timestamp, x.rating))
    .sort();
  return { users, items, interactions };
}

export function interaction(user: string | number, item: string | number, timestamp: number | null, rating: number | null): string {
  return `${user}|${item}|${timestamp}|${rating}`;
}

/** A deep copy to edit into the expected view of a case. */
export function cloneView(v: DatasetView): DatasetView {
  return structuredClone(v);
}
