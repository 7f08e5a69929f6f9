import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { parseSafetensors, readSafetensors, serializeSafetensors, writeSafetensors } from '../../src/core/tensor/safetensors';

/** Build a file by hand (as Python's safetensors would) from raw little-endian bytes. */
function handMade(header: Record<string, unknown>, data: number[]): Uint8Array {
  const json = Buffer.from(JSON.stringify(header));
  const out = Buffer.alloc(8 + json.length + data.length);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(out, 8);
  Buffer.from(data).copy(out, 8 + json.length);
  return out;
}

describe('safetensors', () => {
  test('write → read round trip with metadata, aligned header, atomic write', () => {
    const dir = mkdtempSync(join(tmpdir(), 'st-'));
    const path = join(dir, 'a.safetensors');
    writeSafetensors(
      path,
      {
        w: { dtype: 'F32', shape: [2, 3], data: Float32Array.from([1, -2.5, 3, 4, 5, 1e-8]) },
        ids: { dtype: 'I32', shape: [3], data: Int32Array.from([7, -1, 2147483647]) },
        big: { dtype: 'I64', shape: [2], data: BigInt64Array.from([-5n, 1n << 40n]) }
      },
      { format: 'pt', config: JSON.stringify({ d: 64 }) }
    );
    expect(readdirSync(dir)).toEqual(['a.safetensors']);
    const f = readSafetensors(path);
    expect(f.metadata).toEqual({ format: 'pt', config: '{"d":64}' });
    expect(f.tensors.get('w')).toEqual({ dtype: 'F32', shape: [2, 3], data: Float32Array.from([1, -2.5, 3, 4, 5, 1e-8]) });
    expect([...(f.tensors.get('ids')!.data as Int32Array)]).toEqual([7, -1, 2147483647]);
    expect([...(f.tensors.get('big')!.data as BigInt64Array)]).toEqual([-5n, 1n << 40n]);
    const buf = serializeSafetensors({ x: { dtype: 'F32', shape: [1], data: Float32Array.from([1]) } });
    expect((8 + Number(buf.readBigUInt64LE(0))) % 8).toBe(0);
    // Tensors are laid out in sorted name order, as the Python library does.
    const header = JSON.parse(buf.subarray(8, 8 + Number(buf.readBigUInt64LE(0))).toString());
    expect(header.x.data_offsets).toEqual([0, 4]);
  });

  test('decodes F16 and BF16 to float32', () => {
    // F16: 1.0 = 0x3c00, -2.0 = 0xc000, 65504 = 0x7bff, smallest subnormal 0x0001
    // BF16: 1.0 = 0x3f80, -0.5 = 0xbf00
    const file = handMade(
      {
        __metadata__: { format: 'pt' },
        h: { dtype: 'F16', shape: [4], data_offsets: [0, 8] },
        b: { dtype: 'BF16', shape: [2], data_offsets: [8, 12] }
      },
      [0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00, 0x80, 0x3f, 0x00, 0xbf]
    );
    const f = parseSafetensors(file, 'hand.safetensors');
    expect([...(f.tensors.get('h')!.data as Float32Array)]).toEqual([1, -2, 65504, 2 ** -24]);
    expect([...(f.tensors.get('b')!.data as Float32Array)]).toEqual([1, -0.5]);
  });

  test('corrupt or missing files give errors naming the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'st-'));
    const missing = join(dir, 'nope.safetensors');
    expect(() => readSafetensors(missing)).toThrow(`${missing}: cannot read (ENOENT)`);
    const short = join(dir, 'short.safetensors');
    writeFileSync(short, Buffer.from([1, 2, 3]));
    expect(() => readSafetensors(short)).toThrow(`${short}: not a safetensors file`);
    const badLen = join(dir, 'badlen.safetensors');
    const b = Buffer.alloc(16);
    b.writeBigUInt64LE(1000n, 0);
    writeFileSync(badLen, b);
    expect(() => readSafetensors(badLen)).toThrow(`${badLen}: corrupt header length`);
    const truncated = join(dir, 'trunc.safetensors');
    writeFileSync(truncated, handMade({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, [0, 0, 0, 0]));
    expect(() => readSafetensors(truncated)).toThrow(`${truncated}: tensor "w" has offsets`);
    const dtype = join(dir, 'dtype.safetensors');
    writeFileSync(dtype, handMade({ w: { dtype: 'F64', shape: [1], data_offsets: [0, 8] } }, [0, 0, 0, 0, 0, 0, 0, 0]));
    expect(() => readSafetensors(dtype)).toThrow(`${dtype}: tensor "w" has unsupported dtype F64`);
    const json = join(dir, 'json.safetensors');
    const j = Buffer.alloc(12);
    j.writeBigUInt64LE(4n, 0);
    j.write('{{{{', 8);
    writeFileSync(json, j);
    expect(() => readSafetensors(json)).toThrow(`${json}: corrupt JSON header`);
  });
});
