// Optional per-item table with plot text and poster paths (the `items.csv` that ships next to the
// MovieLens datasets here). Its poster column holds paths relative to the CSV's own folder.
import path from 'node:path';
import type { CancelSignal, ProgressFn } from '../progress';
import { findColumn, parseId, readDelimited, readHeader, requireColumn } from './delimited-reader';
import type { PosterRef } from './dataset-builder';
import { ImportError } from './import-error';

export interface ItemExtra {
  text: string | null;
  /** Absolute poster path and its label for warnings (as written in the CSV); it must stay in the CSV's folder. */
  image: PosterRef | null;
  line: number;
}

const ID_COLUMNS = ['item_id', 'movieId', 'itemId', 'item', 'id'] as const;
const TEXT_COLUMNS = ['overview', 'text', 'description', 'plot'] as const;
const IMAGE_COLUMNS = ['poster', 'image', 'cover'] as const;

/** True when `file` has an item id column and an overview or poster column. */
export function looksLikeItemExtras(file: string): boolean {
  try {
    const header = readHeader(file, ',');
    return findColumn(header, ID_COLUMNS) !== -1 && (findColumn(header, TEXT_COLUMNS) !== -1 || findColumn(header, IMAGE_COLUMNS) !== -1);
  } catch {
    return false;
  }
}

export async function readItemExtras(
  file: string,
  onProgress?: ProgressFn,
  signal?: CancelSignal
): Promise<Map<string, ItemExtra>> {
  const out = new Map<string, ItemExtra>();
  const dir = path.dirname(file);
  let idCol = -1;
  let textCol = -1;
  let imageCol = -1;
  let width = 0;
  const records = readDelimited(file, {
    delimiter: ',',
    quoted: true,
    signal,
    onBytes: (done, total) => onProgress?.({ phase: 'reading item texts', done, total })
  });
  for await (const rec of records) {
    if (rec.line === 1) {
      const header = rec.fields.map((f) => f.trim());
      idCol = requireColumn(file, header, ID_COLUMNS);
      textCol = findColumn(header, TEXT_COLUMNS);
      imageCol = findColumn(header, IMAGE_COLUMNS);
      width = header.length;
      continue;
    }
    if (rec.fields.length !== width) {
      throw new ImportError(file, rec.line, `expected ${width} columns, found ${rec.fields.length}`);
    }
    const id = parseId(file, rec.line, 'item id', rec.fields[idCol]);
    if (out.has(id)) throw new ImportError(file, rec.line, `item id ${id} appears more than once`);
    const text = textCol === -1 ? '' : rec.fields[textCol].trim();
    const poster = imageCol === -1 ? '' : rec.fields[imageCol].trim();
    out.set(id, {
      text: text === '' ? null : text,
      image: poster === '' ? null : { path: path.resolve(dir, poster), label: poster, root: dir },
      line: rec.line
    });
  }
  return out;
}

/** Poster path from an images folder: `<dir>/<id>.jpg`, else `<dir>/<id>.png` when that exists. */
export function imageInDir(dir: string, externalId: string, exists: (p: string) => boolean): PosterRef {
  const jpg = path.join(dir, `${externalId}.jpg`);
  const png = path.join(dir, `${externalId}.png`);
  const chosen = !exists(jpg) && exists(png) ? png : jpg;
  return { path: chosen, label: path.join(path.basename(dir), path.basename(chosen)), root: dir };
}
