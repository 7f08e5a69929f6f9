// Data-parallel pretraining (pretrain.ts): the wasm backend runs every kernel on one core, so the second core
// helps only if a second tfjs engine computes part of each step. A pretraining replica is a worker thread with
// its own engine and its own onnxruntime session for the LM head: at the start of each stage it receives the
// weights that stage leaves frozen (once, not per step); each step it receives the trainable weights' current
// values and one shard's inputs (pretrain-shards.ts), and answers with that shard's loss, target count and
// gradients. The loop combines the shards and runs Adam once, so one thread and two give the same bits.
import * as tf from '@tensorflow/tfjs-core';
import type { PretrainStage } from '../../shared/backbones';
import type { ShardResult } from '../train/replicas';
import { WorkerChannel } from '../train/worker-channel';
import type { LlavaConfig } from './config';
import type { ShardInput } from './pretrain-shards';

/** Everything a pretraining replica needs to start (structured-cloned into the worker). */
export interface PretrainReplicaInit {
  config: LlavaConfig;
  /** The tfjs backend of the thread that starts it (the replica must compute with the same kernels). */
  backend: string;
}

export type ToPretrainReplica =
  /** A stage begins: its trainable weights (in the order every step sends them) and the values of the others. */
  | { type: 'stage'; stage: PretrainStage; trainable: string[]; frozen: [string, Float32Array][] }
  | { type: 'step'; params: Float32Array[]; input: ShardInput }
  | { type: 'close' };

export type FromPretrainReplica =
  | { type: 'ready' }
  | { type: 'shard'; loss: number; count: number; forward: number; backward: number; grads: (Float32Array | null)[] }
  | { type: 'error'; message: string };

type Answer = Exclude<FromPretrainReplica, { type: 'error' }>;

/** The main thread's handle on one pretraining replica. */
export class PretrainReplica {
  private trainable: { name: string; shape: number[] }[] = [];

  private constructor(private readonly channel: WorkerChannel<ToPretrainReplica, Answer>) {}

  static async start(script: string, init: PretrainReplicaInit): Promise<PretrainReplica> {
    return new PretrainReplica(await WorkerChannel.start(script, init, 'pretraining replica'));
  }

  /** Hands the replica this stage's frozen weights (read once here) and the names of its trainable ones. */
  async beginStage(stage: PretrainStage, weights: Map<string, tf.Tensor>, vars: Map<string, tf.Variable>): Promise<void> {
    const frozen: [string, Float32Array][] = [];
    for (const [name, t] of weights) if (!vars.has(name)) frozen.push([name, ((await t.data()) as Float32Array).slice()]);
    this.trainable = [...vars].map(([name, v]) => ({ name, shape: v.shape }));
    this.channel.send(
      { type: 'stage', stage, trainable: this.trainable.map((t) => t.name), frozen },
      frozen.map(([, v]) => v.buffer as ArrayBuffer)
    );
  }

  /** Sends the trainable weights' current values and one shard's inputs; resolves to its result. */
  async shard(params: Float32Array[], input: ShardInput): Promise<ShardResult> {
    const r = await this.channel.request({ type: 'step', params, input }, params.map((p) => p.buffer as ArrayBuffer));
    if (r.type !== 'shard') throw new Error(`pretraining replica: unexpected answer ${r.type}`);
    const grads = new Map<string, tf.Tensor>();
    this.trainable.forEach(({ name, shape }, i) => {
      const g = r.grads[i];
      if (g) grads.set(name, tf.tensor(g, shape));
    });
    return { loss: r.loss, count: r.count, forward: r.forward, backward: r.backward, grads };
  }

  close(): Promise<void> {
    return this.channel.close({ type: 'close' });
  }
}
