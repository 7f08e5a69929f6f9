// Issue 16: a run on webgpu is refused at its start when it cannot fit, instead of failing (or thrashing)
// minutes in. WebGPU exposes no memory size: the adapter bounds single buffers (maxBufferSize, and
// maxStorageBufferBindingSize, the most a shader can bind), so the run's largest tensor is held to those;
// env ALMOSTREC_GPU_MEMORY_MB, when set, bounds the total (parameters, Adam state, frozen tensors,
// activations). The estimates per model family are models/gpu-memory-estimates.ts.
import * as tf from '@tensorflow/tfjs-core';
import { webGpuLimits, type WebGpuLimits } from '../tensor/webgpu-backend';

/** Floats a run keeps on the device at its peak (one training step at the run's batch). */
export interface MemoryEstimate {
  /** Trainable parameters; each also has a gradient and Adam's two moments on the device. */
  parameters: number;
  /** Frozen tensors kept for the whole run (a backbone's weights and their transposed copies, feature tables). */
  frozen: number;
  /** Peak activations of one step (forward values kept for backward, the cross-entropy's chunks). */
  activations: number;
  /** The largest single tensor, which must fit one buffer. */
  largestTensor: number;
}

const BYTES_PER_FLOAT = 4;

/** Total bytes: weights, gradients and Adam's m and v (4 floats a parameter), frozen tensors, activations. */
export function estimatedBytes(e: MemoryEstimate): number {
  return BYTES_PER_FLOAT * (4 * e.parameters + e.frozen + e.activations);
}

export interface GpuBudget extends WebGpuLimits {
  /** ALMOSTREC_GPU_MEMORY_MB in bytes; null when not set. */
  memoryBytes: number | null;
}

/** ALMOSTREC_GPU_MEMORY_MB in bytes, null when unset; throws on anything but a positive number. */
export function gpuMemoryFromEnv(): number | null {
  const v = process.env.ALMOSTREC_GPU_MEMORY_MB;
  if (v === undefined || v === '') return null;
  const mb = Number(v);
  if (!(mb > 0) || !Number.isFinite(mb)) throw new Error(`ALMOSTREC_GPU_MEMORY_MB="${v}" is not a positive number of MiB`);
  return mb * 2 ** 20;
}

/** Bytes in GiB, or MiB below 1 GiB. */
const gib = (bytes: number): string => (bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`);

/** Why a run of `what` with estimate `e` cannot run within `budget`, or null when it fits. */
export function gpuMemoryRefusal(what: string, e: MemoryEstimate, budget: GpuBudget): string | null {
  const total = estimatedBytes(e);
  const parts =
    `parameters ${gib(BYTES_PER_FLOAT * e.parameters)}, their gradients and Adam state ${gib(3 * BYTES_PER_FLOAT * e.parameters)}, ` +
    `frozen tensors ${gib(BYTES_PER_FLOAT * e.frozen)}, activations ${gib(BYTES_PER_FLOAT * e.activations)}`;
  if (budget.memoryBytes !== null && total > budget.memoryBytes) {
    return `${what} needs an estimated ${gib(total)} of GPU memory (${parts}), more than ALMOSTREC_GPU_MEMORY_MB allows (${gib(budget.memoryBytes)}); lower the batch size or the model's size`;
  }
  const largest = BYTES_PER_FLOAT * e.largestTensor;
  const bound = Math.min(budget.maxBufferSize, budget.maxStorageBufferBindingSize);
  if (largest > bound) {
    const which = budget.maxStorageBufferBindingSize <= budget.maxBufferSize ? 'maxStorageBufferBindingSize' : 'maxBufferSize';
    return `${what} needs a single tensor of an estimated ${gib(largest)} (of ${gib(total)} in all: ${parts}), more than the WebGPU adapter's ${which} (${gib(bound)}); lower the batch size or the model's size`;
  }
  return null;
}

/**
 * Throws, naming the estimate and the limit, when the active backend is webgpu and the run cannot fit;
 * does nothing on the other backends. `estimate` is only computed on webgpu.
 */
export function checkGpuMemory(what: string, estimate: () => MemoryEstimate): void {
  if (tf.getBackend() !== 'webgpu') return;
  const limits = webGpuLimits();
  if (!limits) return;
  const refusal = gpuMemoryRefusal(what, estimate(), { ...limits, memoryBytes: gpuMemoryFromEnv() });
  if (refusal) throw new Error(refusal);
}
