// The malformed-input corpus: every case is a good dataset of world.ts with one thing broken, and what
// the import must do with it — fail with an error naming the file and line, or import (with a warning
// for a skipped poster) exactly what the file says.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { badCrcPng, GIF, hugeDeclaredJpeg, hugeDeclaredPng, tinyJpeg, tinyPng, zipBombPng } from './images';
import { cloneView, interaction, type DatasetView } from './view';
import { generic, microlens, ml100k, mlLatest, rating, ratingLine, timestamp, title, type Format, type Source } from './world';

export type Expectation =
  | { error: { file: string; line: number | null; detail: RegExp } }
  | { accepted: { warnings: RegExp[]; view: (control: DatasetView) => DatasetView } };

export interface CorpusCase {
  name: string;
  source: Source;
  /** Links, FIFOs and folders a tree of bytes cannot express; `dir` is the case folder. */
  special?: (dir: string) => void;
  expect: Expectation;
}

const same = (v: DatasetView): DatasetView => v;
const error = (file: string, line: number | null, detail: RegExp): Expectation => ({ error: { file, line, detail } });
const accepted = (view: (v: DatasetView) => DatasetView = same, warnings: RegExp[] = []): Expectation => ({ accepted: { warnings, view } });
const edit = (v: DatasetView, change: (copy: DatasetView) => void): DatasetView => {
  const copy = cloneView(v);
  change(copy);
  return copy;
};

// ---- byte-level edits of one file of a source ----

function withFile(source: Source, file: string, content: Buffer | null): Source {
  const tree = { ...source.tree };
  if (content === null) delete tree[file];
  else tree[file] = content;
  return { ...source, tree };
}

/** Lines of a file as byte buffers, without their LF (the last, empty one after the final LF is dropped). */
function lines(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = buf.indexOf(0x0a); i !== -1; i = buf.indexOf(0x0a, start)) {
    out.push(buf.subarray(start, i));
    start = i + 1;
  }
  if (start < buf.length) out.push(buf.subarray(start));
  return out;
}

const join = (ls: Buffer[], eol = '\n'): Buffer => Buffer.concat(ls.flatMap((l) => [l, Buffer.from(eol)]));
const str = (s: string, latin1 = false): Buffer => Buffer.from(s, latin1 ? 'latin1' : 'utf8');

/** Replaces line k (1-based) with the result of `f` on its text. */
function mapLine(buf: Buffer, k: number, f: (line: string) => string, latin1: boolean): Buffer {
  const ls = lines(buf);
  ls[k - 1] = str(f(ls[k - 1].toString(latin1 ? 'latin1' : 'utf8')), latin1);
  return join(ls);
}

// ---- the delimited files, and the edits every one of them gets ----

interface FileSpec {
  source: () => Source;
  file: string;
  header: boolean;
  quoted: boolean;
  latin1: boolean;
  delimiter: string;
  columns: number;
  /** The data line the per-line edits break. */
  k: number;
  /** The field an empty value makes invalid. */
  idColumn: number;
  /** Where an error about a header-only file lands (default: this file, no line). */
  headerOnly?: Expectation;
  /** What a duplicated line k does (default: an error at k + 1, the id appears twice). */
  duplicate?: Expectation;
  /** An optional file whose broken header makes the importer ignore it. */
  optionalBySniffing?: boolean;
  /** What a repeated header line does (default: an error at that line). */
  repeatedHeader?: Expectation;
  /** What keeping only lines 1…k does (default: a smaller dataset, see truncatedView). */
  truncated?: Expectation;
}

const noExtras = (v: DatasetView): DatasetView =>
  edit(v, (c) => {
    for (const it of Object.values(c.items)) {
      it.text = null;
      it.mime = null;
    }
  });

const withDuplicate = (u: number | string, i: number, ts: number, r: number) => (v: DatasetView) =>
  edit(v, (c) => {
    c.interactions.push(interaction(u, i, ts, r));
    c.interactions.sort();
  });

