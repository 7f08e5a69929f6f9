// The replica side of data-parallel pretraining (pretrain-replica.ts): keeps the current stage's frozen
// weights, sets the trainable ones from each step's message and answers with its shard's gradients.
import type { MessagePort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, type BackendPreference } from '../tensor/backend';
import { setCrossEntropyThreads } from '../tensor/ort-cross-entropy';
import { LlavaModel } from './llava-model';
import type { FromPretrainReplica, PretrainReplicaInit, ToPretrainReplica } from './pretrain-replica';
import { pretrainShard, type ShardModel } from './pretrain-shards';
import { expectedTensors } from './weight-names';

export async function servePretrainReplica(port: MessagePort, init: PretrainReplicaInit): Promise<void> {
  const post = (m: FromPretrainReplica, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);
  try {
    // exactly the backend of the thread that started this replica: a different one would change the sums
    await initBackend(init.backend as BackendPreference, { exact: true });
  } catch (e) {
    post({ type: 'error', message: e instanceof Error ? e.message : String(e) });
    return;
  }
  // One onnxruntime thread: the main thread's shard keeps the other core busy.
  setCrossEntropyThreads(1);
  const shapes = expectedTensors(init.config);
  const weights = new Map<string, tf.Tensor>();
  let current: (ShardModel & { order: tf.Variable[] }) | null = null;
  const release = () => {
    current?.model.dispose();
    current = null;
    for (const t of weights.values()) t.dispose();
    weights.clear();
  };
  post({ type: 'ready' });
  port.on('message', (m: ToPretrainReplica) => {
    try {
      if (m.type === 'close') {
        release();
        port.close();
      } else if (m.type === 'stage') {
        release();
        for (const [name, values] of m.frozen) weights.set(name, tf.tensor(values, shapes.get(name)));
        // The trainable values arrive with every step; until then they are zeros.
        const vars = new Map(m.trainable.map((name) => [name, tf.variable(tf.zeros(shapes.get(name)!), true, `pretrain/${name}`)]));
        for (const [name, v] of vars) weights.set(name, v);
        const embedTable = weights.get('text.embed_tokens.weight') as tf.Tensor2D;
        current = { model: new LlavaModel(init.config, weights), vars, embedTable, order: [...vars.values()] };
      } else {
        if (!current) throw new Error('a step before its stage');
        const { order } = current;
        m.params.forEach((values, i) => {
          const value = tf.tensor(values, order[i].shape);
          order[i].assign(value); // the variable keeps its own reference to the data
          value.dispose();
        });
        const part = pretrainShard(current, m.input);
        const grads = [...current.vars.keys()].map((name) => {
          const g = part.grads.get(name);
          const data: Float32Array<ArrayBuffer> | null = g ? (g.dataSync() as Float32Array<ArrayBuffer>).slice() : null;
          g?.dispose();
          return data;
        });
        post(
          { type: 'shard', loss: part.loss, count: part.count, forward: part.forward, backward: part.backward, grads },
          grads.flatMap((g) => (g ? [g.buffer] : []))
        );
      }
    } catch (e) {
      post({ type: 'error', message: e instanceof Error ? e.message : String(e) });
    }
  });
}
