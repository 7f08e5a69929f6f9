// MicroLens folder: *_pairs.tsv (`user<TAB>item item item…`, chronological, no header, no timestamps)
// and *_titles.csv (header item,title). Without timestamps the position in the line is the order: the
// interactions are stored with timestamp NULL and their file order as ordinal. An item missing from the
// titles file is an error at the pairs line that names it.
import fs from 'node:fs';
import path from 'node:path';
import type { CancelSignal, ProgressFn } from '../progress';
import { DatasetBuilder } from './dataset-builder';
import { expectColumns, parseId, readDelimited, requireColumn } from './delimited-reader';
import { ImportError } from './import-error';
import type { ReadResult } from './format-reader';

function findOne(folder: string, suffix: string): string {
  let names: string[];
  try {
    names = fs.readdirSync(folder);
  } catch {
    throw new ImportError(folder, null, 'folder not found');
  }
  const hits = names.filter((n) => n.endsWith(suffix));
  if (hits.length !== 1) {
    throw new ImportError(
      folder,
      null,
      hits.length === 0 ? `no *${suffix} file in the folder` : `several *${suffix} files: ${hits.join(', ')}`
    );
  }
  return path.join(folder, hits[0]);
}

export async function readMicrolens(folder: string, onProgress?: ProgressFn, signal?: CancelSignal): Promise<ReadResult> {
  const b = new DatasetBuilder();
  const titlesFile = findOne(folder, '_titles.csv');
  const pairsFile = findOne(folder, '_pairs.tsv');

  let cols = { item: 0, title: 1, width: 2 };
  const titleRecords = readDelimited(titlesFile, {
    delimiter: ',',
    quoted: true,
    signal,
    onBytes: (done, total) => onProgress?.({ phase: 'reading items', done, total })
  });
  for await (const rec of titleRecords) {
    if (rec.line === 1) {
      cols = {
        item: requireColumn(titlesFile, rec.fields, ['item', 'item_id']),
        title: requireColumn(titlesFile, rec.fields, ['title']),
        width: rec.fields.length
      };
      continue;
    }
    expectColumns(titlesFile, rec, cols.width);
    const id = parseId(titlesFile, rec.line, 'item id', rec.fields[cols.item]);
    b.addItem({ externalId: id, title: rec.fields[cols.title], text: null, genres: [], image: null }, titlesFile, rec.line);
  }

  const pairRecords = readDelimited(pairsFile, {
    delimiter: '\t',
    quoted: false,
    signal,
    onBytes: (done, total) => onProgress?.({ phase: 'reading interactions', done, total })
  });
  for await (const rec of pairRecords) {
    expectColumns(pairsFile, rec, 2);
    const user = parseId(pairsFile, rec.line, 'user id', rec.fields[0]);
    const items = rec.fields[1].trim().split(/\s+/);
    if (items[0] === '') throw new ImportError(pairsFile, rec.line, `user ${user} has no items`);
    for (const raw of items) {
      const id = parseId(pairsFile, rec.line, 'item id', raw);
      const index = b.itemIndexOf(id);
      if (index === undefined) throw new ImportError(pairsFile, rec.line, `item ${id} is not in ${path.basename(titlesFile)}`);
      b.addInteraction(user, index, null, null);
    }
  }
  return { builder: b, interactionsFile: pairsFile };
}
