// One pretraining step cut into shards (data parallelism over replica workers, see pretrain-replica.ts): the
// batch's captions are dealt to SHARDS shards by a fixed rule, each shard is padded and computed on its own,
// and the loop combines the shards' gradients weighted by their target counts (train/shard-step.ts
// combineShards), so Adam sees the mean loss over every caption token of the batch, as before the split.
// The same shard gives the same bits on the main thread and in a replica: same inputs, same kernels.
import * as tf from '@tensorflow/tfjs-core';
import { tiedSoftmaxCrossEntropy } from '../tensor/ops';
import type { ShardResult } from '../train/replicas';
import type { LlavaModel } from './llava-model';
import { lossRows, makeBatch, sampleSequence, type CaptionSample, type SequenceSpec } from './pretrain-data';

/** A shard's model inputs, built on the main thread; plain arrays so that they can travel to a replica. */
export interface ShardInput {
  inputIds: Int32Array;
  attentionMask: Int32Array;
  batch: number;
  length: number;
  /** Flattened positions that carry a loss, and their next tokens. */
  rows: Int32Array;
  targets: Int32Array;
  /** The vision-tower grids of the shard's posters, in order of appearance: [images × tokens × hidden]. */
  feats: Float32Array | null;
  images: number;
}

/**
 * The batch positions of shard `shard`: ranked by sequence length (ties by position) and dealt in turn, so
 * the shards get about the same number of tokens whatever the batch; each shard keeps the batch's order.
 */
export function pretrainShardMembers(lengths: readonly number[], shard: number, shards: number): number[] {
  const ranked = lengths.map((_, i) => i).sort((a, b) => lengths[a] - lengths[b] || a - b);
  return ranked.filter((_, r) => r % shards === shard).sort((a, b) => a - b);
}

/** The step's `picked` captions as `shards` shard inputs (an empty shard: null). */
export function shardInputs(
  picked: readonly CaptionSample[],
  withImage: (s: CaptionSample) => boolean,
  spec: SequenceSpec,
  grids: Map<number, Float32Array>,
  visionHidden: number,
  shards: number
): (ShardInput | null)[] {
  const lengths = picked.map((s) => sampleSequence(s, withImage(s), spec).ids.length);
  return Array.from({ length: shards }, (_, shard) => {
    const members = pretrainShardMembers(lengths, shard, shards);
    if (members.length === 0) return null;
    const batch = makeBatch(
      members.map((i) => picked[i]),
      withImage,
      spec
    );
    const { rows, targets } = lossRows(batch);
    const images = batch.imageItems.length;
    const feats = images ? concatGrids(batch.imageItems, grids, spec.imageTokens * visionHidden) : null;
    return { inputIds: batch.inputIds, attentionMask: batch.attentionMask, batch: batch.batch, length: batch.length, rows, targets, feats, images };
  });
}

/** The poster grids of `items`, one after the other (each `size` floats). */
export function concatGrids(items: number[], grids: Map<number, Float32Array>, size: number): Float32Array {
  const out = new Float32Array(items.length * size);
  items.forEach((id, i) => {
    const g = grids.get(id);
    if (!g || g.length !== size) throw new Error(`no image grid of size ${size} for item ${id}`);
    out.set(g, i * size);
  });
  return out;
}

/** What a shard is computed with: the model, its trainable variables by name, the tied LM head's table. */
export interface ShardModel {
  model: LlavaModel;
  vars: Map<string, tf.Variable>;
  embedTable: tf.Tensor2D;
}

/** The shard's mean loss still on the device, its target count, gradients by variable name and timings. */
export function pretrainShardOnDevice({ model, vars, embedTable }: ShardModel, input: ShardInput) {
  const cfg = model.config;
  const t0 = performance.now();
  let forwardEnd = t0;
  const ids = tf.tensor2d(input.inputIds, [input.batch, input.length], 'int32');
  const mask = tf.tensor2d(input.attentionMask, [input.batch, input.length], 'int32');
  const rowIndex = tf.tensor1d(input.rows, 'int32');
  const feats = input.feats ? tf.tensor3d(input.feats, [input.images, input.feats.length / input.images / cfg.vision.hiddenSize, cfg.vision.hiddenSize]) : null;
  try {
    const { value, grads } = tf.variableGrads(() => {
      const imageEmbeds = feats ? model.projectVisionFeatures(feats, true) : undefined;
      const { hidden } = model.forward({ inputIds: ids, attentionMask: mask, imageEmbeds, training: true, logits: 'none' });
      const h = tf.gather(tf.reshape(hidden, [-1, cfg.text.hiddenSize]), rowIndex) as tf.Tensor2D;
      const loss = tiedSoftmaxCrossEntropy(h, embedTable, input.targets, -1);
      forwardEnd = performance.now();
      return loss;
    }, [...vars.values()]);
    const byName = new Map<string, tf.Tensor>();
    for (const [name, v] of vars) if (grads[v.name]) byName.set(name, grads[v.name]);
    return { value, count: input.targets.length, grads: byName, forward: (forwardEnd - t0) / 1000, backward: (performance.now() - forwardEnd) / 1000 };
  } finally {
    tf.dispose([ids, mask, rowIndex, ...(feats ? [feats] : [])]);
  }
}

/** pretrainShardOnDevice with the loss read synchronously (a replica: wasm or cpu). */
export function pretrainShard(m: ShardModel, input: ShardInput): ShardResult {
  const { value, ...rest } = pretrainShardOnDevice(m, input);
  const loss = value.dataSync()[0];
  value.dispose();
  return { ...rest, loss };
}

/** pretrainShardOnDevice with the loss read asynchronously: the only way the webgpu backend reads in Node. */
export async function pretrainShardAsync(m: ShardModel, input: ShardInput): Promise<ShardResult> {
  const { value, ...rest } = pretrainShardOnDevice(m, input);
  const loss = (await value.data())[0];
  value.dispose();
  return { ...rest, loss };
}
