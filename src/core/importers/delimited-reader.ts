// Streaming reader for delimited text files (CSV, TSV, MovieLens `|` tables) on top of csv-parse, with
// 1-based line numbers for error messages, byte progress and cancellation. UTF-8 files are checked byte
// by byte (utf8-check.ts); a line is capped at MAX_LINE_BYTES.
import fs from 'node:fs';
import { pipeline, type Transform } from 'node:stream';
import { CsvError, parse } from 'csv-parse';
import { parse as parseSync } from 'csv-parse/sync';
import { throwIfCancelled, type CancelSignal } from '../progress';
import { ImportError } from './import-error';
import { Utf8Check } from './utf8-check';

export interface DelimitedOptions {
  delimiter: string;
  /** false for formats that never quote (u.data, u.item): a stray `"` is then an ordinary character. */
  quoted: boolean;
  encoding?: BufferEncoding;
  signal?: CancelSignal;
  onBytes?: (done: number, total: number) => void;
}

export interface DelimitedRecord {
  fields: string[];
  /** 1-based line where the record starts. */
  line: number;
}

const CHECK_EVERY = 2000;

/** A record as on_record returns it: the fields, tagged with where it starts and the bytes read so far. */
type Parsed = string[] & { line: number; bytes: number };
/**
 * No record of a real dataset comes near this (MicroLens' longest pairs line is ~1.2 KB); a longer one is a
 * corrupt file or an unclosed quote swallowing the rest of it, and the cap bounds the memory either takes.
 */
export const MAX_LINE_BYTES = 1 << 20;
/** Unix seconds of 9999-12-31T23:59:59Z and 0001-01-01: beyond them a date cannot be shown (Date, ISO 8601). */
const MAX_SECONDS = 253_402_300_799;
const MIN_SECONDS = -62_135_596_800;
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const SHOWN_CHARS = 40;

/** A cell value as error messages quote it: a 10 MB cell must not become a 10 MB message. */
export function shown(value: string): string {
  return value.length <= SHOWN_CHARS ? `'${value}'` : `'${value.slice(0, SHOWN_CHARS)}…' (${value.length} characters)`;
}

export function requireFile(file: string): number {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ImportError(file, null, code === 'ENOENT' ? 'file not found' : `cannot be read (${code ?? String(e)})`);
  }
  if (!stat.isFile()) throw new ImportError(file, null, 'not a file');
  return stat.size;
}

/**
 * Like fs.existsSync, but a broken link or a link loop counts: an optional file (items.csv, u.genre) that is
 * there but cannot be read is an error, not an absent file.
 */
export function lexists(file: string): boolean {
  try {
    fs.lstatSync(file);
    return true;
  } catch {
    return false;
  }
}

export async function* readDelimited(file: string, opts: DelimitedOptions): AsyncGenerator<DelimitedRecord> {
  const total = requireFile(file);
  const encoding = opts.encoding ?? 'utf8';
  const source = fs.createReadStream(file);
  let line = 1; // where the next record starts
  const parser = parse({
    delimiter: opts.delimiter,
    quote: opts.quoted ? '"' : false,
    encoding,
    bom: true,
    // Every line end, so a file that mixes CRLF and LF (csv-parse would otherwise keep the first it sees
    // and glue the other lines into fields) reads line by line.
    record_delimiter: ['\r\n', '\n', '\r'],
    max_record_size: MAX_LINE_BYTES,
    relax_column_count: true, // column counts are checked by the caller, with a clearer message
    // Lines are counted here from the records themselves, as csv-parse produces them (so a parse error
    // knows where the failing record starts even when earlier records are still buffered): csv-parse's
    // own count drifts (a CRLF inside a quoted field counts twice). Blank lines are counted, then skipped.
    skip_empty_lines: false,
    on_record: (record, context) => {
      const start = line;
      line += 1 + countLineEnds(record);
      return record.length === 1 && record[0] === '' ? null : Object.assign(record, { line: start, bytes: context.bytes });
    }
  });
  const stages: Transform[] = encoding === 'utf8' ? [new Utf8Check(file)] : [];
  // pipeline, not pipe: a read or UTF-8 error must end the parser (and so the loop below) instead of
  // leaving it waiting for data that never comes. The loop sees the error; the callback need not.
  pipeline([source, ...stages, parser], () => undefined);
  let count = 0;
  try {
    for await (const record of parser as AsyncIterable<Parsed>) {
      if (++count % CHECK_EVERY === 0) {
        throwIfCancelled(opts.signal);
        opts.onBytes?.(record.bytes, total);
      }
      yield { fields: record, line: record.line };
    }
  } catch (e) {
    if (e instanceof ImportError) throw e;
    const err = e as Error & { code?: string; lines?: number };
    // A parse error is in the record after the last complete one, which starts at `line`.
    if (err.code === 'CSV_MAX_RECORD_SIZE') {
      throw new ImportError(file, line, `a line is longer than ${MAX_LINE_BYTES / (1 << 20)} MiB (a corrupt file or an unclosed quote?)`);
    }
    if (err.code === 'CSV_QUOTE_NOT_CLOSED') throw new ImportError(file, line, 'a quote opened on this line is never closed');
    if (err instanceof CsvError) {
      // csv-parse's own "at line N" may have drifted (see above): drop it, the error names the line.
      throw new ImportError(file, line, err.message.replace(/ at line \d+/, ''));
    }
    if (err.code && err.code.startsWith('E')) throw new ImportError(file, null, `cannot be read (${err.code})`);
    throw e;
  } finally {
    // A caller may stop early (header sniffing); close the file as well as the parser.
    parser.destroy();
    source.destroy();
  }
  if (count === 0) throw new ImportError(file, null, 'file is empty');
  opts.onBytes?.(total, total);
}