const SPECS: FileSpec[] = [
  {
    source: mlLatest, file: 'ml/movies.csv', header: true, quoted: true, latin1: false, delimiter: ',', columns: 3, k: 3, idColumn: 0,
    headerOnly: error('ml/ratings.csv', 2, /movie 1 is not in movies.csv/),
    truncated: error('ml/ratings.csv', 4, /movie 3 is not in movies.csv/)
  },
  {
    source: mlLatest, file: 'ml/ratings.csv', header: true, quoted: true, latin1: false, delimiter: ',', columns: 4, k: 10, idColumn: 0,
    headerOnly: error('ml/ratings.csv', null, /no interactions found/),
    duplicate: accepted(withDuplicate(2, 3, timestamp(2, 3), rating(2, 3)))
  },
  {
    source: mlLatest, file: 'ml/items.csv', header: true, quoted: true, latin1: false, delimiter: ',', columns: 3, k: 4, idColumn: 0,
    headerOnly: accepted(noExtras)
  },
  {
    source: ml100k, file: 'ml-100k/ml-100k/u.data', header: false, quoted: false, latin1: false, delimiter: '\t', columns: 4, k: 10, idColumn: 0,
    duplicate: accepted(withDuplicate(2, 4, timestamp(2, 4), rating(2, 4)))
  },
  {
    source: ml100k, file: 'ml-100k/ml-100k/u.item', header: false, quoted: false, latin1: true, delimiter: '|', columns: 24, k: 3, idColumn: 0,
    truncated: error('ml-100k/ml-100k/u.data', 4, /item 4 is not in u.item/)
  },
  {
    source: ml100k, file: 'ml-100k/ml-100k/u.genre', header: false, quoted: false, latin1: true, delimiter: '|', columns: 2, k: 5, idColumn: 1,
    truncated: error('ml-100k/ml-100k/u.item', 1, /expected 10 columns, found 24/)
  },
  {
    source: ml100k, file: 'ml-100k/items.csv', header: true, quoted: true, latin1: false, delimiter: ',', columns: 4, k: 4, idColumn: 0,
    headerOnly: accepted(noExtras), optionalBySniffing: true
  },
  {
    source: microlens, file: 'micro/Tiny_titles.csv', header: true, quoted: true, latin1: false, delimiter: ',', columns: 2, k: 3, idColumn: 0,
    headerOnly: error('micro/Tiny_pairs.tsv', 1, /item 1 is not in Tiny_titles.csv/),
    truncated: error('micro/Tiny_pairs.tsv', 1, /item 3 is not in Tiny_titles.csv/)
  },
  {
    source: microlens, file: 'micro/Tiny_pairs.tsv', header: false, quoted: false, latin1: false, delimiter: '\t', columns: 2, k: 3, idColumn: 0,
    duplicate: accepted((v) =>
      edit(v, (c) => {
        for (let i = 1; i <= 6; i++) c.interactions.push(interaction(3, i, null, null));
        c.interactions.sort();
      })
    )
  },
  {
    source: generic, file: 'g/events.csv', header: true, quoted: true, latin1: false, delimiter: ',', columns: 4, k: 10, idColumn: 0,
    headerOnly: error('g/events.csv', null, /no interactions found/),
    duplicate: accepted(withDuplicate('u2', 3, timestamp(2, 3), rating(2, 3))),
    repeatedHeader: error('g/events.csv', 10, /item item_id is not in items.csv/)
  },
  {
    source: generic, file: 'g/items.csv', header: true, quoted: true, latin1: false, delimiter: ',', columns: 3, k: 4, idColumn: 0,
    headerOnly: error('g/events.csv', 2, /item 1 is not in items.csv/),
    truncated: error('g/events.csv', 5, /item 4 is not in items.csv/),
    // Generic ids are free text: a repeated header is one more item, 'item_id', that nobody rated.
    repeatedHeader: accepted((v) => edit(v, (c) => (c.items.item_id = { title: 'title', genres: ['genres'], text: null, mime: null })))
  }
];

/** The accepted result of a latin-1 file where `prefix` (decoded as latin-1) starts the title or genre name of line k. */
function latin1Prefixed(spec: FileSpec, prefix: string): (v: DatasetView) => DatasetView {
  return (v) =>
    edit(v, (c) => {
      if (spec.file.endsWith('u.item')) c.items[String(spec.k)].title = prefix + c.items[String(spec.k)].title;
      else {
        // u.genre line k names genre k-1, which world.ts gives to item k-1 alone.
        const it = c.items[String(spec.k - 1)];
        it.genres = it.genres.map((g) => prefix + g);
      }
    });
}

