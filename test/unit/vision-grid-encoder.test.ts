// The compact tower's grid encoder against the network itself: flatten_1 is AveragePooling2D(7×7) of
// out_relu, so the 1×1 grid and the mean of the 7×7 grid must equal flatten_1's raw (unnormalised) output.
// A 3×3 grid's token mean is NOT that average (7 → 3 bins overlap: rows 2 and 4 count twice), so g = 3 is
// checked against a hand pooling of the 7×7 map instead.
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readBackboneFeatures } from '../../src/core/backbone/feature-cache';
import { Catalog } from '../../src/core/catalog';
import { importDataset } from '../../src/core/importers';
import { CancelledError } from '../../src/core/progress';
import { initBackend } from '../../src/core/tensor/backend';
import { decodeRgb, loadImageEncoder, type RgbImage } from '../../src/core/vision';
import { loadMobilenetModel, toInputBatch } from '../../src/core/vision/encoder';
import { encodeItemGrids, gridEncoderId, loadGridEncoder, loadItemGrids } from '../../src/core/backbone/grid-encoder';

const POSTERS = path.resolve(__dirname, '../../resources/datasets/ml-latest-small/posters');
const FIXTURES = path.resolve(__dirname, '../fixtures/importers');
const DIM = 1280;

const poster = (name: string): RgbImage => decodeRgb(fs.readFileSync(path.join(POSTERS, name)));

/** flatten_1 of the same network, before the L2 normalisation the app's encoder applies. */
async function rawFlatten(images: RgbImage[]): Promise<Float32Array[]> {
  const full = await loadMobilenetModel();
  const m = tfl.model({ inputs: full.inputs, outputs: full.getLayer('flatten_1').output as tfl.SymbolicTensor });
  const y = tf.tidy(() => m.predict(toInputBatch(images)) as tf.Tensor2D);
  const flat = y.dataSync() as Float32Array;
  y.dispose();
  return images.map((_, i) => flat.slice(i * DIM, (i + 1) * DIM));
}

function tokenMean(grid: Float32Array, tokens: number): Float32Array {
  const out = new Float32Array(DIM);
  for (let t = 0; t < tokens; t++) for (let d = 0; d < DIM; d++) out[d] += grid[t * DIM + d] / tokens;
  return out;
}

const maxAbsDiff = (a: Float32Array, b: Float32Array): number => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

beforeAll(async () => {
  await initBackend('wasm');
});

describe('MobileNetV2 grid encoder', () => {
  let images: RgbImage[];
  let flat: Float32Array[];
  beforeAll(async () => {
    images = [poster('1.jpg'), poster('260.jpg')];
    flat = await rawFlatten(images);
  });

  test('the id pins package version, layer and grid', async () => {
    expect(gridEncoderId()).toBe('nsfwjs@4.4.0/mobilenet_v2/out_relu/grid3');
    const enc = await loadGridEncoder(3);
    expect(enc).toMatchObject({ id: 'nsfwjs@4.4.0/mobilenet_v2/out_relu/grid3', gridSize: 3, tokens: 9, dim: DIM });
    expect(() => gridEncoderId(8)).toThrow(/grid size 8 must be an integer from 1 to 7/);
  });

  test('1×1 grid and the mean of the 7×7 grid equal flatten_1 before normalisation (1e-4)', async () => {
    const [g1, g7] = [await loadGridEncoder(1), await loadGridEncoder(7)];
    const one = g1.encode(images);
    const seven = g7.encode(images);
    for (let i = 0; i < images.length; i++) {
      expect(one[i].length).toBe(DIM);
      expect(seven[i].length).toBe(49 * DIM);
      expect(maxAbsDiff(one[i], flat[i])).toBeLessThan(1e-4);
      expect(maxAbsDiff(tokenMean(seven[i], 49), flat[i])).toBeLessThan(1e-4);
      // Activations (post-ReLU), not unit vectors: the projector sees what the network computes.
      expect(seven[i].every((x) => x >= 0 && Number.isFinite(x))).toBe(true);
    }
    // Same preprocessing as the app's flatten_1 encoder: its unit vector is this average, normalised.
    const [unit] = (await loadImageEncoder()).encode([images[0]]);
    const n = Math.hypot(...flat[0]);
    expect(maxAbsDiff(unit, flat[0].map((x) => x / n))).toBeLessThan(1e-5);
  });

  test('3×3 grid = adaptive average of the 7×7 map (bins 0–2, 2–4, 4–6), row-major', async () => {
    const g3 = (await loadGridEncoder(3)).encode(images);
    const g7 = (await loadGridEncoder(7)).encode(images);
    const bins = [
      [0, 3],
      [2, 5],
      [4, 7]
    ];
    for (let i = 0; i < images.length; i++) {
      expect(g3[i].length).toBe(9 * DIM);
      const expected = new Float32Array(9 * DIM);
      bins.forEach(([r0, r1], bi) =>
        bins.forEach(([c0, c1], bj) => {
          for (let r = r0; r < r1; r++) {
            for (let c = c0; c < c1; c++) for (let d = 0; d < DIM; d++) expected[(bi * 3 + bj) * DIM + d] += g7[i][(r * 7 + c) * DIM + d] / 9;
          }
        })
      );
      expect(maxAbsDiff(g3[i], expected)).toBeLessThan(1e-4);
      // The overlap is why the token mean differs from flatten_1 at g = 3.
      expect(maxAbsDiff(tokenMean(g3[i], 9), flat[i])).toBeGreaterThan(1e-3);
    }
  });

  test('batch-invariant (batches of 16 inside), no tensor leaks; ms per poster', async () => {
    const enc = await loadGridEncoder(3);
    const names = fs.readdirSync(POSTERS).sort().slice(0, 18);
    const t0 = performance.now();
    const many = names.map(poster);
    const t1 = performance.now();
    enc.encode(many.slice(0, 2)); // warm-up of this sub-model's kernels
    const before = tf.memory().numTensors;
    const t2 = performance.now();
    const out = enc.encode(many);
    const t3 = performance.now();
    expect(tf.memory().numTensors).toBe(before);
    expect(out).toHaveLength(many.length);
    const [alone] = enc.encode([many[17]]);
    expect(maxAbsDiff(alone, out[17])).toBeLessThan(1e-4);
    console.log(
      `grid encoder (g = 3, onnxruntime, 1 thread; resize on ${tf.getBackend()}): decode ${((t1 - t0) / many.length).toFixed(1)} ms/poster, encode ${((t3 - t2) / many.length).toFixed(1)} ms/poster over ${many.length}`
    );
  });
});

