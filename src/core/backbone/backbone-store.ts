// Where a backbone pretrained in the app keeps its files, and the row + folder bookkeeping the API service
// and the CLI share. A registered llava-hf folder belongs to the user: nothing here ever deletes it.
import { rmSync } from 'node:fs';
import { join, relative, resolve, isAbsolute } from 'node:path';
import type { BackboneSummary } from '../../shared/backbones';
import type { Catalog } from '../catalog';

/** `<dataDir>/backbones/<id>`: the llava-hf-layout folder a pretraining job writes. */
export function pretrainedBackboneDir(dataDir: string, backboneId: number): string {
  return join(dataDir, 'backbones', String(backboneId));
}

/**
 * Creates a 'queued' pretrained backbone whose path is its own folder under the data dir. One transaction:
 * the folder name needs the row id, and no reader may see the row without its path.
 */
export function createPretrainedBackbone(
  catalog: Catalog,
  dataDir: string,
  b: { name: string; datasetId: number; config: Record<string, number> }
): number {
  return catalog.db.transaction(() => {
    const id = catalog.createBackbone({ name: b.name, source: 'pretrained', datasetId: b.datasetId, path: '', config: b.config });
    catalog.updateBackbone(id, { path: pretrainedBackboneDir(dataDir, id) });
    return id;
  })();
}

/** True when `path` is `dir` or lies inside it. */
function isWithin(path: string, dir: string): boolean {
  const rel = relative(resolve(dir), resolve(path));
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/**
 * Deletes the folder of a backbone pretrained in the app; a no-op for registered folders and for any path
 * outside its own `<dataDir>/backbones/<id>` (a row edited by hand must not make us delete user files).
 * Returns the folder removed, or null.
 */
export function removeBackboneFiles(dataDir: string, backbone: Pick<BackboneSummary, 'id' | 'source' | 'path'>): string | null {
  if (backbone.source !== 'pretrained') return null;
  const own = pretrainedBackboneDir(dataDir, backbone.id);
  if (!backbone.path || !isWithin(backbone.path, own)) return null;
  rmSync(own, { recursive: true, force: true });
  return own;
}
