// MovieLens "latest" folder (ml-latest-small and its larger siblings): ratings.csv
// (userId,movieId,rating,timestamp), movies.csv (movieId,title,genres with `|`), optional items.csv with
// overview/poster columns. links.csv is not needed: posters and texts come from items.csv. A rating whose
// movie is missing from movies.csv is an error at that line.
import fs from 'node:fs';
import path from 'node:path';
import type { CancelSignal, ProgressFn } from '../progress';
import { DatasetBuilder } from './dataset-builder';
import { lexists, parseId, parseNumberIn, parseUnixSeconds, readDelimited, requireColumn } from './delimited-reader';
import { ImportError } from './import-error';
import { imageInDir, readItemExtras, type ItemExtra } from './item-extras';
import type { ImportOptions, ReadResult } from './format-reader';
import type { WarningList } from './warning-list';

const NO_GENRES = '(no genres listed)';

export async function readMovielensLatest(
  folder: string,
  options: ImportOptions,
  warnings: WarningList,
  onProgress?: ProgressFn,
  signal?: CancelSignal
): Promise<ReadResult> {
  const b = new DatasetBuilder();
  const itemsCsv = options.itemsCsv
    ? path.resolve(folder, options.itemsCsv)
    : lexists(path.join(folder, 'items.csv'))
      ? path.join(folder, 'items.csv')
      : null;
  const extras: Map<string, ItemExtra> = itemsCsv ? await readItemExtras(itemsCsv, onProgress, signal) : new Map();
  const imagesDir = options.imagesDir ? path.resolve(folder, options.imagesDir) : null;

  const moviesFile = path.join(folder, 'movies.csv');
  let cols = { id: 0, title: 1, genres: 2, width: 3 };
  const movieRecords = readDelimited(moviesFile, {
    delimiter: ',',
    quoted: true,
    signal,
    onBytes: (done, total) => onProgress?.({ phase: 'reading items', done, total })
  });
  for await (const rec of movieRecords) {
    if (rec.line === 1) {
      cols = {
        id: requireColumn(moviesFile, rec.fields, ['movieId']),
        title: requireColumn(moviesFile, rec.fields, ['title']),
        genres: requireColumn(moviesFile, rec.fields, ['genres']),
        width: rec.fields.length
      };
      continue;
    }
    if (rec.fields.length !== cols.width) {
      throw new ImportError(moviesFile, rec.line, `expected ${cols.width} columns, found ${rec.fields.length}`);
    }
    const id = parseId(moviesFile, rec.line, 'movieId', rec.fields[cols.id]);
    const genreField = rec.fields[cols.genres].trim();
    const extra = extras.get(id);
    b.addItem(
      {
        externalId: id,
        title: rec.fields[cols.title],
        text: extra?.text ?? null,
        genres: genreField === '' || genreField === NO_GENRES ? [] : genreField.split('|'),
        image: extra?.image ?? (imagesDir ? imageInDir(imagesDir, id, fs.existsSync) : null)
      },
      moviesFile,
      rec.line
    );
  }
  for (const [id, extra] of extras) {
    if (b.itemIndexOf(id) === undefined) {
      warnings.add(`${path.basename(itemsCsv!)}, line ${extra.line}: movie ${id} is not in movies.csv; ignored`);
    }
  }

  const ratingsFile = path.join(folder, 'ratings.csv');
  let rc = { user: 0, item: 1, rating: 2, ts: 3, width: 4 };
  const ratingRecords = readDelimited(ratingsFile, {
    delimiter: ',',
    quoted: true,
    signal,
    onBytes: (done, total) => onProgress?.({ phase: 'reading ratings', done, total })
  });
  for await (const rec of ratingRecords) {
    const f = rec.fields;
    if (rec.line === 1) {
      rc = {
        user: requireColumn(ratingsFile, f, ['userId']),
        item: requireColumn(ratingsFile, f, ['movieId']),
        rating: requireColumn(ratingsFile, f, ['rating']),
        ts: requireColumn(ratingsFile, f, ['timestamp']),
        width: f.length
      };
      continue;
    }
    if (f.length !== rc.width) throw new ImportError(ratingsFile, rec.line, `expected ${rc.width} columns, found ${f.length}`);
    const movieId = parseId(ratingsFile, rec.line, 'movieId', f[rc.item]);
    const index = b.itemIndexOf(movieId);
    if (index === undefined) throw new ImportError(ratingsFile, rec.line, `movie ${movieId} is not in movies.csv`);
    b.addInteraction(
      parseId(ratingsFile, rec.line, 'userId', f[rc.user]),
      index,
      parseUnixSeconds(ratingsFile, rec.line, f[rc.ts]),
      parseNumberIn(ratingsFile, rec.line, 'rating', f[rc.rating], { min: 0.5, max: 5 })
    );
  }
  return { builder: b, interactionsFile: ratingsFile };
}
