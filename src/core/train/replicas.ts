// Data-parallel training over worker threads. The wasm backend runs every kernel on one core, so a second
// core only helps if a second tfjs engine works on another part of the batch: a replica worker holds a copy
// of the model, receives the current weights each step, computes the gradients of its shard (see
// TrainableModel.shardLoss) and sends them back; the training loop combines them and runs Adam once.
//
// A step is always cut into SHARDS shards with one seed each, whether a replica exists or not: without one,
// the loop computes every shard itself. The same seed then gives the same run, bit for bit, on one thread
// or two (same kernels, same inputs, same summation order).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as tf from '@tensorflow/tfjs-core';
import type { BackboneSource, ModelContext, TrainableKind } from './model-spec';
import { MAX_TRAINING_THREADS } from '../tensor/backend';
import type { RngState } from '../tensor/rng';
import { WorkerChannel } from './worker-channel';

/** Shards per step of a shardable model: one per thread at most, fixed so results never depend on the thread count. */
export const SHARDS = MAX_TRAINING_THREADS;

/** Everything a replica needs to build the model (structured-cloned into the worker). */
export interface ReplicaInit {
  kind: TrainableKind;
  config: Record<string, number>;
  /** The model context; a backbone travels as its source (the replica loads the weights itself, once). */
  ctx: Pick<ModelContext, 'data' | 'itemFeatures'> & { backbone?: BackboneSource };
  values: [string, Float32Array][];
  backend: string;
}

export type ToReplica =
  | { type: 'epoch'; rng: RngState; epoch: number }
  | { type: 'step'; step: number; shard: number; seed: number; params: Float32Array[] }
  | { type: 'close' };

export type FromReplica =
  | { type: 'ready' }
  | { type: 'shard'; loss: number; count: number; forward: number; backward: number; grads: (Float32Array | null)[] }
  | { type: 'error'; message: string };

/** One shard's result in the loop's terms: mean loss, its target count, gradients by variable name. */
export interface ShardResult {
  loss: number;
  count: number;
  grads: Map<string, tf.Tensor>;
  /** Seconds spent computing the loss, then its gradients. */
  forward: number;
  backward: number;
}

/**
 * A built replica entry (`name`, e.g. out/main/train-replica.js): next to the bundle chunk this module ends up
 * in, one folder up (chunks/), or, when running from the sources (tests), in the build output. Null if not built.
 */
export function defaultReplicaScript(name = 'train-replica.js'): string | null {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, name), join(here, '..', name), join(here, '..', '..', '..', 'out', 'main', name)];
  return candidates.find((c) => existsSync(c)) ?? null;
}

/** The main thread's handle on one replica worker; requests are answered in order. */
export class Replica {
  private constructor(private readonly channel: WorkerChannel<ToReplica, Exclude<FromReplica, { type: 'error' }>>) {}

  /** Starts the worker and waits until its model is built. */
  static async start(script: string, init: ReplicaInit): Promise<Replica> {
    return new Replica(await WorkerChannel.start(script, init, 'training replica'));
  }

  /** Same epoch preparation as the main thread's (beginEpoch draws only from this rng state). */
  beginEpoch(rng: RngState, epoch: number): void {
    this.channel.send({ type: 'epoch', rng, epoch });
  }

  /** Sends the current weights and asks for one shard's loss, count and gradients. */
  shard(step: number, shard: number, seed: number, params: Float32Array[]): Promise<Extract<FromReplica, { type: 'shard' }>> {
    const answer = this.channel.request({ type: 'step', step, shard, seed, params }, params.map((p) => p.buffer as ArrayBuffer));
    return answer as Promise<Extract<FromReplica, { type: 'shard' }>>;
  }

  close(): Promise<void> {
    return this.channel.close({ type: 'close' });
  }
}
