// MovieLens 100K folder: u.data (user<TAB>item<TAB>rating<TAB>timestamp), u.item (latin-1, `|`:
// id|title|release|video release|IMDb URL|genre flags…), u.genre (name|index), plus an optional items CSV
// with overviews and posters. A rating that names an item missing from u.item is an error at that line.
import fs from 'node:fs';
import path from 'node:path';
import type { CancelSignal, ProgressFn } from '../progress';
import { DatasetBuilder } from './dataset-builder';
import { expectColumns, lexists, parseId, parseNumberIn, parseUnixSeconds, readDelimited, shown } from './delimited-reader';
import { ImportError } from './import-error';
import { imageInDir, looksLikeItemExtras, readItemExtras, type ItemExtra } from './item-extras';
import type { ImportOptions, ReadResult } from './format-reader';
import type { WarningList } from './warning-list';

const DEFAULT_GENRES = [
  'unknown', 'Action', 'Adventure', 'Animation', "Children's", 'Comedy', 'Crime', 'Documentary', 'Drama', 'Fantasy',
  'Film-Noir', 'Horror', 'Musical', 'Mystery', 'Romance', 'Sci-Fi', 'Thriller', 'War', 'Western'
];

async function readGenres(file: string, signal?: CancelSignal): Promise<string[]> {
  if (!lexists(file)) return DEFAULT_GENRES;
  const byIndex = new Map<number, { name: string; line: number }>();
  for await (const rec of readDelimited(file, { delimiter: '|', quoted: false, encoding: 'latin1', signal })) {
    expectColumns(file, rec, 2);
    const index = Number(parseId(file, rec.line, 'genre index', rec.fields[1]));
    if (byIndex.has(index)) throw new ImportError(file, rec.line, `genre index ${index} appears more than once`);
    byIndex.set(index, { name: rec.fields[0], line: rec.line });
  }
  // Unique indexes all below the count are exactly 0…n-1; checked so, a huge index cannot make a huge array.
  const names: string[] = new Array<string>(byIndex.size);
  for (const [index, { name, line }] of byIndex) {
    if (index >= byIndex.size) {
      throw new ImportError(file, line, `genre index ${index} is out of range (${byIndex.size} genres: indexes 0 to ${byIndex.size - 1})`);
    }
    names[index] = name;
  }
  return names;
}

/** options.itemsCsv, else an items.csv in the folder or its parent that has overview/poster columns. */
async function findItemsCsv(folder: string, options: ImportOptions): Promise<string | null> {
  if (options.itemsCsv) return path.resolve(folder, options.itemsCsv);
  for (const candidate of [path.join(folder, 'items.csv'), path.join(folder, '..', 'items.csv')]) {
    if (fs.existsSync(candidate) && looksLikeItemExtras(candidate)) return path.resolve(candidate);
  }
  return null;
}

export async function readMovielens100k(
  folder: string,
  options: ImportOptions,
  warnings: WarningList,
  onProgress?: ProgressFn,
  signal?: CancelSignal
): Promise<ReadResult> {
  const b = new DatasetBuilder();
  const genres = await readGenres(path.join(folder, 'u.genre'), signal);
  const itemsCsv = await findItemsCsv(folder, options);
  const extras: Map<string, ItemExtra> = itemsCsv ? await readItemExtras(itemsCsv, onProgress, signal) : new Map();
  const imagesDir = options.imagesDir ? path.resolve(folder, options.imagesDir) : null;

  const itemFile = path.join(folder, 'u.item');
  const itemRecords = readDelimited(itemFile, {
    delimiter: '|',
    quoted: false,
    encoding: 'latin1',
    signal,
    onBytes: (done, total) => onProgress?.({ phase: 'reading items', done, total })
  });
  for await (const rec of itemRecords) {
    expectColumns(itemFile, rec, 5 + genres.length);
    const id = parseId(itemFile, rec.line, 'item id', rec.fields[0]);
    const flags = rec.fields.slice(5);
    const itemGenres = genres.filter((_, g) => {
      if (flags[g] !== '0' && flags[g] !== '1') {
        throw new ImportError(itemFile, rec.line, `genre flag ${shown(flags[g])} for ${genres[g]} is not 0 or 1`);
      }
      return flags[g] === '1';
    });
    const extra = extras.get(id);
    b.addItem(
      {
        externalId: id,
        title: rec.fields[1],
        text: extra?.text ?? null,
        genres: itemGenres,
        image: extra?.image ?? (imagesDir ? imageInDir(imagesDir, id, fs.existsSync) : null)
      },
      itemFile,
      rec.line
    );
  }
  for (const [id, extra] of extras) {
    if (b.itemIndexOf(id) === undefined) warnings.add(`${path.basename(itemsCsv!)}, line ${extra.line}: item ${id} is not in u.item; ignored`);
  }

  const dataFile = path.join(folder, 'u.data');
  const dataRecords = readDelimited(dataFile, {
    delimiter: '\t',
    quoted: false,
    signal,
    onBytes: (done, total) => onProgress?.({ phase: 'reading ratings', done, total })
  });
  for await (const rec of dataRecords) {
    expectColumns(dataFile, rec, 4);
    const [user, item, rating, ts] = rec.fields;
    const userId = parseId(dataFile, rec.line, 'user id', user);
    const itemId = parseId(dataFile, rec.line, 'item id', item);
    const index = b.itemIndexOf(itemId);
    if (index === undefined) throw new ImportError(dataFile, rec.line, `item ${itemId} is not in u.item`);
    b.addInteraction(
      userId,
      index,
      parseUnixSeconds(dataFile, rec.line, ts),
      parseNumberIn(dataFile, rec.line, 'rating', rating, { min: 1, max: 5, whole: true })
    );
  }
  return { builder: b, interactionsFile: dataFile };
}