function fileCases(spec: FileSpec): CorpusCase[] {
  const src = spec.source();
  const original = src.tree[spec.file];
  const n = lines(original).length;
  const at = (line: number, detail: RegExp): Expectation => error(spec.file, line, detail);
  const cases: CorpusCase[] = [];
  const add = (name: string, content: Buffer | null, expect: Expectation, special?: (dir: string) => void): void => {
    cases.push({ name: `${spec.file}: ${name}`, source: withFile(src, spec.file, content), expect, special });
  };
  const ignoredOr = (e: Expectation): Expectation => (spec.optionalBySniffing ? accepted(noExtras) : e);
  const d = spec.delimiter;
  const columnsAt = (found: number): Expectation => at(spec.k, new RegExp(`expected ${spec.columns} columns, found ${found}`));

  add('empty file (0 bytes)', Buffer.alloc(0), ignoredOr(error(spec.file, null, /file is empty/)));
  add('only blank lines', str('\n\n\r\n\n'), ignoredOr(error(spec.file, null, /file is empty/)));
  if (spec.header) add('header only', join(lines(original).slice(0, 1)), spec.headerOnly ?? error(spec.file, null, /no rows/));
  add('truncated inside line k', Buffer.concat([join(lines(original).slice(0, spec.k - 1)), lines(original)[spec.k - 1].subarray(0, 1)]), columnsAt(1));
  add('truncated after line k (no final line end)', Buffer.concat(lines(original).slice(0, spec.k).flatMap((l, i) => (i ? [str('\n'), l] : [l]))), spec.truncated ?? accepted(truncatedView(spec)));
  const wrong = d === ',' ? ';' : ',';
  // With quoted titles on line 2, csv-parse already fails there (a quote opening mid-field) while the
  // header is being read: the error names line 2 and the quote, which is where the file stops being CSV.
  const quotesOnLine2 = lines(original)[1]?.includes(0x22) ?? false;
  add(
    `wrong delimiter (${JSON.stringify(wrong)})`,
    str(original.toString('latin1').replaceAll(d, wrong), true),
    !spec.header
      ? error(spec.file, 1, new RegExp(`expected ${spec.columns} columns, found 1`))
      : ignoredOr(quotesOnLine2 ? error(spec.file, 2, /Invalid Opening Quote/) : error(spec.file, 1, /missing column|no \w+ column/))
  );
  add('an extra column on line k', mapLine(original, spec.k, (l) => `${l}${d}x`, spec.latin1), columnsAt(spec.columns + 1));
  add('a missing column on line k', mapLine(original, spec.k, (l) => l.slice(l.indexOf(d) + 1), spec.latin1), columnsAt(spec.columns - 1));

  // Encodings. Bytes that are not UTF-8 are an error with the line in UTF-8 files; the latin-1 files of
  // MovieLens 100K take every byte, so there they are characters of the title or genre name.
  const insertBytes = (bytes: number[]): Buffer => {
    const ls = lines(original);
    const l = ls[spec.k - 1];
    const cut = spec.latin1 ? (spec.file.endsWith('u.item') ? l.indexOf(0x7c) + 1 : 0) : 0;
    ls[spec.k - 1] = Buffer.concat([l.subarray(0, cut), Buffer.from(bytes), l.subarray(cut)]);
    return join(ls);
  };
  for (const [what, bytes] of [
    ['invalid UTF-8 (0xC3 0x28)', [0xc3, 0x28]],
    ['a lone continuation byte (0x80)', [0x80]],
    ['an overlong encoding (0xC0 0xAF)', [0xc0, 0xaf]]
  ] as [string, number[]][]) {
    add(`${what} on line k`, insertBytes(bytes), spec.latin1 ? accepted(latin1Prefixed(spec, Buffer.from(bytes).toString('latin1'))) : at(spec.k, /invalid UTF-8/));
  }
  add(
    'ends inside a UTF-8 character',
    Buffer.concat([original, Buffer.from([0xe2, 0x82])]),
    spec.latin1 ? error(spec.file, n + 1, new RegExp(`expected ${spec.columns} columns, found 1`)) : error(spec.file, n + 1, /ends inside a character/)
  );
  const text = original.toString(spec.latin1 ? 'latin1' : 'utf8');
  add('UTF-16LE with a byte order mark (read as such)', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]), accepted());
  add(
    'UTF-16BE with a byte order mark',
    Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(text, 'utf16le').swap16()]),
    spec.latin1 ? error(spec.file, 1, /is not a whole number/) : ignoredOr(error(spec.file, 1, /UTF-16 big-endian/))
  );
  add('a UTF-8 byte order mark', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), original]), accepted());
  add('CRLF line ends', join(lines(original), '\r\n'), accepted());
  add(
    'CRLF and LF mixed',
    Buffer.concat(lines(original).flatMap((l, i) => [l, str(i % 2 === 0 ? '\r\n' : '\n')])),
    accepted()
  );
  add('CR line ends (classic Mac)', join(lines(original), '\r'), accepted());
  add('blank lines between rows', Buffer.concat(lines(original).flatMap((l, i) => [l, str(i === spec.k - 1 ? '\n\n\r\n' : '\n')])), accepted());
  add('a 10 MB line at line k', mapLine(original, spec.k, () => 'x'.repeat(10 << 20), spec.latin1), at(spec.k, /longer than 1 MiB/));
  if (spec.quoted) {
    add('an unclosed quote on line k', mapLine(original, spec.k, (l) => `"${l}`, false), at(spec.k, /never closed|Invalid Closing Quote/));
    add('text after a closing quote on line k', mapLine(original, spec.k, (l) => `"${l.split(d)[0]}"x${l.slice(l.indexOf(d))}`, false), at(spec.k, /Invalid Closing Quote/));
  }
  add(
    'line k twice',
    join(lines(original).flatMap((l, i) => (i === spec.k - 1 ? [l, l] : [l]))),
    spec.duplicate ?? at(spec.k + 1, /appears more than once/)
  );
  add(
    'an empty id on line k',
    mapLine(original, spec.k, (l) => l.split(d).map((f, i) => (i === spec.idColumn ? '' : f)).join(d), spec.latin1),
    at(spec.k, /is not a whole number|empty (user|item) id/)
  );
  if (spec.header) {
    add(
      'the header again at line k',
      join(lines(original).flatMap((l, i) => (i === spec.k - 1 ? [lines(original)[0], l] : [l]))),
      spec.repeatedHeader ?? at(spec.k, /is not a whole number|is not a number/)
    );
  }
  add('a directory instead of the file', null, ignoredOr(error(spec.file, null, /not a file/)), (dir) => fs.mkdirSync(path.join(dir, spec.file)));
  add('a FIFO instead of the file', null, ignoredOr(error(spec.file, null, /not a file/)), (dir) => execFileSync('mkfifo', [path.join(dir, spec.file)]));
  add('a link to /dev/zero', null, ignoredOr(error(spec.file, null, /not a file/)), (dir) => fs.symlinkSync('/dev/zero', path.join(dir, spec.file)));
  add('a link to itself (ELOOP)', null, ignoredOr(error(spec.file, null, /cannot be read \(ELOOP\)/)), (dir) =>
    fs.symlinkSync(path.basename(spec.file), path.join(dir, spec.file))
  );
  return cases;
}

