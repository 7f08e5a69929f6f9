// Streaming reader for delimited text files (CSV, TSV, MovieLens `|` tables) on top of csv-parse, with
// 1-based line numbers for error messages, byte progress and cancellation.
import fs from 'node:fs';
import { parse, type Info } from 'csv-parse';
import { throwIfCancelled, type CancelSignal } from '../progress';
import { ImportError } from './import-error';

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

export function requireFile(file: string): number {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new ImportError(file, null, 'file not found');
  }
  if (!stat.isFile()) throw new ImportError(file, null, 'not a file');
  return stat.size;
}

export async function* readDelimited(file: string, opts: DelimitedOptions): AsyncGenerator<DelimitedRecord> {
  const total = requireFile(file);
  const source = fs.createReadStream(file);
  const parser = source.pipe(
    parse({
      delimiter: opts.delimiter,
      quote: opts.quoted ? '"' : false,
      encoding: opts.encoding ?? 'utf8',
      bom: true,
      relax_column_count: true, // column counts are checked by the caller, with a clearer message
      skip_empty_lines: true,
      info: true
    })
  );
  let count = 0;
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: Info }>) {
      if (++count % CHECK_EVERY === 0) {
        throwIfCancelled(opts.signal);
        opts.onBytes?.(info.bytes, total);
      }
      // Strip a trailing CR left when a file mixes line ends (csv-parse auto-detects only the first).
      const last = record.length - 1;
      if (last >= 0 && record[last].endsWith('\r')) record[last] = record[last].slice(0, -1);
      yield { fields: record, line: info.lines - countNewlines(record) };
    }
  } catch (e) {
    if (e instanceof ImportError) throw e;
    const err = e as Error & { code?: string; lines?: number };
    if (err.code && err.code.startsWith('CSV_')) {
      throw new ImportError(file, typeof err.lines === 'number' ? err.lines : null, err.message);
    }
    throw e;
  } finally {
    // A caller may stop early (header sniffing); close the file as well as the parser.
    parser.destroy();
    source.destroy();
  }
  opts.onBytes?.(total, total);
}

/** Quoted fields may span lines; `info.lines` is the last line, so walk back to the first. */
function countNewlines(fields: string[]): number {
  let n = 0;
  for (const f of fields) for (let i = f.indexOf('\n'); i !== -1; i = f.indexOf('\n', i + 1)) n++;
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
    throw new ImportError(file, 1, `missing column '${candidates[0]}' (header has: ${header.join(', ')})`);
  }
  return i;
}

/** Reads just the header row of a delimited file. */
export async function readHeader(file: string, delimiter: string): Promise<string[]> {
  for await (const rec of readDelimited(file, { delimiter, quoted: true })) return rec.fields.map((f) => f.trim());
  throw new ImportError(file, null, 'file is empty');
}

export function parseId(file: string, line: number, what: string, value: string): string {
  const v = value.trim();
  if (!/^\d+$/.test(v)) throw new ImportError(file, line, `${what} '${value}' is not a whole number`);
  return String(Number(v)); // canonical form: "007" and "7" are the same id
}

export function parseNumber(file: string, line: number, what: string, value: string): number {
  const v = value.trim();
  const n = v === '' ? NaN : Number(v);
  if (!Number.isFinite(n)) throw new ImportError(file, line, `${what} '${value}' is not a number`);
  return n;
}

/** Unix seconds, or an ISO 8601 date/time (converted to unix seconds). */
export function parseTimestamp(file: string, line: number, value: string): number {
  const v = value.trim();
  if (/^-?\d+(\.\d+)?$/.test(v)) return Number(v);
  if (/^\d{4}-\d{2}-\d{2}/.test(v)) {
    const ms = Date.parse(v);
    if (Number.isFinite(ms)) return ms / 1000;
  }
  throw new ImportError(file, line, `timestamp '${value}' is neither unix seconds nor an ISO 8601 date`);
}
