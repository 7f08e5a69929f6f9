import { afterEach, describe, expect, test } from 'vitest';
import { getBackendInfo, initBackend, tf } from '../../src/core/tensor/backend';

afterEach(() => {
  delete process.env.ALMOSTREC_BACKEND;
});

describe('initBackend', () => {
  test('auto falls through the missing native packages to wasm SIMD', async () => {
    const info = await initBackend('auto');
    // @tensorflow/tfjs-node(-gpu) are optional and not installed in CI; where they are, this is 'tensorflow'.
    expect(['tensorflow', 'wasm']).toContain(info.name);
    if (info.name === 'wasm') {
      expect(info).toEqual({ name: 'wasm', threads: info.threads, device: 'CPU (wasm SIMD)', simd: true });
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
    expect(info).toEqual({ name: 'cpu', threads: 1, device: 'CPU (JavaScript)', simd: false });
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
