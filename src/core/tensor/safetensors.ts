// Reader/writer for the safetensors layout: u64 LE header length, JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {string: string}}, then LE row-major data.
// Hand-written: no maintained npm package reads and writes it without pulling in a framework.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';

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

/** Parse a safetensors buffer; `name` is used in error messages (usually the file path). */
export function parseSafetensors(buf: Uint8Array, name = '<buffer>'): SafetensorsFile {
  if (buf.byteLength < 8) throw new SafetensorsError(name, 'not a safetensors file (shorter than 8 bytes)');
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > buf.byteLength - 8 || headerLen > 100_000_000) {
    throw new SafetensorsError(name, `corrupt header length ${headerLen} (file has ${buf.byteLength} bytes)`);
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(buf.subarray(8, 8 + headerLen))) as Record<string, unknown>;
  } catch (e) {
    throw new SafetensorsError(name, `corrupt JSON header (${(e as Error).message})`);
  }
  const dataStart = 8 + headerLen;
  const dataLen = buf.byteLength - dataStart;
  const tensors = new Map<string, TensorEntry>();
  let metadata: Record<string, string> = {};
  for (const [key, raw] of Object.entries(header)) {
    if (key === '__metadata__') {
      metadata = raw as Record<string, string>;
      continue;
    }
    const info = raw as { dtype?: string; shape?: number[]; data_offsets?: [number, number] };
    const dtype = info.dtype as SafetensorsDtype;
    if (!(dtype in BYTES)) throw new SafetensorsError(name, `tensor "${key}" has unsupported dtype ${String(info.dtype)}`);
    const shape = info.shape ?? [];
    const [begin, end] = info.data_offsets ?? [-1, -1];
    const count = shape.reduce((a, b) => a * b, 1);
    if (!(begin >= 0 && end >= begin && end <= dataLen) || end - begin !== count * BYTES[dtype]) {
      throw new SafetensorsError(name, `tensor "${key}" has offsets [${begin}, ${end}] inconsistent with shape [${shape}] ${dtype} or file size`);
    }
    // Decoded element by element into fresh arrays: independent of `buf`, alignment and host endianness.
    const dv = new DataView(buf.buffer, buf.byteOffset + dataStart + begin, end - begin);
    let data: TensorEntry['data'];
    if (dtype === 'F32') {
      data = new Float32Array(count);
      for (let i = 0; i < count; i++) data[i] = dv.getFloat32(i * 4, true);
    } else if (dtype === 'F16') {
      data = new Float32Array(count);
      for (let i = 0; i < count; i++) data[i] = f16ToF32(dv.getUint16(i * 2, true));
    } else if (dtype === 'BF16') {
      data = new Float32Array(count);
      const u = new Uint32Array(1);
      const f = new Float32Array(u.buffer);
      for (let i = 0; i < count; i++) {
        u[0] = dv.getUint16(i * 2, true) << 16;
        data[i] = f[0];
      }
    } else if (dtype === 'I32') {
      data = new Int32Array(count);
      for (let i = 0; i < count; i++) data[i] = dv.getInt32(i * 4, true);
    } else {
      data = new BigInt64Array(count);
      for (let i = 0; i < count; i++) data[i] = dv.getBigInt64(i * 8, true);
    }
    tensors.set(key, { dtype, shape, data });
  }
  return { tensors, metadata };
}

export function readSafetensors(path: string): SafetensorsFile {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new SafetensorsError(path, `cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return parseSafetensors(buf, path);
}

export interface TensorToWrite {
  dtype: 'F32' | 'I32' | 'I64';
  shape: number[];
  data: Float32Array | Int32Array | BigInt64Array;
}

/** Serialise tensors (sorted by name, as the Python library does) and string metadata. */
export function serializeSafetensors(tensors: Record<string, TensorToWrite>, metadata: Record<string, string> = {}): Buffer {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const n of names) {
    const t = tensors[n];
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new Error(`safetensors: tensor "${n}" has ${t.data.length} values for shape [${t.shape}]`);
    const size = count * BYTES[t.dtype];
    header[n] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = JSON.stringify(header);
  // Pad with spaces so the data section starts 8-byte aligned (allowed and recommended by the format).
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let pos = 8 + headerBytes.length;
  for (const n of names) {
    const t = tensors[n];
    const dv = new DataView(out.buffer, out.byteOffset + pos, t.data.length * BYTES[t.dtype]);
    if (t.dtype === 'F32') t.data.forEach((v, i) => dv.setFloat32(i * 4, v as number, true));
    else if (t.dtype === 'I32') t.data.forEach((v, i) => dv.setInt32(i * 4, v as number, true));
    else (t.data as BigInt64Array).forEach((v, i) => dv.setBigInt64(i * 8, v, true));
    pos += t.data.length * BYTES[t.dtype];
  }
  return out;
}

/** Write atomically: a temp file in the same folder, fsync, then rename over the target. */
export function writeSafetensors(path: string, tensors: Record<string, TensorToWrite>, metadata: Record<string, string> = {}): void {
  const buf = serializeSafetensors(tensors, metadata);
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, buf);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}
