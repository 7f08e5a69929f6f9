// Reading tensors back to the host before code that reads them synchronously. tfjs-webgpu cannot dataSync in
// Node (webgpu-backend.ts), but an awaited read leaves the values cached on the CPU, and a later dataSync of
// the same tensor returns that copy. On the CPU backends the values are on the host already.
import * as tf from '@tensorflow/tfjs-core';

/** Awaits the values of every tensor, so that synchronous reads of these tensors work on every backend. */
export async function readToHost(tensors: Iterable<tf.Tensor>): Promise<void> {
  for (const t of tensors) await t.data();
}