/** Line ends inside quoted fields (CRLF, LF or CR: one line each), which make a record span lines. */
function countLineEnds(fields: string[]): number {
  let n = 0;
  for (const f of fields) {
    if (f.indexOf('\n') === -1 && f.indexOf('\r') === -1) continue;
    n += f.match(/\r\n|\n|\r/g)?.length ?? 0;
  }
  return n;
}

/** Throws unless the record has exactly `n` fields. */
export function expectColumns(file: string, rec: DelimitedRecord, n: number): void {
  if (rec.fields.length !== n) {
    throw new ImportError(file, rec.line, `expected ${n} columns, found ${rec.fields.length}`);
  }
}

/** Finds the first header name among `candidates` (exact, then case-insensitive). */
export function findColumn(header: string[], candidates: readonly string[]): number {
  for (const c of candidates) {
    const i = header.indexOf(c);
    if (i !== -1) return i;
  }
  const lower = header.map((h) => h.trim().toLowerCase());
  for (const c of candidates) {
    const i = lower.indexOf(c.toLowerCase());
    if (i !== -1) return i;
  }
  return -1;
}

export function requireColumn(file: string, header: string[], candidates: readonly string[]): number {
  const i = findColumn(header, candidates);
  if (i === -1) {
    throw new ImportError(file, 1, `missing column '${candidates[0]}' (header has: ${shown(header.join(', '))})`);
  }
  return i;
}

/**
 * Reads just the header row of a delimited file: its first line, so that sniffing whether an optional
 * file is the kind wanted depends on the header alone (a bad line further down is an error when the file
 * is then read, not a reason to ignore it).
 */
export function readHeader(file: string, delimiter: string): string[] {
  requireFile(file);
  const head = Buffer.alloc(64 * 1024);
  const fd = fs.openSync(file, 'r');
  let length: number;
  try {
    length = fs.readSync(fd, head, 0, head.length, 0);
  } finally {
    fs.closeSync(fd);
  }
  const bytes = head.subarray(0, length);
  const utf16 = bytes[0] === 0xff && bytes[1] === 0xfe; // a UTF-16LE BOM: csv-parse reads such files too
  const firstLine = (utf16 ? bytes.subarray(2).toString('utf16le') : bytes.toString('utf8')).split(/\r\n|\n|\r/)[0];
  let rows: string[][];
  try {
    rows = parseSync(firstLine, { delimiter, bom: true, relax_column_count: true }) as string[][];
  } catch (e) {
    throw new ImportError(file, 1, (e as Error).message);
  }
  if (rows.length === 0) throw new ImportError(file, null, 'file is empty');
  return rows[0].map((f) => f.trim());
}

export function parseId(file: string, line: number, what: string, value: string): string {
  const v = value.trim();
  if (!/^\d+$/.test(v)) throw new ImportError(file, line, `${what} ${shown(value)} is not a whole number`);
  // Canonical form: "007" and "7" are the same id. Done on the digits, not through Number, which would
  // round ids past 2^53 and merge distinct users.
  return v.replace(/^0+(?=\d)/, '');
}

export function parseNumber(file: string, line: number, what: string, value: string): number {
  const v = value.trim();
  // Decimal notation only: Number() would also take '0x1F', 'Infinity' and '' (0).
  const n = DECIMAL.test(v) ? Number(v) : NaN;
  if (!Number.isFinite(n)) throw new ImportError(file, line, `${what} ${shown(value)} is not a number`);
  return n;
}

/** A number in [min, max] (and whole when `whole`). */
export function parseNumberIn(
  file: string,
  line: number,
  what: string,
  value: string,
  range: { min: number; max: number; whole?: boolean }
): number {
  const n = parseNumber(file, line, what, value);
  if (n < range.min || n > range.max || (range.whole && !Number.isInteger(n))) {
    const kind = range.whole ? 'a whole number' : 'a number';
    throw new ImportError(file, line, `${what} ${shown(value)} is out of range (${kind} from ${range.min} to ${range.max})`);
  }
  return n;
}

/** Whole, non-negative unix seconds up to the year 9999 (the MovieLens files). */
export function parseUnixSeconds(file: string, line: number, value: string): number {
  return parseNumberIn(file, line, 'timestamp', value, { min: 0, max: MAX_SECONDS, whole: true });
}

/** Unix seconds, or an ISO 8601 date/time (converted to unix seconds), within the years 1 to 9999. */
export function parseTimestamp(file: string, line: number, value: string): number {
  const v = value.trim();
  let seconds = NaN;
  if (/^-?\d+(\.\d+)?$/.test(v)) seconds = Number(v);
  else if (/^\d{4}-\d{2}-\d{2}/.test(v)) seconds = Date.parse(v) / 1000;
  else throw new ImportError(file, line, `timestamp ${shown(value)} is neither unix seconds nor an ISO 8601 date`);
  if (Number.isNaN(seconds)) throw new ImportError(file, line, `timestamp ${shown(value)} is not a valid ISO 8601 date`);
  if (seconds < MIN_SECONDS || seconds > MAX_SECONDS) {
    throw new ImportError(file, line, `timestamp ${shown(value)} is out of range (years 1 to 9999)`);
  }
  return seconds;
}