/**
 * The view after keeping only the first k lines of the file: for files of items or interactions that is a
 * smaller but valid dataset, so it is derived here from what the lines say.
 */
function truncatedView(spec: FileSpec): (v: DatasetView) => DatasetView {
  const keptData = spec.k - (spec.header ? 1 : 0);
  return (v) =>
    edit(v, (c) => {
      const f = spec.file;
      if (/ratings\.csv|u\.data|events\.csv/.test(f)) {
        // Too few interactions remain for the 5-core filter to keep any item, and only kept items' posters are read.
        for (const it of Object.values(c.items)) it.mime = null;
        c.interactions = c.interactions.filter((x) => {
          const [u, i] = x.split('|');
          return ratingLine(Number(u.replace('u', '')), Number(i), false) <= keptData;
        });
        c.users = c.users.filter((u) => c.interactions.some((x) => x.startsWith(`${u}|`)));
      } else if (/Tiny_pairs/.test(f)) {
        c.interactions = c.interactions.filter((x) => Number(x.split('|')[0]) <= keptData);
        c.users = c.users.filter((u) => Number(u) <= keptData);
      } else {
        for (const [id, it] of Object.entries(c.items)) if (Number(id) > keptData) it.text = it.mime = null;
      }
    });
}

// ---- value edits: ids, timestamps and ratings ----

