// The replica side of data-parallel training (train/replicas.ts): builds the model from the init message,
// then answers each step request with its shard's loss, target count and gradients. It lives above models/
// (not in train/) because it looks the model up in the registry by kind.
import type { MessagePort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { modelSpec } from '../models/registry';
import { initBackend, type BackendPreference } from '../tensor/backend';
import { setCrossEntropyThreads } from '../tensor/ort-cross-entropy';
import { Rng } from '../tensor/rng';
import { reloadBackboneInputs } from '../models/almostrec-context';
import type { BackboneInputs, ModelContext } from '../train/model-spec';
import type { FromReplica, ReplicaInit, ToReplica } from '../train/replicas';
import { computeShard } from '../train/shard-step';

export async function serveReplica(port: MessagePort, init: ReplicaInit): Promise<void> {
  const post = (m: FromReplica, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);
  let model;
  let backbone: BackboneInputs | undefined;
  try {
    // exactly the backend of the thread that started this replica: a different one would change the sums
    await initBackend(init.backend as BackendPreference, { exact: true });
    setCrossEntropyThreads(1); // the main thread's shard keeps the other core busy
    const spec = modelSpec(init.kind);
    // A frozen backbone is loaded here once, from its folder, not sent with every step.
    backbone = init.ctx.backbone && reloadBackboneInputs(init.ctx.backbone);
    const ctx: ModelContext = { data: init.ctx.data, itemFeatures: init.ctx.itemFeatures, backbone };
    model = spec.build(init.config as never, ctx, new Map(init.values));
  } catch (e) {
    backbone?.dispose();
    post({ type: 'error', message: e instanceof Error ? e.message : String(e) });
    return;
  }
  const vars = model.params;
  post({ type: 'ready' });
  port.on('message', (m: ToReplica) => {
    try {
      if (m.type === 'close') {
        model.dispose();
        backbone?.dispose();
        port.close();
      } else if (m.type === 'epoch') {
        model.beginEpoch(new Rng(m.rng), m.epoch);
      } else {
        let i = 0;
        for (const v of vars.values()) {
          const value = tf.tensor(m.params[i++], v.shape);
          v.assign(value); // the variable keeps its own reference to the data
          value.dispose();
        }
        const part = computeShard(model, vars, m.step, m.shard, m.seed);
        const grads = [...vars.keys()].map((name) => {
          const g = part.grads.get(name);
          const data: Float32Array<ArrayBuffer> | null = g ? (g.dataSync() as Float32Array<ArrayBuffer>).slice() : null;
          g?.dispose();
          return data;
        });
        const buffers = grads.flatMap((g) => (g ? [g.buffer] : []));
        post({ type: 'shard', loss: part.loss, count: part.count, forward: part.forward, backward: part.backward, grads }, buffers);
      }
    } catch (e) {
      post({ type: 'error', message: e instanceof Error ? e.message : String(e) });
    }
  });
}
