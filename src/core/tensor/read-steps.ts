// One implementation of a computation that reads tensors back between its steps (decoding, prefix-tree
// scoring), runnable synchronously (dataSync: the CPU backends, the callers that cannot await) or
// asynchronously (await data(): the only read tfjs-webgpu offers in Node). The computation is a generator
// that yields the tensors it needs and receives their values; a driver does the reading. Both drivers run
// the same kernels in the same order, so they give the same values; only the way of reading differs.
import type * as tf from '@tensorflow/tfjs-core';

/**
 * A computation that yields tensors and is resumed with their values (in order). The tensors stay its
 * own: it disposes them (in a finally, since a failed read is thrown back in at the yield).
 */
export type ReadSteps<R> = Generator<readonly tf.Tensor[], R, tf.TypedArray[]>;

/** Runs `steps` reading with dataSync (fails on webgpu in Node: use runReadsAsync there). */
export function runReadsSync<R>(steps: ReadSteps<R>): R {
  let next = steps.next();
  while (!next.done) {
    let values: tf.TypedArray[];
    try {
      values = next.value.map((t) => t.dataSync());
    } catch (e) {
      // Thrown back in at the yield, so the computation's finally blocks free what it holds.
      next = steps.throw(e);
      continue;
    }
    next = steps.next(values);
  }
  return next.value;
}

/** Runs `steps` reading with await data() (every backend). */
export async function runReadsAsync<R>(steps: ReadSteps<R>): Promise<R> {
  let next = steps.next();
  while (!next.done) {
    let values: tf.TypedArray[];
    try {
      values = await Promise.all(next.value.map((t) => t.data()));
    } catch (e) {
      next = steps.throw(e);
      continue;
    }
    next = steps.next(values);
  }
  return next.value;
}
