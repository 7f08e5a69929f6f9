// One shard of a data-parallel step, computed the same way on the main thread and in a replica (replicas.ts),
// so that a shard's gradients do not depend on which thread computed them.
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../tensor/rng';
import type { TrainableModel } from './model-spec';
import { SHARDS, type ShardResult } from './replicas';

/** The shard's loss still on the device, its target count, gradients by variable name and timings. */
function shardOnDevice(model: TrainableModel, vars: Map<string, tf.Variable>, step: number, shard: number, seed: number) {
  if (!model.shardLoss) throw new Error('computeShard: the model cannot split a step into shards');
  let count = 0;
  const t0 = performance.now();
  let forwardEnd = t0;
  const { value, grads } = tf.variableGrads(() => {
    const part = model.shardLoss!(step, shard, SHARDS, new Rng(seed));
    forwardEnd = performance.now();
    if (part) {
      count = part.count;
      return part.loss;
    }
    // No target in this shard: a zero that still depends on a variable (variableGrads needs one); its
    // gradients are zeros and its weight in the step's mean is 0 anyway.
    return tf.mul(tf.sum(vars.values().next().value!), 0) as tf.Scalar;
  }, [...vars.values()]);
  const byName = new Map<string, tf.Tensor>();
  for (const [name, v] of vars) {
    const g = grads[v.name];
    if (g) byName.set(name, g);
  }
  return { value, count, grads: byName, forward: (forwardEnd - t0) / 1000, backward: (performance.now() - forwardEnd) / 1000 };
}

/** Loss, target count and gradients (by variable name) of shard `shard` of step `step`, dropout drawn from `seed`. */
export function computeShard(model: TrainableModel, vars: Map<string, tf.Variable>, step: number, shard: number, seed: number): ShardResult {
  const { value, ...rest } = shardOnDevice(model, vars, step, shard, seed);
  const loss = value.dataSync()[0];
  value.dispose();
  return { ...rest, loss: rest.count > 0 ? loss : 0 };
}

/** computeShard with the loss read asynchronously: the only way the webgpu backend reads in Node. */
export async function computeShardAsync(model: TrainableModel, vars: Map<string, tf.Variable>, step: number, shard: number, seed: number): Promise<ShardResult> {
  const { value, ...rest } = shardOnDevice(model, vars, step, shard, seed);
  const loss = (await value.data())[0];
  value.dispose();
  return { ...rest, loss: rest.count > 0 ? loss : 0 };
}

/**
 * The step's mean loss and gradients from its shards: Σ countₛ·xₛ / Σ countₛ, summed in shard order (fixed,
 * so one thread and two give the same bits). Disposes the shards' gradients.
 */
export function combineShards(parts: ShardResult[]): { loss: number; grads: Map<string, tf.Tensor> } {
  const total = parts.reduce((a, p) => a + p.count, 0);
  const grads = new Map<string, tf.Tensor>();
  let loss = 0;
  for (const p of parts) {
    const w = total > 0 ? p.count / total : 0;
    loss += w * p.loss;
    for (const [name, g] of p.grads) {
      const before = grads.get(name);
      const scaled = tf.mul(g, w);
      grads.set(name, before ? tf.add(before, scaled) : scaled);
      if (before) tf.dispose([before, scaled]);
    }
    tf.dispose([...p.grads.values()]);
  }
  return { loss, grads };
}