function setField(source: Source, file: string, line: number, column: number, value: string): Source {
  return withFile(source, file, mapLine(source.tree[file], line, (l) => replaceField(l, column, value), false));
}

function replaceField(l: string, column: number, value: string): string {
  const d = l.includes('\t') ? '\t' : ',';
  const fields = l.split(d);
  fields[column] = value;
  return fields.join(d);
}

interface ValueCase {
  value: string;
  /** An error detail, or how the accepted view differs (given the edited user and item). */
  expect: RegExp | ((v: DatasetView) => DatasetView);
}

const setRating = (u: number | string, i: number, ts: number, from: number, to: number | null) => (v: DatasetView) =>
  edit(v, (c) => {
    c.interactions = c.interactions.map((x) => (x === interaction(u, i, ts, from) ? interaction(u, i, ts, to) : x)).sort();
  });
const setTimestamp = (u: number | string, i: number, from: number, to: number, r: number) => (v: DatasetView) =>
  edit(v, (c) => {
    c.interactions = c.interactions.map((x) => (x === interaction(u, i, from, r) ? interaction(u, i, to, r) : x)).sort();
  });

function valueCases(source: () => Source, file: string, line: number, column: number, what: string, values: ValueCase[]): CorpusCase[] {
  return values.map(({ value, expect }) => ({
    name: `${file}: ${what} ${JSON.stringify(value)} on line ${line}`,
    source: setField(source(), file, line, column, value),
    expect: expect instanceof RegExp ? error(file, line, expect) : accepted(expect)
  }));
}

function valueCorpus(): CorpusCase[] {
  const NaNish = ['', 'abc', 'NaN', 'Infinity', '1e400', '0x10', '١٢'].map((value) => ({ value, expect: /is not a number|not a whole number/ }));
  // ML latest, line 10 = user 2, item 3; ML 100K u.data line 10 = user 2, item 4; generic line 10 = u2, item 3 (ISO date).
  const ts23 = timestamp(2, 3);
  const ts24 = timestamp(2, 4);
  const r23 = rating(2, 3);
  const r24 = rating(2, 4);
  const mlTimestamps: ValueCase[] = [
    ...NaNish,
    { value: '-1', expect: /out of range/ },
    { value: '1.5', expect: /out of range/ },
    { value: '99999999999999', expect: /out of range/ },
    { value: '253402300800', expect: /out of range/ }
  ];
  return [
    ...valueCases(mlLatest, 'ml/ratings.csv', 10, 3, 'timestamp', [
      ...mlTimestamps,
      { value: '1e9', expect: setTimestamp(2, 3, ts23, 1e9, r23) },
      { value: ` ${ts23} `, expect: same }
    ]),
    ...valueCases(mlLatest, 'ml/ratings.csv', 10, 2, 'rating', [
      ...NaNish,
      { value: '-1', expect: /out of range/ },
      { value: '0', expect: /out of range/ },
      { value: '5.5', expect: /out of range/ },
      { value: '6', expect: /out of range/ },
      { value: '2.5', expect: setRating(2, 3, ts23, r23, 2.5) }
    ]),
    ...valueCases(mlLatest, 'ml/ratings.csv', 10, 0, 'userId', [
      { value: '-2', expect: /not a whole number/ },
      { value: '2.0', expect: /not a whole number/ },
      { value: 'x2', expect: /not a whole number/ },
      { value: '002', expect: same }
    ]),
    ...valueCases(mlLatest, 'ml/ratings.csv', 10, 1, 'movieId', [
      { value: '99', expect: /movie 99 is not in movies.csv/ },
      { value: '', expect: /not a whole number/ }
    ]),
    ...valueCases(ml100k, 'ml-100k/ml-100k/u.data', 10, 3, 'timestamp', [...mlTimestamps, { value: '1e9', expect: setTimestamp(2, 4, ts24, 1e9, r24) }]),
    ...valueCases(ml100k, 'ml-100k/ml-100k/u.data', 10, 2, 'rating', [
      ...NaNish,
      { value: '0', expect: /out of range/ },
      { value: '6', expect: /out of range/ },
      { value: '2.5', expect: /out of range/ },
      { value: '-3', expect: /out of range/ }
    ]),
    ...valueCases(ml100k, 'ml-100k/ml-100k/u.data', 10, 1, 'item', [{ value: '99', expect: /item 99 is not in u.item/ }]),
    ...valueCases(microlens, 'micro/Tiny_pairs.tsv', 3, 1, 'items', [
      { value: '1 2 99', expect: /item 99 is not in Tiny_titles.csv/ },
      { value: '1 two 3', expect: /item id 'two' is not a whole number/ },
      { value: '', expect: /user 3 has no items/ }
    ]),
    ...valueCases(generic, 'g/events.csv', 10, 2, 'timestamp', [
      { value: '', expect: /neither unix seconds nor an ISO 8601 date/ },
      { value: 'yesterday', expect: /neither unix seconds nor an ISO 8601 date/ },
      { value: '1e5', expect: /neither unix seconds nor an ISO 8601 date/ },
      { value: '2020-13-45', expect: /not a valid ISO 8601 date/ },
      { value: '99999999999999', expect: /out of range/ },
      { value: '-99999999999999', expect: /out of range/ },
      { value: '-1', expect: setTimestamp('u2', 3, ts23, -1, r23) },
      { value: '2020-01-01T00:00:00Z', expect: setTimestamp('u2', 3, ts23, 1_577_836_800, r23) }
    ]),
    ...valueCases(generic, 'g/events.csv', 10, 3, 'rating', [
      { value: 'abc', expect: /is not a number/ },
      { value: 'NaN', expect: /is not a number/ },
      { value: '1e400', expect: /is not a number/ },
      { value: '0x3', expect: /is not a number/ },
      { value: '', expect: setRating('u2', 3, ts23, r23, null) },
      { value: '-1', expect: setRating('u2', 3, ts23, r23, -1) }
    ]),
    ...valueCases(generic, 'g/events.csv', 10, 1, 'item_id', [{ value: 'zz', expect: /item zz is not in items.csv/ }]),
    ...bigIdCases()
  ];
}

