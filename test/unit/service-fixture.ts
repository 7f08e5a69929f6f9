// The service tests' common setup: a WorkbenchService over a temporary folder whose job worker is a stand-in
// (test/fixtures/workers), the tiny MovieLens fixture imported, and the API called as both transports call it.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { importDataset } from '../../src/core/importers';
import { WorkbenchService } from '../../src/main/services/workbench-service';

export interface ServiceWithDataset {
  dir: string;
  service: WorkbenchService;
  datasetId: number;
}

/** A service whose jobs run `test/fixtures/workers/<workerFile>`, with the tiny ml-latest fixture imported. */
export async function serviceWithTinyDataset(tempPrefix: string, workerFile: string): Promise<ServiceWithDataset> {
  const dir = mkdtempSync(join(tmpdir(), tempPrefix));
  const workerPath = resolve(__dirname, '../fixtures/workers', workerFile);
  const service = new WorkbenchService({ dataDir: dir, dbPath: join(dir, 'catalog.sqlite'), workerPath, transport: 'http', version: '1', autoImport: false });
  const { datasetId } = await importDataset(service.catalog, { format: 'movielens-latest', path: resolve(__dirname, '../fixtures/importers/ml-latest'), name: 'tiny', options: {} });
  return { dir, service, datasetId };
}

/** API calls that must succeed (their result) or be refused (their error), on the service `current()` returns. */
export function apiCalls(current: () => WorkbenchService): {
  ok: <T>(method: string, input: unknown) => Promise<T>;
  refused: (method: string, input: unknown) => Promise<{ code: string; message: string }>;
} {
  return {
    async ok<T>(method: string, input: unknown): Promise<T> {
      const res = await current().handle(method, input);
      if (!res.ok) throw new Error(`${method}: ${res.error.code} ${res.error.message}`);
      return res.result as T;
    },
    async refused(method: string, input: unknown) {
      const res = await current().handle(method, input);
      if (res.ok) throw new Error(`${method} unexpectedly succeeded`);
      return res.error;
    }
  };
}
