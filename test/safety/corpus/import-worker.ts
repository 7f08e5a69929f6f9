// The job worker's import path (src/main/workers/job-worker.ts: a catalog connection of its own,
// executeJob, toApiError) kept up for many imports: starting the app's worker afresh for each of the
// corpus' hundreds of cases would spend most of the test's time loading modules. The parent restarts it
// after a crash or a hang.
import { parentPort } from 'node:worker_threads';
import { Catalog } from '../../../src/core/catalog';
import type { ImportInputParsed } from '../../../src/core/importers';
import { executeJob } from '../../../src/core/jobs/execute';
import { toApiError } from '../../../src/main/services/api-errors';
import type { ImportReply, ImportRequest } from './run-import-job';

const port = parentPort!;

async function run({ dbPath, input }: { dbPath: string; input: ImportInputParsed }): Promise<ImportReply> {
  const catalog = Catalog.open(dbPath);
  try {
    const result = await executeJob(
      { kind: 'import', input },
      { catalog, dataDir: `${dbPath}.data`, signal: { aborted: false }, onProgress: () => undefined, onLog: () => undefined }
    );
    if (result.kind !== 'import') throw new Error(`unexpected result ${result.kind}`);
    return { type: 'done', datasetId: result.datasetId, warnings: result.warnings };
  } catch (err) {
    return { type: 'error', error: toApiError(err) };
  } finally {
    catalog.close();
  }
}

port.on('message', (request: ImportRequest) => {
  void run(request).then((reply) => port.postMessage(reply));
});
