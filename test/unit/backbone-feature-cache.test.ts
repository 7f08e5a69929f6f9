// The backbone's visual-token cache with a deterministic fake ImageTokenEncoder (a test double for the
// vision tower + projector only): pooling, storage, skip-cached, cancel and progress are the real code.
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import {
  backboneFeatureId,
  cachedItemIds,
  computeBackboneFeatures,
  readBackboneFeatures,
  uncachedItemsWithImage,
  writeBackboneFeatures,
  type ImageTokenEncoder
} from '../../src/core/backbone/feature-cache';
import { poolImageTokens } from '../../src/core/backbone/image-token-pool';
import { Catalog } from '../../src/core/catalog';
import { CancelledError, type JobProgress } from '../../src/core/progress';

const DIM = 4;

/** Projector output of item `id`: token t, channel d → id + t · 0.5 − d · 0.25 (distinct per token). */
function fakeTokens(id: number, tokens: number): Float32Array {
  const v = new Float32Array(tokens * DIM);
  for (let t = 0; t < tokens; t++) for (let d = 0; d < DIM; d++) v[t * DIM + d] = id + t * 0.5 - d * 0.25;
  return v;
}

class FakeEncoder implements ImageTokenEncoder {
  readonly id: string;
  readonly dim = DIM;
  calls: number[][] = [];
  constructor(
    readonly gridSide: number,
    readonly tokensPerImage: number = gridSide * gridSide,
    /** Items it "cannot decode". */
    private readonly broken = new Set<number>(),
    id = 'fake-llava'
  ) {
    this.id = id;
  }
  encodeItems(itemIds: number[]): Promise<Map<number, Float32Array>> {
    this.calls.push(itemIds);
    const out = new Map<number, Float32Array>();
    for (const id of itemIds) if (!this.broken.has(id)) out.set(id, fakeTokens(id, this.tokensPerImage));
    return Promise.resolve(out);
  }
}

let catalog: Catalog;
let withImage: number[];
let withoutImage: number[];

beforeEach(() => {
  catalog = Catalog.open(':memory:');
  const ds = catalog.db
    .prepare("INSERT INTO datasets (name, format, source_path, imported_at, warnings, stats) VALUES ('t', 'generic', '-', '-', '[]', '{}')")
    .run().lastInsertRowid as number;
  const ins = catalog.db.prepare('INSERT INTO items (dataset_id, external_id, title, image) VALUES (?, ?, ?, ?)');
  withImage = [];
  withoutImage = [];
  // 37 items with an image (three batches of 16), 5 without, interleaved.
  for (let i = 0; i < 42; i++) {
    const hasImage = i % 8 !== 7;
    const id = ins.run(ds, `e${i}`, `Item ${i}`, hasImage ? Buffer.from([0xff, 0xd8, 0xff, i]) : null).lastInsertRowid as number;
    (hasImage ? withImage : withoutImage).push(id);
  }
});

afterEach(() => catalog.close());