/** Ids past 2^53 stay distinct (they would merge if read as numbers). */
function bigIdCases(): CorpusCase[] {
  const src = mlLatest();
  const file = 'ml/ratings.csv';
  let content = src.tree[file];
  content = mapLine(content, 10, (l) => replaceField(l, 0, '12345678901234567890'), false);
  content = mapLine(content, 11, (l) => replaceField(l, 0, '12345678901234567891'), false);
  const moved = (v: DatasetView): DatasetView =>
    edit(v, (c) => {
      c.interactions = c.interactions
        .map((x) => x.replace(/^2\|3\|/, '12345678901234567890|3|').replace(/^2\|4\|/, '12345678901234567891|4|'))
        .sort();
      c.users = [...c.users, '12345678901234567890', '12345678901234567891'].sort();
    });
  return [{ name: `${file}: user ids past 2^53 on lines 10 and 11`, source: withFile(src, file, content), expect: accepted(moved) }];
}

// ---- posters ----

interface PosterHome {
  source: () => Source;
  /** The folder holding the posters, and how warnings label poster 3. */
  dir: string;
  label: string;
}

const HOMES: PosterHome[] = [
  { source: mlLatest, dir: 'ml/posters', label: 'posters/3.jpg' },
  { source: ml100k, dir: 'ml-100k/posters', label: 'posters/3.jpg' },
  { source: generic, dir: 'g/images', label: 'images/3.jpg' }
];

