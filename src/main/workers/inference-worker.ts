// Worker-thread entry of live inference (issue 14 §4): one long-lived thread keeps the loaded models
// (core/inference) and answers top-k requests off the main process's event loop, one at a time.
import { parentPort, workerData } from 'node:worker_threads';
import { Catalog } from '../../core/catalog';
import { InferenceEngine, UnknownItemError } from '../../core/inference/inference-engine';
import { toApiError } from '../services/api-errors';
import type { InferenceReply, InferenceRequest, InferenceWorkerData } from './inference-protocol';

const data = workerData as InferenceWorkerData;
const catalog = Catalog.open(data.dbPath);
const engine = new InferenceEngine(catalog, { maxModels: data.maxModels });
const post = (m: InferenceReply) => parentPort!.postMessage(m);

parentPort!.on('message', (req: InferenceRequest) => {
  if (req.op === 'forget') {
    engine.forget(req.runId);
    post({ id: req.id, ok: true, answer: null });
    return;
  }
  engine.topK(req.runId, req.history, req.k).then(
    (answer) => post({ id: req.id, ok: true, answer }),
    (err: unknown) => post({ id: req.id, ok: false, error: err instanceof UnknownItemError ? { code: 'invalid_input', message: err.message } : toApiError(err) })
  );
});
