// Reader/writer for the safetensors layout: u64 LE header length, JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {string: string}}, then LE row-major data.
// Hand-written: no maintained npm package reads and writes it without pulling in a framework.
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { endianness } from 'node:os';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | 'I32' | 'I64';

export interface TensorEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  /** F32/F16/BF16 are decoded to Float32Array; I32 to Int32Array; I64 to BigInt64Array. */
  data: Float32Array | Int32Array | BigInt64Array;
}

export interface SafetensorsFile {
  tensors: Map<string, TensorEntry>;
  metadata: Record<string, string>;
}

const BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2, I32: 4, I64: 8 };

export class SafetensorsError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'SafetensorsError';
  }
}

function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** One tensor as the header describes it; begin/end are byte offsets into the data section. */
export interface TensorInfo {
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

/** A file's header alone (see readSafetensorsHeader): where the data starts and what lies where. */
export interface SafetensorsHeader {
  /** Absolute file offset of the data section (8 + header length). */
  dataStart: number;
  fileSize: number;
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
}

const MAX_HEADER_BYTES = 100_000_000;

function checkHeaderLength(headerLen: number, fileSize: number, name: string): void {
  if (headerLen > fileSize - 8 || headerLen > MAX_HEADER_BYTES) {
    throw new SafetensorsError(name, `corrupt header length ${headerLen} (file has ${fileSize} bytes)`);
  }
}

/**
 * The top-level keys of a JSON object text in order, repeats kept: JSON.parse keeps only the last of two
 * equal keys, so a second tensor of the same name would silently replace the first. Hand-written because no
 * JSON library in the dependencies reports duplicates; `text` has already been parsed, so it is valid JSON.
 */
function topLevelKeys(text: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) keys.push(JSON.parse(text.slice(i, j + 1)) as string);
      expectKey = false;
      i = j;
    } else if (c === '{' || c === '[') {
      depth++;
      expectKey = depth === 1;
    } else if (c === '}' || c === ']') {
      depth--;
    } else if (c === ',') {
      expectKey = depth === 1;
    }
  }
  return keys;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The element count of `shape`, refusing anything but non-negative integers; null once the count passes
 * `limit` (multiplied step by step, so an absurd shape never overflows into a plausible number).
 */
function elementCount(shape: unknown, limit: number, key: string, name: string): { shape: number[]; count: number | null } {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
    throw new SafetensorsError(name, `tensor "${key}" has an invalid shape ${JSON.stringify(shape)} (dimensions must be non-negative integers)`);
  }
  const dims = shape as number[];
  if (dims.includes(0)) return { shape: dims, count: 0 };
  let count = 1;
  for (const d of dims) {
    count *= d;
    if (count > limit) return { shape: dims, count: null };
  }
  return { shape: dims, count };
}

/**
 * Parses the JSON header and checks it whole before anything is read or allocated for the data: the header
 * is an object; names are unique; metadata maps strings to strings; every tensor has a supported dtype, a
 * shape of non-negative integers and offsets inside the data section whose length is exactly dtype × shape;
 * and no two tensors share bytes (aliased ranges would let a small file claim any amount of memory).
 */
function parseHeader(json: Uint8Array, dataLen: number, name: string): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(json);
  } catch {
    throw new SafetensorsError(name, 'corrupt JSON header (not valid UTF-8)');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(name, `corrupt JSON header (${(e as Error).message})`);
  }
  if (!isPlainObject(header)) throw new SafetensorsError(name, 'corrupt JSON header (not an object)');
  const seen = new Set<string>();
  for (const key of topLevelKeys(text)) {
    if (seen.has(key)) throw new SafetensorsError(name, `tensor "${key}" appears twice in the header`);
    seen.add(key);
  }
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [key, raw] of Object.entries(header)) {
    if (key === '__metadata__') {
      if (!isPlainObject(raw) || !Object.values(raw).every((v) => typeof v === 'string')) {
        throw new SafetensorsError(name, '"__metadata__" must map strings to strings');
      }
      metadata = raw as Record<string, string>;
      continue;
    }
    if (!isPlainObject(raw)) throw new SafetensorsError(name, `tensor "${key}" is not described by an object`);
    const dtype = raw.dtype;
    if (typeof dtype !== 'string' || !Object.hasOwn(BYTES, dtype)) throw new SafetensorsError(name, `tensor "${key}" has unsupported dtype ${typeof dtype === 'string' ? dtype : JSON.stringify(dtype)}`);
    const size = BYTES[dtype as SafetensorsDtype];
    const offsets = raw.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && (o as number) >= 0)) {
      throw new SafetensorsError(name, `tensor "${key}" has invalid data_offsets ${JSON.stringify(offsets)} (expected [begin, end])`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin || end > dataLen) {
      throw new SafetensorsError(name, `tensor "${key}" has offsets [${begin}, ${end}] outside the data section (${dataLen} bytes; truncated?)`);
    }
    const { shape, count } = elementCount(raw.shape ?? [], (end - begin) / size, key, name);
    if (count === null || end - begin !== count * size) {
      throw new SafetensorsError(
        name,
        `tensor "${key}" has offsets [${begin}, ${end}] (${end - begin} bytes) but shape [${shape}] ${dtype} needs ${count === null ? 'more' : count * size}`
      );
    }
    tensors.set(key, { dtype: dtype as SafetensorsDtype, shape, begin, end });
  }
  const ranges = [...tensors].filter(([, t]) => t.end > t.begin).sort(([, a], [, b]) => a.begin - b.begin);
  for (let i = 1; i < ranges.length; i++) {
    const [prevKey, prev] = ranges[i - 1];
    const [key, t] = ranges[i];
    if (t.begin < prev.end) throw new SafetensorsError(name, `tensors "${prevKey}" and "${key}" overlap (bytes ${t.begin}–${Math.min(prev.end, t.end)})`);
  }
  return { tensors, metadata };
}

