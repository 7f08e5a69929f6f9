// Pretraining captions (LLaVA stage 1, "image → caption") from what the catalog stores per item: the
// title (MovieLens titles carry the year as a trailing "(1995)" and move English articles to the end,
// "Matrix, The"), the genres list and the overview text. Missing parts are left out.
import type { Catalog } from '../catalog';

export interface ItemCaption {
  itemId: number;
  caption: string;
  hasImage: boolean;
}

export interface CaptionOptions {
  /** Longest caption in characters (the overview is cut at a word boundary, ending in "…"). */
  maxChars?: number;
  /** Only items of the 5-core split (the ones models train on and recommend); default all items. */
  coreOnly?: boolean;
  /** Only items with a stored image. */
  withImageOnly?: boolean;
}

export const DEFAULT_CAPTION_CHARS = 600;

// "(1995)" or a series' "(2006–2007)" / "(2006-)" at the end of the title.
const YEAR_SUFFIX = /\s*\((\d{4})(?:\s*[-–]\s*\d{0,4})?\)\s*$/;
// "Matrix, The" and "City of Lost Children, The (Cité des enfants perdus, La)": the article before an
// optional trailing alternative title in parentheses.
const TRAILING_ARTICLE = /^(.+?), (The|A|An)((?: \([^()]*\))*)$/;

const clean = (s: string): string => s.replace(/\s+/g, ' ').trim();

/** Splits a stored title into a readable name and its year (null when the title has none). */
export function splitTitle(title: string): { name: string; year: string | null } {
  let name = clean(title);
  const m = YEAR_SUFFIX.exec(name);
  const year = m ? m[1] : null;
  if (m) name = name.slice(0, m.index).trim();
  const a = TRAILING_ARTICLE.exec(name);
  if (a) name = `${a[2]} ${a[1]}${a[3]}`;
  return { name, year };
}

const withStop = (s: string): string => (/[.!?…]$/.test(s) ? s : `${s}.`);

/** Cuts to at most `max` characters at a word boundary, marking the cut with "…". */
function cap(s: string, max: number): string {
  if (s.length <= max) return s;
  const room = s.slice(0, max - 1);
  const space = room.lastIndexOf(' ');
  // A single overlong word is cut mid-word rather than dropped.
  return `${(space > 0 ? room.slice(0, space) : room).replace(/[\s,;:.]+$/, '')}…`;
}

/** "<title> (<year>). Genres: a, b. <overview>", whitespace normalised, at most maxChars characters. */
export function itemCaption(item: { title: string; genres: readonly string[]; text: string | null }, maxChars: number = DEFAULT_CAPTION_CHARS): string {
  if (!Number.isInteger(maxChars) || maxChars < 1) throw new Error(`captions: maxChars ${maxChars} must be a positive integer`);
  const parts: string[] = [];
  const { name, year } = splitTitle(item.title);
  if (name !== '' || year !== null) parts.push(withStop(year === null ? name : `${name} (${year})`.trim()));
  const genres = item.genres.map(clean).filter((g) => g !== '');
  if (genres.length > 0) parts.push(`Genres: ${genres.join(', ')}.`);
  const overview = clean(item.text ?? '');
  if (overview !== '') parts.push(overview);
  return cap(parts.join(' '), maxChars);
}

/**
 * Captions of the dataset's items in catalog-id order. Items with nothing to say (no title, genres or
 * text) are left out: an empty caption teaches nothing.
 */
export function loadCaptions(catalog: Catalog, datasetId: number, opts: CaptionOptions = {}): ItemCaption[] {
  const maxChars = opts.maxChars ?? DEFAULT_CAPTION_CHARS;
  const where = ['it.dataset_id = ?'];
  if (opts.withImageOnly) where.push('it.image IS NOT NULL');
  if (opts.coreOnly) {
    where.push('it.id IN (SELECT x.item_id FROM splits s JOIN interactions x ON x.id = s.interaction_id WHERE s.dataset_id = ?)');
  }
  const params = opts.coreOnly ? [datasetId, datasetId] : [datasetId];
  const rows = catalog.db
    .prepare(`SELECT it.id, it.title, it.text, it.genres, it.image IS NOT NULL AS has_image FROM items it WHERE ${where.join(' AND ')} ORDER BY it.id`)
    .all(...params) as { id: number; title: string; text: string | null; genres: string; has_image: number }[];
  const out: ItemCaption[] = [];
  for (const r of rows) {
    const genres = JSON.parse(r.genres) as unknown;
    const caption = itemCaption({ title: r.title, text: r.text, genres: Array.isArray(genres) ? genres.filter((g): g is string => typeof g === 'string') : [] }, maxChars);
    if (caption !== '') out.push({ itemId: r.id, caption, hasImage: r.has_image === 1 });
  }
  return out;
}
