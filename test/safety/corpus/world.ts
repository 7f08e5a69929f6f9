// The good datasets every corpus case starts from, one per importer: users 1-6 each rate items 1-6 (so
// the 5-core filter keeps everything), every item has a valid poster where the format has posters.
// A tree maps a path relative to the case folder to the file's bytes.
import type { ImportInputParsed } from '../../../src/core/importers';
import { tinyJpeg, tinyPng } from './images';

export type Tree = Record<string, Buffer>;
export type Format = ImportInputParsed['format'];

export interface Source {
  format: Format;
  /** The import path relative to the case folder. */
  path: string;
  options: ImportInputParsed['options'];
  tree: Tree;
}

export const USERS = [1, 2, 3, 4, 5, 6];
export const ITEMS = [1, 2, 3, 4, 5, 6];
const GENRES = ['unknown', 'Action', 'Adventure', 'Animation', "Children's", 'Comedy', 'Crime', 'Documentary', 'Drama', 'Fantasy',
  'Film-Noir', 'Horror', 'Musical', 'Mystery', 'Romance', 'Sci-Fi', 'Thriller', 'War', 'Western'];

export const rating = (u: number, i: number): number => ((u + i) % 5) + 1;
export const timestamp = (u: number, i: number): number => 900_000_000 + 1000 * u + i;
export const title = (i: number): string => `Film ${i}, part ${i} (199${i})`;
export const poster = (i: number): string => (i % 2 === 1 ? `${i}.jpg` : `${i}.png`);
const image = (i: number): Buffer => (i % 2 === 1 ? tinyJpeg() : tinyPng());

/** Data line (1-based, after an optional header) of user u's rating of item i. */
export const ratingLine = (u: number, i: number, header: boolean): number => (header ? 1 : 0) + 6 * (u - 1) + i;

const pairs = (): [number, number][] => USERS.flatMap((u) => ITEMS.map((i): [number, number] => [u, i]));
const csvQuote = (s: string): string => `"${s.replaceAll('"', '""')}"`;
const text = (lines: string[]): Buffer => Buffer.from(lines.join('\n') + '\n', 'utf8');

function posters(dir: string): Tree {
  return Object.fromEntries(ITEMS.map((i) => [`${dir}/${poster(i)}`, image(i)]));
}

export function mlLatest(): Source {
  return {
    format: 'movielens-latest',
    path: 'ml',
    options: {},
    tree: {
      'ml/movies.csv': text(['movieId,title,genres', ...ITEMS.map((i) => `${i},${csvQuote(title(i))},Action|Drama`)]),
      'ml/ratings.csv': text(['userId,movieId,rating,timestamp', ...pairs().map(([u, i]) => `${u},${i},${rating(u, i)},${timestamp(u, i)}`)]),
      'ml/items.csv': text(['movieId,overview,poster', ...ITEMS.map((i) => `${i},${csvQuote(`Plot of film ${i}.`)},posters/${poster(i)}`)]),
      ...posters('ml/posters')
    }
  };
}

export function ml100k(): Source {
  const flags = (i: number): string => GENRES.map((_, g) => (g === i ? '1' : '0')).join('|');
  return {
    format: 'movielens-100k',
    path: 'ml-100k/ml-100k',
    options: {},
    tree: {
      'ml-100k/ml-100k/u.data': text(pairs().map(([u, i]) => `${u}\t${i}\t${rating(u, i)}\t${timestamp(u, i)}`)),
      'ml-100k/ml-100k/u.item': Buffer.from(ITEMS.map((i) => `${i}|${title(i)}|01-Jan-1995||http://x/${i}|${flags(i)}`).join('\n') + '\n', 'latin1'),
      'ml-100k/ml-100k/u.genre': text([...GENRES.map((g, n) => `${g}|${n}`), '']),
      'ml-100k/items.csv': text(['item_id,title,overview,poster', ...ITEMS.map((i) => `${i},${csvQuote(title(i))},Plot ${i}.,posters/${poster(i)}`)]),
      ...posters('ml-100k/posters')
    }
  };
}

export function microlens(): Source {
  return {
    format: 'microlens',
    path: 'micro',
    options: {},
    tree: {
      'micro/Tiny_titles.csv': text(['item,title', ...ITEMS.map((i) => `${i},${csvQuote(title(i))}`)]),
      'micro/Tiny_pairs.tsv': text(USERS.map((u) => `${u}\t${ITEMS.join(' ')}`))
    }
  };
}

/** Generic: string ids, ISO timestamps on some lines, an items CSV and an images folder. */
export function generic(): Source {
  return {
    format: 'generic',
    path: 'g/events.csv',
    options: { itemsCsv: 'items.csv', imagesDir: 'images' },
    tree: {
      'g/events.csv': text([
        'user_id,item_id,timestamp,rating',
        ...pairs().map(([u, i]) => `u${u},${i},${u % 2 === 0 ? new Date(timestamp(u, i) * 1000).toISOString() : timestamp(u, i)},${rating(u, i)}`)
      ]),
      'g/items.csv': text(['item_id,title,genres', ...ITEMS.map((i) => `${i},${csvQuote(title(i))},Action|Drama`)]),
      ...posters('g/images')
    }
  };
}

export const WORLDS: Record<Format, () => Source> = {
  'movielens-latest': mlLatest,
  'movielens-100k': ml100k,
  microlens,
  generic
};