/** Index of the first NaN or ±Inf in `data`, or -1. */
function firstNonFinite(data: Float32Array): number {
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    // v - v is 0 for every finite v and NaN for NaN and ±Inf: one subtraction, no call.
    if (v - v !== 0) return i;
  }
  return -1;
}

/**
 * Refuses a float tensor holding NaN or ±Inf. Every reader here loads weights for compute (backbones,
 * adapters, checkpoints, item tables), where one NaN poisons every result silently; the scan runs once per
 * tensor as it is read, far cheaper than reading the bytes.
 */
export function assertFinite(data: Float32Array, key: string, name: string): void {
  const i = firstNonFinite(data);
  if (i >= 0) throw new SafetensorsError(name, `tensor "${key}" holds ${data[i]} at index ${i}; weights must be finite`);
}

const LITTLE_ENDIAN_HOST = endianness() === 'LE';

/** Little-endian I32/I64 bytes decoded into a fresh array: independent of the source buffer, its alignment and the host's endianness. */
function decodeIntegers(bytes: Uint8Array, dtype: 'I32' | 'I64'): Int32Array | BigInt64Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = bytes.byteLength / BYTES[dtype];
  if (dtype === 'I32') {
    const out = new Int32Array(count);
    for (let i = 0; i < count; i++) out[i] = dv.getInt32(i * 4, true);
    return out;
  }
  const out = new BigInt64Array(count);
  for (let i = 0; i < count; i++) out[i] = dv.getBigInt64(i * 8, true);
  return out;
}

/**
 * Decodes F32/F16/BF16 little-endian bytes to a fresh Float32Array. On little-endian hosts F32 is one copy
 * and the 16-bit formats go through a Uint16Array view; elsewhere (or unaligned input) through a DataView.
 */
export function decodeFloat32(bytes: Uint8Array, dtype: 'F32' | 'F16' | 'BF16'): Float32Array {
  const size = BYTES[dtype];
  if (bytes.byteLength % size) throw new Error(`decodeFloat32: ${bytes.byteLength} bytes is not a whole number of ${dtype} values`);
  const count = bytes.byteLength / size;
  const aligned = bytes.byteOffset % size === 0;
  if (dtype === 'F32') {
    if (LITTLE_ENDIAN_HOST) {
      const out = new Float32Array(count);
      new Uint8Array(out.buffer).set(bytes);
      return out;
    }
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = dv.getFloat32(i * 4, true);
    return out;
  }
  let halves: Uint16Array;
  if (LITTLE_ENDIAN_HOST && aligned) {
    halves = new Uint16Array(bytes.buffer, bytes.byteOffset, count);
  } else {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    halves = new Uint16Array(count);
    for (let i = 0; i < count; i++) halves[i] = dv.getUint16(i * 2, true);
  }
  const out = new Float32Array(count);
  if (dtype === 'F16') {
    const table = halfTable();
    for (let i = 0; i < count; i++) out[i] = table[halves[i]];
  } else {
    // bfloat16 is the top half of a float32: shift into place through a shared Uint32 view.
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < count; i++) bits[i] = halves[i] << 16;
  }
  return out;
}

let f16Table: Float32Array | null = null;

