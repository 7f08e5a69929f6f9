// Generic interactions file (CSV/TSV with a header) + optional items CSV + optional images folder.
// Columns come from options.columns, else from common names (user_id, item_id, timestamp, rating…).
// Ids are kept as written (trimmed). Rules: empty user/item → error; timestamp, when mapped, must be unix
// seconds or ISO 8601 on every line; an empty rating is allowed (null); with an items CSV, an
// interaction naming an item not listed there is an error; without one, items are created on sight.
import fs from 'node:fs';
import path from 'node:path';
import type { CancelSignal, ProgressFn } from '../progress';
import { DatasetBuilder } from './dataset-builder';
import { findColumn, parseNumber, parseTimestamp, readDelimited, shown } from './delimited-reader';
import { ImportError } from './import-error';
import { imageInDir } from './item-extras';
import type { ImportOptions, ReadResult } from './format-reader';

type Columns = NonNullable<ImportOptions['columns']>;

const GUESSES = {
  user: ['user_id', 'userId', 'user', 'uid'],
  item: ['item_id', 'itemId', 'item', 'movieId', 'iid'],
  timestamp: ['timestamp', 'time', 'ts', 'date'],
  rating: ['rating', 'score'],
  itemId: ['item_id', 'itemId', 'item', 'movieId', 'id'],
  title: ['title', 'name'],
  text: ['text', 'overview', 'description'],
  genres: ['genres', 'genre', 'categories'],
  image: ['image', 'poster', 'cover']
} as const;

function delimiterFor(file: string, option: string | undefined): string {
  if (option) return option === '\\t' ? '\t' : option;
  return file.toLowerCase().endsWith('.tsv') ? '\t' : ',';
}

/** Column index of a mapped name (must exist), or of the first guess present, or -1. */
function column(file: string, header: string[], mapped: string | undefined, guesses: readonly string[], required: boolean): number {
  if (mapped !== undefined) {
    const i = header.indexOf(mapped);
    if (i === -1) throw new ImportError(file, 1, `column '${mapped}' not found (header has: ${shown(header.join(', '))})`);
    return i;
  }
  const i = findColumn(header, guesses);
  if (i === -1 && required) {
    throw new ImportError(file, 1, `no ${guesses[0]} column (header has: ${shown(header.join(', '))}); set options.columns`);
  }
  return i;
}

async function readItems(
  b: DatasetBuilder,
  file: string,
  columns: Partial<Columns>,
  imagesDir: string | null,
  onProgress?: ProgressFn,
  signal?: CancelSignal
): Promise<void> {
  const dir = path.dirname(file);
  let c = { id: -1, title: -1, text: -1, genres: -1, image: -1, width: 0 };
  const records = readDelimited(file, {
    delimiter: delimiterFor(file, undefined),
    quoted: true,
    signal,
    onBytes: (done, total) => onProgress?.({ phase: 'reading items', done, total })
  });
  for await (const rec of records) {
    const f = rec.fields;
    if (rec.line === 1) {
      const h = f.map((x) => x.trim());
      c = {
        id: column(file, h, columns.itemId ?? columns.item, GUESSES.itemId, true),
        title: column(file, h, columns.title, GUESSES.title, false),
        text: column(file, h, columns.text, GUESSES.text, false),
        genres: column(file, h, columns.genres, GUESSES.genres, false),
        image: column(file, h, columns.image, GUESSES.image, false),
        width: h.length
      };
      continue;
    }
    if (f.length !== c.width) throw new ImportError(file, rec.line, `expected ${c.width} columns, found ${f.length}`);
    const id = f[c.id].trim();
    if (id === '') throw new ImportError(file, rec.line, 'empty item id');
    const cell = (i: number): string => (i === -1 ? '' : f[i].trim());
    const poster = cell(c.image);
    b.addItem(
      {
        externalId: id,
        title: cell(c.title) || id,
        text: cell(c.text) || null,
        genres: cell(c.genres) === '' ? [] : cell(c.genres).split('|').map((g) => g.trim()).filter(Boolean),
        image: poster
          ? { path: path.resolve(dir, poster), label: poster, root: dir }
          : imagesDir
            ? imageInDir(imagesDir, id, fs.existsSync)
            : null
      },
      file,
      rec.line
    );
  }
}

export async function readGeneric(
  file: string,
  options: ImportOptions,
  onProgress?: ProgressFn,
  signal?: CancelSignal
): Promise<ReadResult> {
  const b = new DatasetBuilder();
  const base = path.dirname(file);
  const columns: Partial<Columns> = options.columns ?? {};
  const imagesDir = options.imagesDir ? path.resolve(base, options.imagesDir) : null;
  const itemsCsv = options.itemsCsv ? path.resolve(base, options.itemsCsv) : null;
  if (itemsCsv) await readItems(b, itemsCsv, columns, imagesDir, onProgress, signal);

  let c = { user: -1, item: -1, ts: -1, rating: -1, width: 0 };
  const records = readDelimited(file, {
    delimiter: delimiterFor(file, options.delimiter),
    quoted: true,
    signal,
    onBytes: (done, total) => onProgress?.({ phase: 'reading interactions', done, total })
  });
  for await (const rec of records) {
    const f = rec.fields;
    if (rec.line === 1) {
      const h = f.map((x) => x.trim());
      c = {
        user: column(file, h, columns.user, GUESSES.user, true),
        item: column(file, h, columns.item, GUESSES.item, true),
        ts: column(file, h, columns.timestamp, GUESSES.timestamp, false),
        rating: column(file, h, columns.rating, GUESSES.rating, false),
        width: h.length
      };
      continue;
    }
    if (f.length !== c.width) throw new ImportError(file, rec.line, `expected ${c.width} columns, found ${f.length}`);
    const user = f[c.user].trim();
    const itemId = f[c.item].trim();
    if (user === '') throw new ImportError(file, rec.line, 'empty user id');
    if (itemId === '') throw new ImportError(file, rec.line, 'empty item id');
    let index: number;
    if (itemsCsv) {
      const known = b.itemIndexOf(itemId);
      if (known === undefined) throw new ImportError(file, rec.line, `item ${itemId} is not in ${path.basename(itemsCsv)}`);
      index = known;
    } else {
      const before = b.items.length;
      index = b.itemOrCreate(itemId);
      if (imagesDir && b.items.length > before) b.items[index].image = imageInDir(imagesDir, itemId, fs.existsSync);
    }
    const rating = c.rating === -1 || f[c.rating].trim() === '' ? null : parseNumber(file, rec.line, 'rating', f[c.rating]);
    b.addInteraction(user, index, c.ts === -1 ? null : parseTimestamp(file, rec.line, f[c.ts]), rating);
  }
  return { builder: b, interactionsFile: file };
}
