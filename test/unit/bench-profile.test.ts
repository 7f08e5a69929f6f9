import { describe, expect, it } from 'vitest';
import { aggregateKernels, formatProfile, type KernelSample } from '../../src/cli/bench-profile';

// As tf.profile lists them: a customGrad op's kernels first, then its wrapper entry (named after the scope).
const SAMPLES: KernelSample[] = [
  { name: 'BatchMatMul', inputShapes: [[2, 3, 4], [2, 4, 5]], ms: 6 },
  { name: 'Add', inputShapes: [[2, 3, 5], [5]], ms: 1 },
  { name: 'forward', inputShapes: [[2, 3, 4], [2, 4, 5], [5]], ms: 7.5 },
  { name: 'BatchMatMul', inputShapes: [[2, 3, 4], [2, 4, 5]], ms: 6 },
  { name: 'BatchMatMul', inputShapes: [[8, 8], [8, 8]], ms: 2 },
  { name: 'Reshape', inputShapes: [[6, 5], null], ms: 1 }
];
const isWrapper = (name: string) => !['BatchMatMul', 'Add', 'Reshape'].includes(name);

describe('aggregateKernels', () => {
  it('leaves customGrad wrappers out of the totals and sorts by time', () => {
    const s = aggregateKernels(SAMPLES, isWrapper);
    expect(s.totalMs).toBe(16);
    expect(s.wrappers).toEqual({ calls: 1, ms: 7.5 });
    expect(s.byName).toEqual([
      { key: 'BatchMatMul', ms: 14, calls: 3, share: 14 / 16 },
      { key: 'Add', ms: 1, calls: 1, share: 1 / 16 },
      { key: 'Reshape', ms: 1, calls: 1, share: 1 / 16 }
    ]);
    expect(s.byShape.map((r) => [r.key, r.ms, r.calls])).toEqual([
      ['BatchMatMul [[2,3,4],[2,4,5]]', 12, 2],
      ['BatchMatMul [[8,8],[8,8]]', 2, 1],
      ['Add [[2,3,5],[5]]', 1, 1],
      ['Reshape [[6,5],null]', 1, 1]
    ]);
  });

  it('formats per-step figures and cuts the tables', () => {
    const text = formatProfile('sasrec (wasm)', aggregateKernels(SAMPLES, isWrapper), { steps: 2, wallMs: 20, warmupMs: 30 }, 2, 1);
    expect(text).toContain('wall 10.0 ms/step, kernels 8.0 ms/step (80.0% of wall)');
    expect(text).toContain('1 calls, 7.5 ms');
    expect(text).toContain('by kernel (top 2 of 3):');
    expect(text).toContain('by kernel and input shapes (top 1 of 4):');
    expect(text).toMatch(/14\.0\s+87\.5%\s+3 {2}BatchMatMul\n/);
    expect(text).not.toContain('Reshape');
  });
});
