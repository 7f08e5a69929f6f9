import { cpus } from 'node:os';
import { afterEach, describe, expect, test } from 'vitest';
import { computeThreads, getBackendInfo, initBackend, tf } from '../../src/core/tensor/backend';

afterEach(() => {
  delete process.env.ALMOSTREC_BACKEND;
  delete process.env.ALMOSTREC_THREADS;
});

describe('computeThreads', () => {
  test('the cores, at most 2; ALMOSTREC_THREADS overrides; nonsense is refused', () => {
    expect(computeThreads()).toBe(Math.min(2, cpus().length));
    expect(computeThreads(1)).toBe(1);
    expect(computeThreads(8)).toBe(2);
    process.env.ALMOSTREC_THREADS = '1';
    expect(computeThreads()).toBe(1);
    process.env.ALMOSTREC_THREADS = 'many';
    expect(() => computeThreads()).toThrow(/ALMOSTREC_THREADS/);
  });
});

describe('initBackend', () => {
  test('auto falls through the missing native packages to wasm SIMD', async () => {
    const info = await initBackend('auto');
    // @tensorflow/tfjs-node(-gpu) are optional and not installed in CI; where they are, this is 'tensorflow'.
    expect(['tensorflow', 'wasm']).toContain(info.name);
    if (info.name === 'wasm') {
      // The cross-entropy over all items runs in onnxruntime (bundled CPU build of onnxruntime-node).
      expect(info).toEqual({ name: 'wasm', threads: computeThreads(), device: 'CPU (wasm SIMD + onnxruntime)', simd: true });
      expect(info.threads).toBeGreaterThanOrEqual(1);
    }
    expect(tf.getBackend()).toBe(info.name);
    expect(getBackendInfo()).toEqual(info);
    // It computes, and gradients of gather work on it (UnsortedSegmentSum is registered).
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.gather(t, tf.tensor1d([1, 1, 0], 'int32'))))(tf.ones([3, 2]));
    expect([...g.dataSync()]).toEqual([1, 1, 2, 2, 0, 0]);
  });

  test('ALMOSTREC_BACKEND overrides the argument; unknown values are rejected', async () => {
    process.env.ALMOSTREC_BACKEND = 'cpu';
    const info = await initBackend('wasm');
    expect(info).toEqual({ name: 'cpu', threads: computeThreads(), device: 'CPU (JavaScript + onnxruntime)', simd: false });
    expect(getBackendInfo()).toEqual(info);
    process.env.ALMOSTREC_BACKEND = 'tpu';
    await expect(initBackend()).rejects.toThrow('ALMOSTREC_BACKEND="tpu"');
  });

  test('asking for native TensorFlow without the package falls back rather than failing', async () => {
    const info = await initBackend('tensorflow');
    expect(['tensorflow', 'wasm']).toContain(info.name);
  });

  test('getBackendInfo follows a later tf.setBackend', async () => {
    await initBackend('wasm');
    await tf.setBackend('cpu');
    expect(getBackendInfo().name).toBe('cpu');
  });
});