const noPoster3 = (v: DatasetView): DatasetView => edit(v, (c) => (c.items['3'].mime = null));
const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function posterCases(): CorpusCase[] {
  const cases: CorpusCase[] = [];
  for (const home of HOMES) {
    const file = `${home.dir}/3.jpg`;
    const warned = (problem: RegExp): Expectation => accepted(noPoster3, [new RegExp(`^${escape(home.label)}: ${problem.source}`)]);
    const add = (name: string, content: Buffer | null, expect: Expectation, special?: (dir: string) => void): void => {
      cases.push({ name: `${file}: ${name}`, source: withFile(home.source(), file, content), expect, special });
    };
    const jpg = tinyJpeg();
    const pngBytes = tinyPng();
    add('truncated JPEG', jpg.subarray(0, jpg.length >> 1), warned(/not a decodable JPEG/));
    add('JPEG header only', jpg.subarray(0, 4), warned(/not a decodable JPEG/));
    add('truncated PNG', pngBytes.subarray(0, 40), warned(/not a decodable PNG/));
    add('PNG with a bad CRC', badCrcPng(), warned(/not a decodable PNG/));
    add('zero bytes', Buffer.alloc(0), warned(/empty file/));
    add('text, not an image', str('<html>not an image</html>\n'), warned(/not a JPEG or PNG image/));
    add('a GIF', GIF, warned(/not a JPEG or PNG image/));
    add('JPEG declaring 30,000 × 30,000 pixels', hugeDeclaredJpeg(), warned(/declares 30000 × 30000 pixels/));
    add('PNG declaring 30,000 × 30,000 pixels', hugeDeclaredPng(), warned(/declares 30000 × 30000 pixels/));
    add('PNG whose data inflates to 64 MB (zip bomb)', zipBombPng(), warned(/not a decodable PNG/));
    add('missing', null, warned(/missing/));
    add('a directory', null, warned(/not a regular file/), (dir) => fs.mkdirSync(path.join(dir, file)));
    add('a FIFO', null, warned(/not a regular file/), (dir) => execFileSync('mkfifo', [path.join(dir, file)]));
    add('a link to an image outside the dataset', null, warned(/outside the dataset folder/), (dir) => {
      fs.writeFileSync(path.join(dir, 'outside.jpg'), jpg);
      fs.symlinkSync(path.join(dir, 'outside.jpg'), path.join(dir, file));
    });
    add('a relative link climbing out of the dataset', null, warned(/outside the dataset folder/), (dir) => {
      fs.writeFileSync(path.join(dir, 'outside.jpg'), jpg);
      fs.symlinkSync(path.relative(path.dirname(path.join(dir, file)), path.join(dir, 'outside.jpg')), path.join(dir, file));
    });
    add('a link to /dev/zero', null, warned(/outside the dataset folder/), (dir) => fs.symlinkSync('/dev/zero', path.join(dir, file)));
    add('a dangling link', null, warned(/missing/), (dir) => fs.symlinkSync('nowhere.jpg', path.join(dir, file)));
    add('a link to poster 1, inside the folder', null, accepted(), (dir) => fs.symlinkSync('1.jpg', path.join(dir, file)));
  }
  cases.push({
    name: 'ml/posters/3.jpg: a 33 MB file',
    source: withFile(mlLatest(), 'ml/posters/3.jpg', Buffer.concat([tinyJpeg(), Buffer.alloc(33 << 20)])),
    expect: accepted(noPoster3, [/^posters\/3\.jpg: file too large/])
  });
  // Poster paths written in an items CSV: they may not leave the CSV's folder.
  for (const [source, file, line, label] of [
    [mlLatest, 'ml/items.csv', 4, 'posters/3.jpg'],
    [ml100k, 'ml-100k/items.csv', 4, 'posters/3.jpg']
  ] as [() => Source, string, number, string][]) {
    const posterAt = (value: string): Source => withFile(source(), file, mapLine(source().tree[file], line, (l) => l.replace(label, value), false));
    const outside = (value: string): CorpusCase => ({
      name: `${file}: poster path ${value}`,
      source: posterAt(value),
      special: (dir) => fs.writeFileSync(path.join(dir, 'outside.jpg'), tinyJpeg()),
      expect: accepted(noPoster3, [new RegExp(`^${escape(value)}: outside the dataset folder`)])
    });
    cases.push(outside('../outside.jpg'), outside('/dev/zero'), outside('/dev/../dev/null'));
    cases.push({ name: `${file}: poster path posters/../posters/3.jpg`, source: posterAt('posters/../posters/3.jpg'), expect: accepted() });
  }
  return cases;
}

// ---- whole folders, and the format-specific rules ----