describe('cache ids and storage', () => {
  test('the id names the backbone and k', () => {
    expect(backboneFeatureId('llava-1.5-7b', 4)).toBe('backbone:llava-1.5-7b/k4');
    expect(backboneFeatureId('tiny', 'all')).toBe('backbone:tiny/kall');
  });

  test('tokens and dims round-trip exactly; a bad shape is refused on write and reported on read', () => {
    const tokens = Float32Array.from([1.5, -0, 3.25e-20, -7, Number.MAX_VALUE / 1e300, 6]);
    writeBackboneFeatures(catalog, 'x', [{ itemId: withImage[0], tokens, dims: [3, 2] }]);
    const back = readBackboneFeatures(catalog, 'x', [withImage[0], withImage[1]]);
    expect(back.size).toBe(1);
    expect(back.get(withImage[0])).toEqual({ tokens, dims: [3, 2] });
    expect(Object.is(back.get(withImage[0])!.tokens[1], -0)).toBe(true);
    expect(() => writeBackboneFeatures(catalog, 'x', [{ itemId: withImage[1], tokens, dims: [4, 2] }])).toThrow(/6 values for shape \[4, 2\]/);
    catalog.db.prepare("UPDATE vision_features SET dims = '[2, 2]' WHERE encoder_id = 'x'").run();
    expect(() => readBackboneFeatures(catalog, 'x', [withImage[0]])).toThrow(/vision_features: item \d+ \(x\) has 24 bytes for shape \[2, 2\]/);
    catalog.db.prepare("UPDATE vision_features SET dims = '[6]' WHERE encoder_id = 'x'").run();
    expect(() => readBackboneFeatures(catalog, 'x', [withImage[0]])).toThrow(/shape \[6\], expected \[tokens, dim\]/);
  });

  test('a "no tokens" marker ([0, dim], no values) is cached but reads as no image; a marker with values or a bad dim is refused', () => {
    const item = withImage[2];
    writeBackboneFeatures(catalog, 'x', [{ itemId: item, tokens: new Float32Array(0), dims: [0, DIM] }]);
    expect(catalog.db.prepare("SELECT dims, length(tensor) AS n FROM vision_features WHERE encoder_id = 'x'").get()).toEqual({ dims: `[0,${DIM}]`, n: 0 });
    expect(readBackboneFeatures(catalog, 'x', [item]).size).toBe(0);
    expect(cachedItemIds(catalog, 'x', [item, withImage[3]])).toEqual(new Set([item]));
    expect(uncachedItemsWithImage(catalog, 'x', [item, withImage[3], withoutImage[0]])).toEqual([withImage[3]]);
    catalog.db.prepare("UPDATE vision_features SET tensor = ? WHERE encoder_id = 'x'").run(Buffer.alloc(16));
    expect(() => readBackboneFeatures(catalog, 'x', [item])).toThrow(/vision_features: item \d+ \(x\) has shape \[0,4\], expected \[tokens, dim\]/);
    catalog.db.prepare("UPDATE vision_features SET dims = '[0, 0]', tensor = ? WHERE encoder_id = 'x'").run(Buffer.alloc(0));
    expect(() => readBackboneFeatures(catalog, 'x', [item])).toThrow(/shape \[0, 0\], expected \[tokens, dim\]/);
  });
});

