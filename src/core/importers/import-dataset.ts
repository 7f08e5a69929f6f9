// Entry point of every import: read the source with the format's reader, then filter, validate posters
// and write it all in one transaction. Bad input throws ImportError (file + line) and leaves the
// catalog unchanged; cancellation throws CancelledError, also before anything is committed.
import path from 'node:path';
import type { Catalog } from '../catalog';
import type { CancelSignal, ProgressFn } from '../progress';
import type { ImportInputParsed, ReadResult } from './format-reader';
import { readGeneric } from './generic';
import { ImportError } from './import-error';
import { readMicrolens } from './microlens';
import { readMovielens100k } from './movielens-100k';
import { readMovielensLatest } from './movielens-latest';
import { WarningList } from './warning-list';
import { writeDataset } from './write-dataset';

export async function importDataset(
  catalog: Catalog,
  input: ImportInputParsed,
  onProgress?: ProgressFn,
  signal?: CancelSignal
): Promise<{ datasetId: number; warnings: string[] }> {
  const source = path.resolve(input.path);
  // Fail fast; the unique check inside the transaction still guards against a concurrent import.
  if (catalog.findDatasetByName(input.name)) {
    throw new ImportError(source, null, `a dataset named '${input.name}' already exists`);
  }
  const warnings = new WarningList();
  let read: ReadResult;
  switch (input.format) {
    case 'movielens-100k':
      read = await readMovielens100k(source, input.options, warnings, onProgress, signal);
      break;
    case 'movielens-latest':
      read = await readMovielensLatest(source, input.options, warnings, onProgress, signal);
      break;
    case 'microlens':
      read = await readMicrolens(source, onProgress, signal);
      break;
    case 'generic':
      read = await readGeneric(source, input.options, onProgress, signal);
      break;
  }
  const datasetId = writeDataset(
    catalog,
    { name: input.name, format: input.format, sourcePath: source, interactionsFile: read.interactionsFile },
    read.builder,
    warnings,
    onProgress,
    signal
  );
  return { datasetId, warnings: warnings.list() };
}