/** All 65,536 half values, built once: a lookup is much faster than decoding each of billions of values. */
function halfTable(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16ToF32(h);
  }
  return f16Table;
}

/**
 * Metadata key of the SHA-256 (hex) of a file's whole data section, written by writeSafetensors({ digest })
 * and checked by parseSafetensors and readSafetensorsTensors: a torn or bit-rotten checkpoint is refused
 * instead of loaded silently.
 */
export const DATA_DIGEST_KEY = 'data_sha256';

const sha256Hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** Parse a safetensors buffer; `name` is used in error messages (usually the file path). */
export function parseSafetensors(buf: Uint8Array, name = '<buffer>'): SafetensorsFile {
  if (buf.byteLength < 8) throw new SafetensorsError(name, 'not a safetensors file (shorter than 8 bytes)');
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  checkHeaderLength(headerLen, buf.byteLength, name);
  const dataStart = 8 + headerLen;
  const { tensors: infos, metadata } = parseHeader(buf.subarray(8, dataStart), buf.byteLength - dataStart, name);
  const digest = metadata[DATA_DIGEST_KEY];
  if (digest !== undefined && sha256Hex(buf.subarray(dataStart)) !== digest) {
    throw new SafetensorsError(name, `data does not match its ${DATA_DIGEST_KEY} (torn or corrupt file)`);
  }
  const tensors = new Map<string, TensorEntry>();
  for (const [key, { dtype, shape, begin, end }] of infos) {
    const bytes = buf.subarray(dataStart + begin, dataStart + end);
    let data: TensorEntry['data'];
    if (dtype === 'F32' || dtype === 'F16' || dtype === 'BF16') {
      data = decodeFloat32(bytes, dtype);
      assertFinite(data, key, name);
    } else data = decodeIntegers(bytes, dtype);
    tensors.set(key, { dtype, shape, data });
  }
  return { tensors, metadata };
}

