import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Catalog } from '../../src/core/catalog';
import { importDataset } from '../../src/core/importers';
import { initBackend } from '../../src/core/tensor/backend';
import { decodeRgb, ENCODER_DIM, ENCODER_ID, encodeItemImages, loadImageEncoder, loadItemFeatures, readFeatures, writeFeatures } from '../../src/core/vision';

const POSTERS = path.resolve(__dirname, '../../resources/datasets/ml-latest-small/posters');
const FIXTURES = path.resolve(__dirname, '../fixtures/importers');

const norm = (v: Float32Array): number => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

/** A minimal RGB PNG (8-bit, colour type 2) whose rows use the filters in `filters`. */
function makePng(width: number, rgb: number[][], filters: number[]): Buffer {
  const height = rgb.length;
  const stride = width * 3;
  const raw: number[] = [];
  rgb.forEach((row, y) => {
    const prev = y > 0 ? rgb[y - 1] : new Array(stride).fill(0);
    raw.push(filters[y]);
    for (let i = 0; i < stride; i++) {
      const a = i >= 3 ? row[i - 3] : 0;
      const b = prev[i];
      const pred = filters[y] === 1 ? a : filters[y] === 2 ? b : filters[y] === 3 ? (a + b) >> 1 : 0;
      raw.push((row[i] - pred) & 0xff);
    }
  });
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(Buffer.from(raw))),
    chunk('IEND', Buffer.alloc(0))
  ]);
}

beforeAll(async () => {
  await initBackend('wasm');
});

describe('image decoding', () => {
  test('PNG scanline filters (None, Sub, Up, Average) decode to the original pixels', () => {
    const rows = [
      [10, 20, 30, 200, 100, 50],
      [11, 22, 33, 250, 5, 0],
      [0, 255, 128, 7, 8, 9],
      [90, 80, 70, 60, 50, 40]
    ];
    const img = decodeRgb(makePng(2, rows, [0, 1, 2, 3]));
    expect([img.width, img.height]).toEqual([2, 4]);
    expect([...img.data]).toEqual(rows.flat());
  });

  test('a real poster decodes to RGB; garbage is refused with a reason', () => {
    const img = decodeRgb(fs.readFileSync(path.join(POSTERS, '1.jpg')));
    expect(img.data.length).toBe(img.width * img.height * 3);
    expect(() => decodeRgb(Buffer.from('not an image'))).toThrow(/not a JPEG or PNG/);
  });
});

describe('frozen image encoder', () => {
  test('loads from the package files without touching the network', async () => {
    const realFetch = globalThis.fetch;
    globalThis.fetch = () => {
      throw new Error('network access during encoder load');
    };
    try {
      const enc = await loadImageEncoder();
      expect(enc.id).toBe(ENCODER_ID);
      expect(enc.dim).toBe(1280);
    } finally {
      globalThis.fetch = realFetch;
    }
  });

  test('a real poster gives a finite unit vector, the same every time and in any batch', async () => {
    const enc = await loadImageEncoder();
    const a = decodeRgb(fs.readFileSync(path.join(POSTERS, '1.jpg')));
    const b = decodeRgb(fs.readFileSync(path.join(POSTERS, '2.jpg')));
    const [va] = enc.encode([a]);
    const [va2, vb] = enc.encode([a, b]);
    expect(va.length).toBe(ENCODER_DIM);
    expect(va.every(Number.isFinite)).toBe(true);
    expect(norm(va)).toBeCloseTo(1, 5);
    for (let i = 0; i < ENCODER_DIM; i++) expect(va2[i]).toBeCloseTo(va[i], 5);
    // Different posters are different vectors.
    const cos = va.reduce((s, x, i) => s + x * vb[i], 0);
    expect(cos).toBeLessThan(0.99);
  });
});

describe('item features from the catalog', () => {
  let catalog: Catalog;
  let datasetId: number;
  beforeAll(async () => {
    catalog = Catalog.open(':memory:');
    ({ datasetId } = await importDataset(catalog, { format: 'movielens-latest', path: path.join(FIXTURES, 'ml-latest'), name: 'tiny', options: {} }));
  });
  afterAll(() => catalog.close());

  test('items with an image get a unit vector, the others zeros and has = 0; the second call hits the cache', async () => {
    const data = catalog.loadSequences(datasetId);
    const images = new Set(
      (catalog.db.prepare('SELECT id FROM items WHERE dataset_id = ? AND image IS NOT NULL').all(datasetId) as { id: number }[]).map((r) => r.id)
    );
    const phases: string[] = [];
    const f = await loadItemFeatures(catalog, data, (p) => phases.push(p.phase));
    expect(f.encoderId).toBe(ENCODER_ID);
    expect(f.values.length).toBe((data.numItems + 1) * f.dim);
    expect(f.has[0]).toBe(0);
    let withImage = 0;
    for (let i = 1; i <= data.numItems; i++) {
      const row = f.values.subarray(i * f.dim, (i + 1) * f.dim);
      if (images.has(data.itemIds[i])) {
        withImage++;
        expect(f.has[i]).toBe(1);
        expect(norm(row)).toBeCloseTo(1, 5);
      } else {
        expect(f.has[i]).toBe(0);
        expect(row.every((x) => x === 0)).toBe(true);
      }
    }
    expect(withImage).toBeGreaterThan(0);
    expect(withImage).toBeLessThan(data.numItems);
    expect(phases).toContain('encode-images');

    const again = await encodeItemImages(catalog, Array.from(data.itemIds.subarray(1)));
    expect(again).toMatchObject({ computed: 0, cached: withImage, withoutImage: data.numItems - withImage });
    const f2 = await loadItemFeatures(catalog, data);
    expect(f2.values).toEqual(f.values);
  });

  test('a stored image that does not decode counts as missing and is reported', async () => {
    const row = catalog.db.prepare('SELECT id FROM items WHERE dataset_id = ? AND image IS NULL LIMIT 1').get(datasetId) as { id: number };
    catalog.db.prepare('UPDATE items SET image = ? WHERE id = ?').run(Buffer.from('garbage'), row.id);
    const messages: string[] = [];
    const s = await encodeItemImages(catalog, [row.id], (p) => p.message && messages.push(p.message));
    expect(s).toMatchObject({ computed: 0, failed: [{ itemId: row.id, problem: 'not a JPEG or PNG image' }] });
    expect(messages.join()).toMatch(/1 stored image\(s\) could not be decoded/);
    expect(readFeatures(catalog, ENCODER_ID, [row.id]).size).toBe(0);
  });

  test('a cached blob that does not match its shape is reported, naming the table', () => {
    const itemId = (catalog.db.prepare('SELECT id FROM items WHERE dataset_id = ? LIMIT 1').get(datasetId) as { id: number }).id;
    writeFeatures(catalog, 'test-encoder', [{ itemId, vector: Float32Array.from([1, 2, 3]) }]);
    expect(readFeatures(catalog, 'test-encoder', [itemId]).get(itemId)).toEqual(Float32Array.from([1, 2, 3]));
    catalog.db.prepare("UPDATE vision_features SET dims = '[4]' WHERE encoder_id = 'test-encoder'").run();
    expect(() => readFeatures(catalog, 'test-encoder', [itemId])).toThrow(/vision_features: item .* 12 bytes for shape \[4\]/);
  });
});