describe('computeBackboneFeatures', () => {
  test('pools each image to k tokens, reports per batch, and the second call encodes nothing', async () => {
    const enc = new FakeEncoder(3);
    const all = [...withImage, ...withoutImage, withImage[0], 0];
    const events: JobProgress[] = [];
    const s = await computeBackboneFeatures(catalog, all, enc, 4, (p) => events.push(p));
    expect(s).toEqual({ encoded: 37, cached: 0, withoutImage: 5, failed: [] });
    // Only items with an image reach the encoder, in batches of 16.
    expect(enc.calls.map((c) => c.length)).toEqual([16, 16, 5]);
    expect(enc.calls.flat().sort((a, b) => a - b)).toEqual(withImage);
    expect(events.map((e) => [e.phase, e.done, e.total])).toEqual([
      ['backbone-features', 0, 37],
      ['backbone-features', 16, 37],
      ['backbone-features', 32, 37],
      ['backbone-features', 37, 37]
    ]);

    const id = backboneFeatureId('fake-llava', 4);
    const stored = readBackboneFeatures(catalog, id, all);
    expect(stored.size).toBe(37);
    for (const itemId of withImage) {
      const { tokens, dims } = stored.get(itemId)!;
      expect(dims).toEqual([4, DIM]);
      expect(tokens).toEqual(poolImageTokens(fakeTokens(itemId, 9), 3, DIM, 4));
    }
    // Hand check on one item: 3 → 2 bins are rows {0, 1} and {1, 2}; top-left cell = tokens 0, 1, 3, 4 → mean t = 2.
    const item = withImage[3];
    expect(stored.get(item)!.tokens.subarray(0, DIM)).toEqual(Float32Array.from([0, 1, 2, 3].map((d) => item + 2 * 0.5 - d * 0.25)));

    const again = await computeBackboneFeatures(catalog, all, enc, 4);
    expect(again).toEqual({ encoded: 0, cached: 37, withoutImage: 5, failed: [] });
    expect(enc.calls).toHaveLength(3);

    // Another k is another cache entry: k = 1 is the mean token.
    await computeBackboneFeatures(catalog, withImage.slice(0, 2), enc, 1);
    const k1 = readBackboneFeatures(catalog, backboneFeatureId('fake-llava', 1), [withImage[0]]).get(withImage[0])!;
    expect(k1.dims).toEqual([1, DIM]);
    expect(k1.tokens).toEqual(Float32Array.from([0, 1, 2, 3].map((d) => withImage[0] + 4 * 0.5 - d * 0.25)));
  });

  test('a cancel between batches keeps what was written; the next call finishes the rest', async () => {
    const enc = new FakeEncoder(3);
    const signal = { aborted: false };
    await expect(
      computeBackboneFeatures(catalog, withImage, enc, 9, (p) => {
        if (p.done >= 16) signal.aborted = true;
      }, signal)
    ).rejects.toBeInstanceOf(CancelledError);
    expect(enc.calls).toHaveLength(1);
    const id = backboneFeatureId('fake-llava', 9);
    expect(readBackboneFeatures(catalog, id, withImage).size).toBe(16);
    const rest = await computeBackboneFeatures(catalog, withImage, enc, 9);
    expect(rest).toEqual({ encoded: 21, cached: 16, withoutImage: 0, failed: [] });
    // k = 9 on a 3×3 grid stores the projector output unchanged.
    expect(readBackboneFeatures(catalog, id, [withImage[20]]).get(withImage[20])!.tokens).toEqual(fakeTokens(withImage[20], 9));
  });

  test('an image the encoder cannot read is reported and gets no entry', async () => {
    const broken = withImage[5];
    const messages: string[] = [];
    const s = await computeBackboneFeatures(catalog, withImage, new FakeEncoder(2, 4, new Set([broken])), 1, (p) => p.message && messages.push(p.message));
    expect(s).toEqual({ encoded: 36, cached: 0, withoutImage: 0, failed: [broken] });
    expect(readBackboneFeatures(catalog, backboneFeatureId('fake-llava', 1), [broken]).size).toBe(0);
    expect(messages.at(-1)).toMatch(/1 stored image\(s\) gave no tokens/);
  });

  test('an image that gave no tokens is recorded once: read back as no image, never encoded again', async () => {
    const broken = withImage[5];
    const enc = new FakeEncoder(2, 4, new Set([broken]));
    const id = backboneFeatureId('fake-llava', 1);
    const all = [...withImage, ...withoutImage];
    // What the ALMOSTREC context checks before it loads the vision tower.
    expect(uncachedItemsWithImage(catalog, id, all)).toEqual(withImage);
    await computeBackboneFeatures(catalog, all, enc, 1);
    expect(enc.calls.flat().filter((i) => i === broken)).toHaveLength(1);
    expect(cachedItemIds(catalog, id, [broken])).toEqual(new Set([broken]));
    expect(readBackboneFeatures(catalog, id, all).has(broken)).toBe(false);
    expect(readBackboneFeatures(catalog, id, all).size).toBe(36);
    // The next start needs no encoder at all, and a call anyway encodes nothing and counts the item as without an image.
    expect(uncachedItemsWithImage(catalog, id, all)).toEqual([]);
    const calls = enc.calls.length;
    const messages: string[] = [];
    const again = await computeBackboneFeatures(catalog, all, enc, 1, (p) => p.message && messages.push(p.message));
    expect(again).toEqual({ encoded: 0, cached: 36, withoutImage: 6, failed: [] });
    expect(enc.calls).toHaveLength(calls);
    expect(messages).toEqual([]);
    // Another k (another cache id) has its own marker.
    expect(uncachedItemsWithImage(catalog, backboneFeatureId('fake-llava', 4), [broken])).toEqual([broken]);
  });

  test('tokens that are no grid (a kept CLS token) only go in as k = all; a wrong size is an error', async () => {
    const cls = new FakeEncoder(3, 10);
    await expect(computeBackboneFeatures(catalog, withImage, cls, 4)).rejects.toThrow(/10 tokens per image are not a 3×3 grid; only k = all/);
    await computeBackboneFeatures(catalog, withImage.slice(0, 1), cls, 'all');
    expect(readBackboneFeatures(catalog, backboneFeatureId('fake-llava', 'all'), [withImage[0]]).get(withImage[0])).toEqual({
      tokens: fakeTokens(withImage[0], 10),
      dims: [10, DIM]
    });
    const liar: ImageTokenEncoder = {
      id: 'liar',
      tokensPerImage: 4,
      dim: DIM,
      gridSide: 2,
      encodeItems: (ids) => Promise.resolve(new Map(ids.map((i) => [i, fakeTokens(i, 9)])))
    };
    await expect(computeBackboneFeatures(catalog, withImage, liar, 1)).rejects.toThrow(/liar: item \d+ gave 36 values, expected 4 tokens × 4/);
  });

  test('refuses a grid smaller than k', async () => {
    await expect(computeBackboneFeatures(catalog, withImage, new FakeEncoder(2), 9)).rejects.toThrow(/2×2 grid cannot be pooled to 3×3/);
  });
});