function cannotRead(path: string, e: unknown): SafetensorsError {
  return new SafetensorsError(path, `cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
}

/** Fills `into` from the file at `position` (readSync may return fewer bytes; large reads go in chunks). */
export function readExactly(fd: number, into: Uint8Array, position: number, path: string): void {
  const CHUNK = 1 << 30;
  let done = 0;
  while (done < into.byteLength) {
    const n = readSync(fd, into, done, Math.min(CHUNK, into.byteLength - done), position + done);
    if (n === 0) throw new SafetensorsError(path, `file ends at byte ${position + done}, expected ${into.byteLength - done} more bytes (truncated?)`);
    done += n;
  }
}

/**
 * Reads only a file's header (two small reads), so multi-gigabyte checkpoints can be inspected and then
 * loaded tensor by tensor. Offsets are checked against the file's actual size: a truncated file fails here.
 */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  let fd: number;
  try {
    // Before opening: opening a named pipe for reading would wait for a writer for ever.
    if (!statSync(path).isFile()) throw new SafetensorsError(path, 'not a file');
    fd = openSync(path, 'r');
  } catch (e) {
    if (e instanceof SafetensorsError) throw e;
    throw cannotRead(path, e);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new SafetensorsError(path, 'not a file');
    const fileSize = stat.size;
    if (fileSize < 8) throw new SafetensorsError(path, 'not a safetensors file (shorter than 8 bytes)');
    const lenBytes = new Uint8Array(8);
    readExactly(fd, lenBytes, 0, path);
    const headerLen = Number(new DataView(lenBytes.buffer).getBigUint64(0, true));
    checkHeaderLength(headerLen, fileSize, path);
    const json = new Uint8Array(headerLen);
    readExactly(fd, json, 8, path);
    const dataStart = 8 + headerLen;
    const { tensors, metadata } = parseHeader(json, fileSize - dataStart, path);
    return { dataStart, fileSize, tensors, metadata };
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads one float tensor from an open file as float32, holding nothing else: F32 on little-endian hosts is
 * read straight into the result's memory, F16/BF16 through a half-size buffer that is dropped on return.
 * `key` names the tensor in errors; NaN or ±Inf values are refused (see assertFinite).
 */
export function readFloat32Tensor(fd: number, dataStart: number, info: TensorInfo, path: string, key: string): Float32Array {
  if (info.dtype !== 'F32' && info.dtype !== 'F16' && info.dtype !== 'BF16') throw new SafetensorsError(path, `tensor "${key}" is ${info.dtype}; expected a float tensor`);
  const length = info.end - info.begin;
  let out: Float32Array;
  if (info.dtype === 'F32' && LITTLE_ENDIAN_HOST) {
    out = new Float32Array(length / 4);
    readExactly(fd, new Uint8Array(out.buffer), dataStart + info.begin, path);
  } else {
    const bytes = new Uint8Array(length);
    readExactly(fd, bytes, dataStart + info.begin, path);
    out = decodeFloat32(bytes, info.dtype);
  }
  assertFinite(out, key, path);
  return out;
}

/** Checks the data section against DATA_DIGEST_KEY when the metadata has one, in 4 MiB reads (constant memory). */
function verifyDataDigest(fd: number, header: SafetensorsHeader, path: string): void {
  const expected = header.metadata[DATA_DIGEST_KEY];
  if (expected === undefined) return;
  const hash = createHash('sha256');
  const chunk = new Uint8Array(4 * 2 ** 20);
  for (let pos = header.dataStart; pos < header.fileSize; ) {
    const n = readSync(fd, chunk, 0, Math.min(chunk.byteLength, header.fileSize - pos), pos);
    if (n === 0) throw new SafetensorsError(path, `file ends at byte ${pos}, expected ${header.fileSize - pos} more bytes (truncated?)`);
    hash.update(chunk.subarray(0, n));
    pos += n;
  }
  if (hash.digest('hex') !== expected) throw new SafetensorsError(path, `data does not match its ${DATA_DIGEST_KEY} (torn or corrupt file)`);
}

/**
 * Reads the named tensors (default: all) of a file whose header readSafetensorsHeader returned, one tensor
 * at a time: the file is never held whole beside its decoded copy, and a caller can check the header's
 * names, dtypes and shapes against what it expects before any data is read.
 */
export function readSafetensorsTensors(path: string, header: SafetensorsHeader, names: Iterable<string> = header.tensors.keys()): Map<string, TensorEntry> {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw cannotRead(path, e);
  }
  const tensors = new Map<string, TensorEntry>();
  try {
    verifyDataDigest(fd, header, path);
    for (const key of names) {
      const info = header.tensors.get(key);
      if (!info) throw new SafetensorsError(path, `has no tensor "${key}"`);
      const { dtype, shape } = info;
      let data: TensorEntry['data'];
      if (dtype === 'F32' || dtype === 'F16' || dtype === 'BF16') {
        data = readFloat32Tensor(fd, header.dataStart, info, path, key);
      } else {
        const bytes = new Uint8Array(info.end - info.begin);
        readExactly(fd, bytes, header.dataStart + info.begin, path);
        data = decodeIntegers(bytes, dtype);
      }
      tensors.set(key, { dtype, shape, data });
    }
  } finally {
    closeSync(fd);
  }
  return tensors;
}

/** A whole file: its header first (refused before any data is read if hostile), then each tensor. */
export function readSafetensors(path: string): SafetensorsFile {
  const header = readSafetensorsHeader(path);
  return { tensors: readSafetensorsTensors(path, header), metadata: header.metadata };
}

export interface TensorToWrite {
  dtype: 'F32' | 'I32' | 'I64';
  shape: number[];
  data: Float32Array | Int32Array | BigInt64Array;
}

export interface SerializeOptions {
  /** Record the data section's SHA-256 in the metadata (DATA_DIGEST_KEY), checked on every read. */
  digest?: boolean;
}

export interface WriteOptions extends SerializeOptions {
  /** Called when half of the temp file is written (the crash-safety tests' crash point, see crash-point.ts). */
  midWrite?: () => void;
}

/** Serialise tensors (sorted by name, as the Python library does) and string metadata. */
export function serializeSafetensors(tensors: Record<string, TensorToWrite>, metadata: Record<string, string> = {}, options: SerializeOptions = {}): Buffer {
  const names = Object.keys(tensors).sort();
  const entries: Record<string, unknown> = {};
  let offset = 0;
  for (const n of names) {
    const t = tensors[n];
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new Error(`safetensors: tensor "${n}" has ${t.data.length} values for shape [${t.shape}]`);
    const size = count * BYTES[t.dtype];
    entries[n] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  // The data section first: its digest goes into the header that precedes it.
  const data = Buffer.alloc(offset);
  let pos = 0;
  for (const n of names) {
    const t = tensors[n];
    const dv = new DataView(data.buffer, data.byteOffset + pos, t.data.length * BYTES[t.dtype]);
    if (t.dtype === 'F32') t.data.forEach((v, i) => dv.setFloat32(i * 4, v as number, true));
    else if (t.dtype === 'I32') t.data.forEach((v, i) => dv.setInt32(i * 4, v as number, true));
    else (t.data as BigInt64Array).forEach((v, i) => dv.setBigInt64(i * 8, v, true));
    pos += t.data.length * BYTES[t.dtype];
  }
  const meta = options.digest ? { ...metadata, [DATA_DIGEST_KEY]: sha256Hex(data) } : metadata;
  const header: Record<string, unknown> = Object.keys(meta).length > 0 ? { __metadata__: meta, ...entries } : entries;
  let json = JSON.stringify(header);
  // Pad with spaces so the data section starts 8-byte aligned (allowed and recommended by the format).
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const lead = Buffer.alloc(8);
  lead.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  return Buffer.concat([lead, headerBytes, data]);
}

/**
 * Write atomically: a temp file in the same folder, fsync, then rename over the target. A process killed
 * before the rename leaves the previous file whole (and a stray temp file beside it).
 */
export function writeSafetensors(path: string, tensors: Record<string, TensorToWrite>, metadata: Record<string, string> = {}, options: WriteOptions = {}): void {
  const buf = serializeSafetensors(tensors, metadata, options);
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    if (options.midWrite) {
      const half = buf.byteLength >> 1;
      writeSync(fd, buf, 0, half);
      options.midWrite();
      writeSync(fd, buf, half, buf.byteLength - half);
    } else {
      writeSync(fd, buf);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** float32 → IEEE half, round to nearest even (overflow → ±Inf, NaN kept NaN). */
export function f32ToF16(v: number): number {
  f32Scratch[0] = v;
  const x = u32Scratch[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 112; // rebias 127 → 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Half subnormal: count units of 2^-24 from the 24-bit significand.
    const shift = 14 - e;
    if (shift > 24) return sign;
    const m = mant | 0x800000;
    let h = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rest > half || (rest === half && h & 1)) h++;
    return sign | h;
  }
  let h = sign | (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A carry out of the mantissa bumps the exponent, up to Inf: exactly IEEE rounding.
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++;
  return h;
}

/** float32 → bfloat16, round to nearest even (NaN kept NaN). */
export function f32ToBf16(v: number): number {
  f32Scratch[0] = v;
  const x = u32Scratch[0];
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return (x >>> 16) | 0x40;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** A tensor for writeSafetensorsStream: float data produced on demand, so only one is in memory at a time. */
export interface StreamedTensor {
  name: string;
  dtype: 'F32' | 'F16' | 'BF16';
  shape: number[];
  data: () => Float32Array;
}

function encodeFloats(data: Float32Array, dtype: StreamedTensor['dtype']): Uint8Array {
  if (dtype === 'F32') {
    if (LITTLE_ENDIAN_HOST) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const out = new Uint8Array(data.length * 4);
    const dv = new DataView(out.buffer);
    data.forEach((v, i) => dv.setFloat32(i * 4, v, true));
    return out;
  }
  const out = new Uint8Array(data.length * 2);
  const dv = new DataView(out.buffer);
  const enc = dtype === 'F16' ? f32ToF16 : f32ToBf16;
  for (let i = 0; i < data.length; i++) dv.setUint16(i * 2, enc(data[i]), true);
  return out;
}

/**
 * Writes a (possibly huge) float file straight to `path`, tensor by tensor, fsynced; no temp file, so the
 * caller arranges atomicity (saveHfCheckpoint writes into a temp directory). Tensors are laid out in sorted
 * name order like serializeSafetensors. Returns the bytes written.
 */
export function writeSafetensorsStream(path: string, tensors: StreamedTensor[], metadata: Record<string, string> = {}): number {
  const sorted = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of sorted) {
    if (t.name in header) throw new Error(`safetensors: tensor "${t.name}" given twice`);
    const size = t.shape.reduce((a, b) => a * b, 1) * BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const lead = Buffer.alloc(8);
  lead.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, lead);
    writeSync(fd, headerBytes);
    for (const t of sorted) {
      const data = t.data();
      const count = t.shape.reduce((a, b) => a * b, 1);
      if (data.length !== count) throw new Error(`safetensors: tensor "${t.name}" has ${data.length} values for shape [${t.shape}]`);
      const bytes = encodeFloats(data, t.dtype);
      for (let done = 0; done < bytes.byteLength; ) done += writeSync(fd, bytes, done, Math.min(1 << 30, bytes.byteLength - done));
    }
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    try {
      unlinkSync(path);
    } catch {
      // already gone: the original error is the one worth reporting
    }
    throw e;
  }
  closeSync(fd);
  return 8 + headerBytes.length + offset;
}
