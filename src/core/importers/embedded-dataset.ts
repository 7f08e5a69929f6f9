// The dataset shipped with the app (resources/datasets/ml-latest-small) and how to find it at runtime:
// from src/ under vitest, from out/main/ when bundled, or from ALMOSTREC_RESOURCES (the resources folder)
// in a packaged app.
import fs from 'node:fs';
import path from 'node:path';
import type { ImportFormat } from '../../shared/types';

export const EMBEDDED_DATASET: { readonly name: string; readonly format: ImportFormat } = {
  name: 'ml-latest-small',
  format: 'movielens-latest'
};

const RELATIVE = path.join('datasets', 'ml-latest-small');

function isDatasetDir(dir: string): boolean {
  return fs.existsSync(path.join(dir, 'ratings.csv')) && fs.existsSync(path.join(dir, 'movies.csv'));
}

export function resolveEmbeddedDatasetDir(startDir: string = __dirname, env: NodeJS.ProcessEnv = process.env): string {
  const tried: string[] = [];
  const fromEnv = env.ALMOSTREC_RESOURCES;
  if (fromEnv) {
    const dir = path.resolve(fromEnv, RELATIVE);
    if (isDatasetDir(dir)) return dir;
    tried.push(dir);
  }
  for (let dir = path.resolve(startDir); ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'resources', RELATIVE);
    if (isDatasetDir(candidate)) return candidate;
    tried.push(candidate);
    if (path.dirname(dir) === dir) break;
  }
  throw new Error(
    `embedded dataset ${EMBEDDED_DATASET.name} not found (looked in ${tried.join(', ')}); set ALMOSTREC_RESOURCES to the resources folder`
  );
}
