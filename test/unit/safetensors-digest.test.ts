// The data digest of checkpoints (DATA_DIGEST_KEY): written on request, checked on every read, so a torn
// or bit-rotten file is refused by name instead of loaded; files without one read as before.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DATA_DIGEST_KEY, readSafetensors, serializeSafetensors, writeSafetensors } from '../../src/core/tensor/safetensors';

const dir = mkdtempSync(join(tmpdir(), 'almostrec-digest-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const tensors = { b: { dtype: 'F32' as const, shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }, a: { dtype: 'I32' as const, shape: [2], data: Int32Array.from([7, -8]) } };

describe('safetensors data digest', () => {
  it('is written on request, read back, and catches one flipped bit', () => {
    const path = join(dir, 'x.safetensors');
    writeSafetensors(path, tensors, { format: 'test' }, { digest: true });
    const file = readSafetensors(path);
    expect(file.metadata[DATA_DIGEST_KEY]).toMatch(/^[0-9a-f]{64}$/);
    expect([...(file.tensors.get('b')!.data as Float32Array)]).toEqual([1, 2, 3, 4, 5, 6]);
    const bytes = readFileSync(path);
    bytes[bytes.length - 1] ^= 0x01;
    writeFileSync(path, bytes);
    expect(() => readSafetensors(path)).toThrow(`${path}: data does not match its ${DATA_DIGEST_KEY} (torn or corrupt file)`);
  });

  it('leaves files without it byte for byte as before', () => {
    const plain = serializeSafetensors(tensors, { format: 'test' });
    expect(JSON.parse(plain.subarray(8, 8 + Number(plain.readBigUInt64LE(0))).toString())).toEqual({
      __metadata__: { format: 'test' },
      a: { dtype: 'I32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [2, 3], data_offsets: [8, 32] }
    });
    const path = join(dir, 'plain.safetensors');
    writeSafetensors(path, tensors, { format: 'test' });
    expect(readFileSync(path).equals(plain)).toBe(true);
  });

  it('a write interrupted half-way leaves the previous file whole', () => {
    const path = join(dir, 'atomic.safetensors');
    writeSafetensors(path, tensors, {}, { digest: true });
    const before = readFileSync(path);
    const changed = { ...tensors, a: { ...tensors.a, data: Int32Array.from([1, 1]) } };
    expect(() => writeSafetensors(path, changed, {}, { digest: true, midWrite: () => { throw new Error('killed'); } })).toThrow('killed');
    expect(readFileSync(path).equals(before)).toBe(true);
  });
});
