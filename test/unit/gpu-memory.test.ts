// Issue 16: the GPU memory estimate before a run on webgpu. The estimate's figures for a known GRU4Rec config
// (worked out by hand below), the compact backbone's parameters, and the refusal: over ALMOSTREC_GPU_MEMORY_MB,
// or a single tensor over the adapter's binding size, names the estimate and the limit; a run that fits, or
// one on a CPU backend, is not refused.
import { afterEach, beforeAll, describe, expect, test } from 'vitest';
import { parseModelConfig } from '../../src/shared/api';
import { pretrainDefaults } from '../../src/shared/backbones';
import { compactConfig, parameterCount } from '../../src/core/backbone/compact';
import type { PretrainParams } from '../../src/core/backbone/pretrain';
import type { SequenceData } from '../../src/core/data/types';
import { crossEntropyFloats, pretrainMemory, trainingMemory } from '../../src/core/models/gpu-memory-estimates';
import { initBackend } from '../../src/core/tensor/backend';
import { checkGpuMemory, estimatedBytes, gpuMemoryFromEnv, gpuMemoryRefusal, type MemoryEstimate } from '../../src/core/train/gpu-memory';

/** 99 items (100 rows with padding), 3 users. */
const data: SequenceData = {
  datasetId: 1,
  numItems: 99,
  itemIds: Int32Array.from({ length: 100 }, (_, i) => i),
  users: [1, 2, 3].map((u) => ({ userId: u, items: Int32Array.from([1, 2, 3]), timestamps: Float64Array.from([0, 1, 2]) }))
};

const saved = process.env.ALMOSTREC_GPU_MEMORY_MB;
afterEach(() => {
  if (saved === undefined) delete process.env.ALMOSTREC_GPU_MEMORY_MB;
  else process.env.ALMOSTREC_GPU_MEMORY_MB = saved;
});

describe('estimates', () => {
  test('GRU4Rec (B 4, L 5, E 8, H 16, one layer, 100 item rows): the figures worked out by hand', () => {
    const config = parseModelConfig('gru4rec', { batchSize: 4, maxLen: 5, embeddingSize: 8, hiddenSize: 16, numLayers: 1 });
    const e = trainingMemory('gru4rec', config, { data });
    // item_emb 100·8 + w_ih 8·48 + w_hh 16·48 + dense.w 16·8 + dense.b 8
    expect(e.parameters).toBe(800 + 384 + 768 + 128 + 8);
    expect(e.frozen).toBe(0);
    // 20 target rows: kept probabilities 20·100, one chunk's three 20·100 intermediates; the GRU 20·(2·8 + 8·16)
    expect(e.activations).toBe(2000 + 3 * 2000 + 20 * (16 + 128));
    expect(e.largestTensor).toBe(2000);
    expect(estimatedBytes(e)).toBe(4 * (4 * 2088 + 10880));
  });

  test('the cross-entropy keeps no probabilities past 64 Mi floats and is chunked to 8 Mi floats', () => {
    expect(crossEntropyFloats(10, 1000)).toEqual({ activations: 10_000 + 30_000, largest: 10_000 });
    const big = crossEntropyFloats(100_000, 1_000_000);
    expect(big.largest).toBe(8 * 1_000_000);
    expect(big.activations).toBe(3 * 8 * 1_000_000);
  });

  test('pretraining counts the compact backbone\'s parameters exactly and grows with the batch', () => {
    const params = pretrainDefaults() as unknown as PretrainParams;
    const e = pretrainMemory(params);
    expect(e.parameters).toBe(parameterCount(compactConfig(params, 'x')));
    expect(pretrainMemory({ ...params, batchSize: params.batchSize * 2 }).activations).toBeGreaterThan(e.activations);
  });
});

describe('refusal', () => {
  const e: MemoryEstimate = { parameters: 2 ** 20, frozen: 2 ** 20, activations: 2 ** 22, largestTensor: 2 ** 21 };
  // 4 MiB · 4 (weights, gradients, Adam m and v) + 4 MiB frozen + 16 MiB activations = 36 MiB
  const roomy = { maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 30, memoryBytes: null };

  test('over ALMOSTREC_GPU_MEMORY_MB: names the estimate, its parts and the limit', () => {
    expect(estimatedBytes(e)).toBe(36 * 2 ** 20);
    const why = gpuMemoryRefusal('gru4rec run 3', e, { ...roomy, memoryBytes: 32 * 2 ** 20 });
    expect(why).toContain('gru4rec run 3 needs an estimated 36.0 MiB of GPU memory');
    expect(why).toContain('parameters 4.0 MiB, their gradients and Adam state 12.0 MiB, frozen tensors 4.0 MiB');
    expect(why).toContain('activations 16.0 MiB');
    expect(why).toContain('more than ALMOSTREC_GPU_MEMORY_MB allows (32.0 MiB)');
    expect(gpuMemoryRefusal('x', e, { ...roomy, memoryBytes: 36 * 2 ** 20 })).toBeNull();
  });

  test('a single tensor over the adapter\'s binding size is refused, naming the limit', () => {
    const why = gpuMemoryRefusal('sasrec run 1', e, { maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 4 * 2 ** 20, memoryBytes: null });
    expect(why).toMatch(/^sasrec run 1 needs a single tensor of an estimated 8\.0 MiB \(of 36\.0 MiB in all: .*\), more than the WebGPU adapter's maxStorageBufferBindingSize \(4\.0 MiB\)/);
    expect(gpuMemoryRefusal('x', e, { maxBufferSize: 2 ** 22, maxStorageBufferBindingSize: 2 ** 30, memoryBytes: null })).toContain('maxBufferSize (4.0 MiB)');
    expect(gpuMemoryRefusal('x', e, roomy)).toBeNull();
  });

  test('ALMOSTREC_GPU_MEMORY_MB is read in MiB and refused when not a positive number', () => {
    delete process.env.ALMOSTREC_GPU_MEMORY_MB;
    expect(gpuMemoryFromEnv()).toBeNull();
    process.env.ALMOSTREC_GPU_MEMORY_MB = '512';
    expect(gpuMemoryFromEnv()).toBe(512 * 2 ** 20);
    for (const bad of ['0', '-3', 'lots']) {
      process.env.ALMOSTREC_GPU_MEMORY_MB = bad;
      expect(() => gpuMemoryFromEnv()).toThrow(`ALMOSTREC_GPU_MEMORY_MB="${bad}" is not a positive number of MiB`);
    }
  });

  describe('on a CPU backend', () => {
    beforeAll(async () => {
      await initBackend('cpu');
    });
    test('nothing is estimated or refused', () => {
      process.env.ALMOSTREC_GPU_MEMORY_MB = '1';
      expect(() =>
        checkGpuMemory('x', () => {
          throw new Error('estimated on cpu');
        })
      ).not.toThrow();
    });
  });
});
