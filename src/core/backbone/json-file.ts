// JSON files read from folders the user points at (config.json, the shard index, adapter_config.json,
// tokenizer.json, tokenizer_config.json): their size is checked before they are read, so a multi-gigabyte
// file posing as one is refused without being loaded, and every error names the file.
import { closeSync, fstatSync, openSync, readFileSync, statSync } from 'node:fs';

/** Far above any real file of these kinds (a config.json is a few kB, Llama 3's tokenizer.json 9 MB). */
export const MAX_JSON_BYTES = 64 * 2 ** 20;

function cannotRead(path: string, e: unknown): Error {
  return new Error(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
}

/** The file's bytes, refused unread when it is not a regular file or larger than `maxBytes`. */
export function readBoundedFile(path: string, maxBytes = MAX_JSON_BYTES): Buffer {
  let regular: boolean;
  try {
    // Checked before opening: opening a named pipe for reading would wait for a writer for ever.
    regular = statSync(path).isFile();
  } catch (e) {
    throw cannotRead(path, e);
  }
  if (!regular) throw new Error(`${path}: not a file`);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw cannotRead(path, e);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new Error(`${path}: not a file`);
    if (stat.size > maxBytes) throw new Error(`${path}: ${stat.size} bytes, more than the ${maxBytes} a file of this kind may have`);
    // Read through the descriptor just checked, so a file swapped in after the check is not the one read.
    try {
      return readFileSync(fd);
    } catch (e) {
      throw cannotRead(path, e);
    }
  } finally {
    closeSync(fd);
  }
}

/** Parses bytes as JSON; errors name the file. */
export function parseJsonBytes(bytes: Buffer, path: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

/** A size-checked JSON file (any JSON value). */
export function readJsonFile(path: string, maxBytes = MAX_JSON_BYTES): unknown {
  return parseJsonBytes(readBoundedFile(path, maxBytes), path);
}

/** A size-checked JSON file that must hold an object. */
export function readJsonObject(path: string, maxBytes = MAX_JSON_BYTES): Record<string, unknown> {
  const json = readJsonFile(path, maxBytes);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`${path}: expected a JSON object`);
  return json as Record<string, unknown>;
}