describe('item grids in the catalog', () => {
  let catalog: Catalog;
  let itemIds: number[];
  let withImage: Set<number>;
  beforeAll(async () => {
    catalog = Catalog.open(':memory:');
    const { datasetId } = await importDataset(catalog, { format: 'movielens-latest', path: path.join(FIXTURES, 'ml-latest'), name: 'tiny', options: {} });
    itemIds = (catalog.db.prepare('SELECT id FROM items WHERE dataset_id = ? ORDER BY id').all(datasetId) as { id: number }[]).map((r) => r.id);
    withImage = new Set(
      (catalog.db.prepare('SELECT id FROM items WHERE dataset_id = ? AND image IS NOT NULL').all(datasetId) as { id: number }[]).map((r) => r.id)
    );
  });
  afterAll(() => catalog.close());

  test('a cancelled call writes nothing', async () => {
    await expect(encodeItemGrids(catalog, itemIds, 3, undefined, { aborted: true })).rejects.toBeInstanceOf(CancelledError);
    expect(readBackboneFeatures(catalog, gridEncoderId(3), itemIds).size).toBe(0);
  });

  test('items with a poster get [9, 1280] under the grid id, the others no entry; the second call hits the cache', async () => {
    expect(withImage.size).toBeGreaterThan(0);
    expect(withImage.size).toBeLessThan(itemIds.length);
    const progress: { done: number; total: number }[] = [];
    const s = await encodeItemGrids(catalog, itemIds, 3, (p) => {
      expect(p.phase).toBe('encode-image-grids');
      progress.push({ done: p.done, total: p.total });
    });
    expect(s).toEqual({ computed: withImage.size, cached: 0, withoutImage: itemIds.length - withImage.size, failed: [] });
    expect(progress.at(-1)).toEqual({ done: withImage.size, total: withImage.size });

    const stored = readBackboneFeatures(catalog, gridEncoderId(3), itemIds);
    expect([...stored.keys()].sort()).toEqual([...withImage].sort());
    for (const { dims, tokens } of stored.values()) {
      expect(dims).toEqual([9, DIM]);
      expect(tokens.length).toBe(9 * DIM);
    }
    // Other grid sizes and the flatten_1 encoder keep their own rows.
    const other = catalog.db.prepare("SELECT COUNT(*) AS n FROM vision_features WHERE encoder_id <> ?").get(gridEncoderId(3)) as { n: number };
    expect(other.n).toBe(0);

    const again = await encodeItemGrids(catalog, itemIds, 3);
    expect(again).toEqual({ computed: 0, cached: withImage.size, withoutImage: itemIds.length - withImage.size, failed: [] });
    const grids = await loadItemGrids(catalog, itemIds, 3);
    expect(grids.size).toBe(withImage.size);
    for (const [id, g] of grids) expect(g).toEqual(stored.get(id)!.tokens);
  });

  test('a 1×1 grid is a separate cache entry of shape [1, 1280]', async () => {
    const id = [...withImage][0];
    const g1 = await loadItemGrids(catalog, [id], 1);
    expect(g1.get(id)!.length).toBe(DIM);
    expect(readBackboneFeatures(catalog, gridEncoderId(1), [id]).get(id)!.dims).toEqual([1, DIM]);
  });
});
