import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { itemCaption, loadCaptions, splitTitle, type ItemCaption } from '../../src/core/backbone/captions';
import { Catalog } from '../../src/core/catalog';
import { EMBEDDED_DATASET, importDataset, resolveEmbeddedDatasetDir } from '../../src/core/importers';

describe('itemCaption', () => {
  test('title, year, genres and overview; MovieLens trailing articles read naturally', () => {
    expect(splitTitle('Matrix, The (1999)')).toEqual({ name: 'The Matrix', year: '1999' });
    expect(splitTitle('City of Lost Children, The (Cité des enfants perdus, La) (1995)')).toEqual({
      name: 'The City of Lost Children (Cité des enfants perdus, La)',
      year: '1995'
    });
    expect(splitTitle('Black Mirror')).toEqual({ name: 'Black Mirror', year: null });
    expect(splitTitle('Stranger Things (2016– )')).toEqual({ name: 'Stranger Things', year: '2016' });
    expect(itemCaption({ title: '  Toy  Story (1995) ', genres: ['Animation', 'Comedy'], text: 'Toys\n come   alive.' })).toBe(
      'Toy Story (1995). Genres: Animation, Comedy. Toys come alive.'
    );
  });

  test('missing parts are skipped; nothing at all is an empty caption', () => {
    expect(itemCaption({ title: 'Black Mirror', genres: [], text: null })).toBe('Black Mirror.');
    expect(itemCaption({ title: "What's Up, Doc?", genres: ['Comedy'], text: '  ' })).toBe("What's Up, Doc? Genres: Comedy.");
    expect(itemCaption({ title: '', genres: ['Drama'], text: 'A plot.' })).toBe('Genres: Drama. A plot.');
    expect(itemCaption({ title: ' ', genres: [], text: null })).toBe('');
  });

  test('capped at maxChars on a word boundary, marked with an ellipsis', () => {
    const c = itemCaption({ title: 'Alpha (1990)', genres: ['Action'], text: 'one two three four five six seven' }, 40);
    expect(c).toBe('Alpha (1990). Genres: Action. one two…');
    expect(c.length).toBeLessThanOrEqual(40);
    expect(itemCaption({ title: 'Supercalifragilistic', genres: [], text: null }, 8)).toBe('Superca…');
    expect(() => itemCaption({ title: 'x', genres: [], text: null }, 0)).toThrow(/maxChars 0/);
  });
});

describe('loadCaptions on the embedded dataset', () => {
  let catalog: Catalog;
  let datasetId: number;
  let all: ItemCaption[];
  beforeAll(async () => {
    catalog = Catalog.open(':memory:');
    ({ datasetId } = await importDataset(catalog, { ...EMBEDDED_DATASET, path: resolveEmbeddedDatasetDir(), options: {} }));
    all = loadCaptions(catalog, datasetId, { maxChars: 300 });
  });
  afterAll(() => catalog.close());

  const byExternal = (captions: ItemCaption[], externalId: string): ItemCaption => {
    const { id } = catalog.db.prepare('SELECT id FROM items WHERE dataset_id = ? AND external_id = ?').get(datasetId, externalId) as { id: number };
    return captions.find((c) => c.itemId === id)!;
  };

  test('one caption per item, in id order, with title, year, genres and the overview', () => {
    expect(all).toHaveLength(9742);
    expect(all.every((c, i) => i === 0 || c.itemId > all[i - 1].itemId)).toBe(true);
    const toy = byExternal(all, '1');
    expect(toy.hasImage).toBe(true);
    expect(toy.caption).toMatch(/^Toy Story \(1995\)\. Genres: Adventure, Animation, Children, Comedy, Fantasy\. Led by Woody, Andy's toys live happily/);
    expect(byExternal(all, '2571').caption).toMatch(/^The Matrix \(1999\)\. Genres: Action, Sci-Fi, Thriller\. Set in the 22nd century/);
    // "(no genres listed)" is stored as no genres: the part is left out.
    expect(byExternal(all, '114335').caption).toMatch(/^La cravate \(1957\)\.(?! Genres)/);
  });

  test('whitespace normalised and every caption within maxChars', () => {
    for (const { caption } of all) {
      expect(caption.length).toBeGreaterThan(0);
      expect(caption.length).toBeLessThanOrEqual(300);
      expect(caption).not.toMatch(/\s{2}|^\s|\s$|\n/);
    }
    expect(all.filter((c) => c.caption.endsWith('…')).length).toBeGreaterThan(100);
  });

  test('coreOnly keeps the 5-core items, withImageOnly the ones with a poster', () => {
    const core = loadCaptions(catalog, datasetId, { coreOnly: true });
    expect(core).toHaveLength(3650);
    const posters = loadCaptions(catalog, datasetId, { withImageOnly: true });
    expect(posters).toHaveLength(3628);
    expect(posters.every((c) => c.hasImage)).toBe(true);
    expect(all.filter((c) => c.hasImage)).toHaveLength(3628);
    const both = loadCaptions(catalog, datasetId, { coreOnly: true, withImageOnly: true, maxChars: 10_000 });
    expect(both).toHaveLength(3628);
    // Uncapped captions keep the whole overview.
    expect(byExternal(both, '1').caption.endsWith('learns to put aside their differences.')).toBe(true);
  });
});