function folderCases(): CorpusCase[] {
  const m = mlLatest();
  const k = ml100k();
  const g = generic();
  const mi = microlens();
  const genre = 'ml-100k/ml-100k/u.genre';
  return [
    {
      name: 'ml/movies.csv: a link to a copy outside the folder (the user picked the folder; data files may be links)',
      source: withFile(m, 'ml/movies.csv', null),
      special: (dir) => {
        fs.writeFileSync(path.join(dir, 'movies-elsewhere.csv'), m.tree['ml/movies.csv']);
        fs.symlinkSync(path.join(dir, 'movies-elsewhere.csv'), path.join(dir, 'ml/movies.csv'));
      },
      expect: accepted()
    },
    { name: 'ml: the folder does not exist', source: { ...m, tree: {} }, expect: error('ml/movies.csv', null, /file not found/) },
    { name: 'micro: two *_pairs.tsv files', source: withFile(mi, 'micro/Other_pairs.tsv', mi.tree['micro/Tiny_pairs.tsv']), expect: error('micro', null, /several \*_pairs.tsv files/) },
    { name: 'micro: no *_titles.csv', source: withFile(mi, 'micro/Tiny_titles.csv', null), expect: error('micro', null, /no \*_titles.csv file/) },
    {
      name: 'g/events.csv: the interactions path is a folder',
      source: { ...g, path: 'g', options: { imagesDir: 'images' } },
      expect: error('g', null, /not a file/)
    },
    {
      name: `${genre}: an index of 4294967294 (would size an array of 4 billion)`,
      source: withFile(k, genre, Buffer.concat([k.tree[genre], str('Huge|4294967294\n')])),
      expect: error(genre, 21, /genre index 4294967294 is out of range/)
    },
    {
      name: `${genre}: index 18 missing`,
      source: withFile(k, genre, join(lines(k.tree[genre]).filter((l) => !l.toString().endsWith('|18')))),
      expect: error('ml-100k/ml-100k/u.item', 1, /expected 23 columns, found 24/)
    },
    {
      name: 'ml-100k/ml-100k/u.item: genre flag 2 on line 3',
      source: withFile(k, 'ml-100k/ml-100k/u.item', mapLine(k.tree['ml-100k/ml-100k/u.item'], 3, (l) => l.replace(/\|0$/, '|2'), true)),
      expect: error('ml-100k/ml-100k/u.item', 3, /genre flag '2' for Western is not 0 or 1/)
    },
    {
      name: 'ml-100k/ml-100k/u.item: latin-1 title (Café)',
      source: withFile(k, 'ml-100k/ml-100k/u.item', mapLine(k.tree['ml-100k/ml-100k/u.item'], 2, (l) => l.replace(title(2), 'Café (1996)'), true)),
      expect: accepted((v) => edit(v, (c) => (c.items['2'].title = 'Café (1996)')))
    },
    {
      name: 'ml/movies.csv: a quoted title spanning CRLF lines, then a bad id (line numbers stay exact)',
      source: withFile(
        m,
        'ml/movies.csv',
        join(
          lines(m.tree['ml/movies.csv']).map((l, i) => (i === 1 ? str('1,"Film 1,\r\npart 1 (1991)",Action|Drama') : i === 4 ? str('x4,Four,Drama') : l)),
          '\r\n'
        )
      ),
      expect: error('ml/movies.csv', 6, /movieId 'x4' is not a whole number/)
    },
    {
      name: 'g/items.csv: an options.itemsCsv outside the folder (an explicit choice is honoured)',
      source: { ...withFile(g, 'g/items.csv', null), options: { ...g.options, itemsCsv: '../elsewhere/items.csv' } },
      special: (dir) => {
        fs.mkdirSync(path.join(dir, 'elsewhere'));
        fs.writeFileSync(path.join(dir, 'elsewhere/items.csv'), g.tree['g/items.csv']);
      },
      expect: accepted()
    }
  ];
}

export function buildCorpus(): CorpusCase[] {
  return [...SPECS.flatMap(fileCases), ...valueCorpus(), ...posterCases(), ...folderCases()];
}

/** One good source per format: imported first, they are what accepted cases are compared with. */
export function controls(): Record<Format, Source> {
  return { 'movielens-latest': mlLatest(), 'movielens-100k': ml100k(), microlens: microlens(), generic: generic() };
}
