// Datasets for the benchmarks: the embedded one, the shared ones next to the repository (never inside it,
// for licence reasons), or a path whose layout is detected; imported once into the benchmark's catalog.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ImportFormat } from '../shared/types';
import type { SequenceData } from '../core/data/types';
import type { Catalog } from '../core/catalog';
import { importDataset, resolveEmbeddedDatasetDir } from '../core/importers';

const log = (msg: string) => process.stderr.write(msg + '\n');

export interface DatasetSource {
  name: string;
  format: ImportFormat;
  path: string;
}

/**
 * A path in the shared folder next to the repository (`../shared/…`, or `./shared/…` from the parent):
 * datasets (never inside the repository, for licence reasons) and the PyTorch reference.
 */
export function sharedPath(parts: string[], cwd: string, what: string, hint = ''): string {
  const candidates = [resolve(cwd, '..', 'shared', ...parts), resolve(cwd, 'shared', ...parts)];
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new Error(`${what} not found: tried ${candidates.join(', ')}${hint}`);
  return found;
}

function sharedDataset(sub: string): string {
  return sharedPath(['datasets', sub], process.cwd(), 'dataset folder');
}

function detectLayout(dir: string): ImportFormat {
  if (!existsSync(dir)) throw new Error(`dataset path not found: ${dir}`);
  if (statSync(dir).isFile()) return 'generic';
  const files = readdirSync(dir);
  if (files.includes('ratings.csv') && files.includes('movies.csv')) return 'movielens-latest';
  if (files.includes('u.data')) return 'movielens-100k';
  if (files.some((f) => /_pairs\.(tsv|csv)$/i.test(f))) return 'microlens';
  throw new Error(`cannot tell the layout of ${dir} (expected ratings.csv + movies.csv, u.data, or *_pairs.tsv); pass a CSV file for the generic importer`);
}

export function resolveDataset(arg: string): DatasetSource {
  if (arg === 'ml-latest-small') {
    let path: string;
    try {
      path = resolveEmbeddedDatasetDir();
    } catch {
      path = sharedDataset('ml-latest-small');
    }
    return { name: arg, format: 'movielens-latest', path };
  }
  if (arg === 'movielens-100k-mm') return { name: arg, format: 'movielens-100k', path: join(sharedDataset('movielens-100k-mm'), 'ml-100k') };
  if (arg === 'microlens-50k') return { name: arg, format: 'microlens', path: sharedDataset('microlens-50k') };
  let path = resolve(arg);
  if (existsSync(join(path, 'ml-100k', 'u.data'))) path = join(path, 'ml-100k');
  return { name: arg, format: detectLayout(path), path };
}


/** The catalog's dataset id for `source`, importing it first when the catalog does not hold it yet. */
export async function ensureDataset(catalog: Catalog, source: DatasetSource): Promise<number> {
  const known = catalog.findDatasetByName(source.name);
  if (known) return known.id;
  const imported = await importDataset(catalog, { format: source.format, path: source.path, name: source.name, options: {} });
  log(`${source.path} (${source.format}) imported, ${imported.warnings.length} warnings`);
  return imported.datasetId;
}

/** The dataset's sequences, imported first unless a kept catalog (--catalog) holds it already. */
export async function loadData(catalog: Catalog, source: DatasetSource): Promise<SequenceData> {
  const t0 = performance.now();
  const data = catalog.loadSequences(await ensureDataset(catalog, source));
  const interactions = data.users.reduce((a, u) => a + u.items.length, 0);
  log(`${source.name}: ${data.users.length} users, ${data.numItems} items, ${interactions} interactions (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  return data;
}
