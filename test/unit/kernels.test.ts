// Every custom kernel and gradient is checked against tfjs's stock implementation on the cpu backend.
import { beforeAll, describe, expect, test } from 'vitest';
import { initBackend, tf } from '../../src/core/tensor/backend';
import { bmm, dense, embedding, gelu, layerNorm, tiedSoftmaxCrossEntropy } from '../../src/core/tensor/ops';
import { Rng } from '../../src/core/tensor/rng';

const rng = new Rng(7);
function rand(shape: number[], scale = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = rng.normal() * scale;
  return tf.tensor(v, shape);
}

/** max |a − b| relative to max(1, max |b|). */
function relErr(a: tf.Tensor, b: tf.Tensor): number {
  const x = a.dataSync();
  const y = b.dataSync();
  expect(x.length).toBe(y.length);
  let diff = 0;
  let mag = 1;
  for (let i = 0; i < x.length; i++) {
    diff = Math.max(diff, Math.abs(x[i] - y[i]));
    mag = Math.max(mag, Math.abs(y[i]));
  }
  return diff / mag;
}

function expectClose(a: tf.Tensor[], b: tf.Tensor[]): void {
  expect(a.length).toBe(b.length);
  a.forEach((t, i) => {
    expect(t.shape).toEqual(b[i].shape);
    expect(relErr(t, b[i])).toBeLessThanOrEqual(1e-4);
  });
}

beforeAll(async () => {
  await initBackend('wasm');
});

for (const backend of ['cpu', 'wasm']) {
  describe(`custom ops vs stock (${backend})`, () => {
    beforeAll(async () => {
      await tf.setBackend(backend);
    });

    test('dense forward and gradients match matMul + add', () => {
      const x = rand([3, 5, 8]);
      const w = rand([8, 6]);
      const b = rand([6]);
      const up = rand([3, 5, 6]);
      const f = (fn: typeof dense) => (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(fn(xx, ww, bb), up));
      const stock = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => tf.add(tf.reshape(tf.matMul(tf.reshape(xx, [15, 8]) as tf.Tensor2D, ww as tf.Tensor2D), [3, 5, 6]), bb);
      expectClose([dense(x, w, b)], [stock(x, w, b)]);
      expectClose(tf.grads(f(dense))([x, w, b]), tf.grads(f(stock))([x, w, b]));
    });

    test('bmm forward and gradients match batched matMul', () => {
      const a = rand([6, 7, 3]);
      const b = rand([6, 3, 5]);
      const up = rand([6, 7, 5]);
      const ours = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(bmm(x, y), up));
      const stock = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x as tf.Tensor3D, y as tf.Tensor3D), up));
      expectClose([bmm(a, b)], [tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D)]);
      expectClose(tf.grads(ours)([a, b]), tf.grads(stock)([a, b]));
    });

    test('embedding matches gather, padding row gets no gradient', () => {
      const table = rand([10, 4]);
      const ids = tf.tensor2d([[0, 3, 3], [9, 0, 1]], [2, 3], 'int32');
      const up = rand([2, 3, 4]);
      expectClose([embedding(table, ids)], [tf.gather(table, ids)]);
      const [gOurs] = tf.grads((t: tf.Tensor) => tf.sum(tf.mul(embedding(t, ids), up)))([table]);
      const [gStock] = tf.grads((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, ids), up)))([table]);
      expectClose([gOurs], [gStock]);
      const [gPad] = tf.grads((t: tf.Tensor) => tf.sum(tf.mul(embedding(t, ids, 0), up)))([table]);
      const padded = gStock.arraySync() as number[][];
      padded[0] = [0, 0, 0, 0];
      expectClose([gPad], [tf.tensor(padded)]);
      expect(Math.abs((gStock.arraySync() as number[][])[0][0])).toBeGreaterThan(0);
    });

    test('tied softmax cross-entropy matches logits + stock softmaxCrossEntropy, ignoring padding targets', () => {
      const h = rand([9, 6]);
      const table = rand([12, 6]);
      const targets = new Int32Array([3, 0, 11, 5, 5, 0, 1, 7, 2]);
      const keep = [...targets].map((t, i) => (t !== 0 ? i : -1)).filter((i) => i >= 0);
      const stock = (hh: tf.Tensor, tt: tf.Tensor) => {
        const logits = tf.matMul(hh as tf.Tensor2D, tt as tf.Tensor2D, false, true);
        const rows = tf.gather(logits, keep);
        const labels = tf.oneHot(keep.map((i) => targets[i]), 12);
        return tf.losses.softmaxCrossEntropy(labels, rows);
      };
      const ours = (hh: tf.Tensor, tt: tf.Tensor) => tiedSoftmaxCrossEntropy(hh as tf.Tensor2D, tt as tf.Tensor2D, targets);
      expectClose([ours(h, table)], [stock(h, table)]);
      expectClose(tf.grads(ours)([h, table]), tf.grads(stock)([h, table]));
    });

    test.each([true, false])('tied softmax cross-entropy is exact across chunks (keep probabilities: %s)', (keep) => {
      // 64-row chunks: 300 rows span five chunks, the last one partial.
      const h = rand([300, 8], 0.5);
      const table = rand([500, 8], 0.5);
      const targets = new Int32Array(300).map((_, i) => (i % 5 === 0 ? 0 : (i * 7919) % 500));
      const ours = (hh: tf.Tensor, tt: tf.Tensor) => tiedSoftmaxCrossEntropy(hh as tf.Tensor2D, tt as tf.Tensor2D, targets, 0, 64, keep);
      const mask = tf.tensor1d([...targets].map((t) => (t !== 0 ? 1 : 0)));
      const stock = (hh: tf.Tensor, tt: tf.Tensor) => {
        const logits = tf.matMul(hh as tf.Tensor2D, tt as tf.Tensor2D, false, true);
        const nll = tf.sub(tf.logSumExp(logits, 1), tf.sum(tf.mul(logits, tf.cast(tf.oneHot(tf.tensor1d(targets, 'int32'), 500), 'float32')), 1));
        return tf.div(tf.sum(tf.mul(nll, mask)), tf.sum(mask));
      };
      expectClose([ours(h, table)], [stock(h, table)]);
      expectClose(tf.grads(ours)([h, table]), tf.grads(stock)([h, table]));
    });

    test('layerNorm and gelu match their closed forms', () => {
      const x = rand([5, 8], 3);
      const g = rand([8]);
      const b = rand([8]);
      const xs = x.arraySync() as number[][];
      const expected = xs.map((row) => {
        const m = row.reduce((a, c) => a + c, 0) / row.length;
        const v = row.reduce((a, c) => a + (c - m) ** 2, 0) / row.length;
        const gs = g.arraySync() as number[];
        const bs = b.arraySync() as number[];
        return row.map((c, j) => ((c - m) / Math.sqrt(v + 1e-5)) * gs[j] + bs[j]);
      });
      expectClose([layerNorm(x, g, b)], [tf.tensor(expected)]);
      // GELU(x) = x·Φ(x); Φ(1) = 0.841344746, Φ(−2) = 0.022750132.
      expectClose([gelu(tf.tensor1d([1, -2, 0]))], [tf.tensor1d([0.841344746, -2 * 0.022750132, 0])]);
    });
  });
}

describe('wasm per-batch matmul kernel', () => {
  test('matches the cpu BatchMatMul on attention-sized operands, twice in a row (no stale operator cache)', async () => {
    for (let round = 0; round < 2; round++) {
      const a = rand([8, 20, 16]);
      const b = rand([8, 16, 20]);
      await tf.setBackend('cpu');
      const expected = tf.matMul(tf.tensor3d(a.dataSync(), [8, 20, 16]), tf.tensor3d(b.dataSync(), [8, 16, 20]));
      const expectedData = expected.dataSync().slice();
      await tf.setBackend('wasm');
      const got = bmm(tf.tensor(a.dataSync(), a.shape), tf.tensor(b.dataSync(), b.shape));
      expect(got.shape).toEqual([8, 20, 20]);
      expect(relErr(got, tf.tensor(expectedData, [8, 20, 20]))).toBeLessThanOrEqual(1e-5);
    }
  });
});

/** The same op on the cpu backend (stock kernels) and on wasm (ours where it applies), values copied over. */
async function cpuVsWasm(x: tf.Tensor, op: (t: tf.Tensor) => tf.Tensor): Promise<{ want: tf.Tensor; got: tf.Tensor }> {
  const data = x.dataSync().slice();
  await tf.setBackend('cpu');
  const expected = op(tf.tensor(data, x.shape, x.dtype));
  const want = { data: expected.dataSync().slice(), shape: expected.shape };
  await tf.setBackend('wasm');
  const got = op(tf.tensor(data, x.shape, x.dtype));
  return { want: tf.tensor(want.data, want.shape), got };
}

describe('wasm Transpose kernel (last two axes)', () => {
  test('replaces the stock kernel', () => {
    const config = tf.getKernel('Transpose', 'wasm') as tf.KernelConfig & Record<symbol, tf.KernelConfig | undefined>;
    expect(config[Symbol.for('almostrec.wasm.stockKernel')]?.kernelFunc).toBeDefined();
    expect(config[Symbol.for('almostrec.wasm.stockKernel')]?.kernelFunc).not.toBe(config.kernelFunc);
  });

  test.each<[string, number[], number[]]>([
    ['2-D, not a multiple of the tile', [67, 45], [1, 0]],
    ['2-D, one row', [1, 70], [1, 0]],
    ['3-D batch of matrices', [3, 33, 65], [0, 2, 1]],
    ['other permutations go to the stock kernel', [4, 5, 6], [2, 0, 1]],
    ['int32 goes to the stock kernel', [5, 7], [1, 0]]
  ])('%s matches the cpu kernel exactly', async (_name, shape, perm) => {
    const x = _name.startsWith('int32') ? tf.tensor(Int32Array.from({ length: 35 }, (_, i) => i * 3 - 7), shape, 'int32') : rand(shape);
    const { want, got } = await cpuVsWasm(x, (t) => tf.transpose(t, perm));
    expect(got.shape).toEqual(want.shape);
    expect(Array.from(got.dataSync())).toEqual(Array.from(want.dataSync()));
  });

  test('gradient of a matmul through our transpose matches the stock one', async () => {
    const a = rand([9, 40]);
    const b = rand([9, 7]);
    const f = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.square(tf.matMul(tf.transpose(x) as tf.Tensor2D, y as tf.Tensor2D)));
    const data = [a.dataSync().slice(), b.dataSync().slice()];
    await tf.setBackend('cpu');
    const want = tf.grads(f)([tf.tensor(data[0], [9, 40]), tf.tensor(data[1], [9, 7])]).map((g) => tf.tensor(g.dataSync().slice(), g.shape));
    await tf.setBackend('wasm');
    const got = tf.grads(f)([tf.tensor(data[0], [9, 40]), tf.tensor(data[1], [9, 7])]);
    await tf.setBackend('cpu');
    expectClose(got.map((g) => tf.tensor(g.dataSync().slice(), g.shape)), want);
  });
});

describe('wasm Sum kernel (leading axes)', () => {
  test('replaces the stock kernel', () => {
    const config = tf.getKernel('Sum', 'wasm') as tf.KernelConfig & Record<symbol, tf.KernelConfig | undefined>;
    expect(config[Symbol.for('almostrec.wasm.stockKernel')]?.kernelFunc).toBeDefined();
    expect(config[Symbol.for('almostrec.wasm.stockKernel')]?.kernelFunc).not.toBe(config.kernelFunc);
  });

  test.each<[string, number[], number | number[], boolean]>([
    ['bias gradient sum(dy, 0)', [300, 17], 0, false],
    ['two leading axes, keepDims', [4, 50, 9], [0, 1], true],
    ['negative axis list in any order', [4, 50, 9], [1, -3], false],
    ['the last axis goes to the stock kernel', [6, 11], 1, false],
    ['all axes go to the stock kernel', [6, 11], [0, 1], false]
  ])('%s matches the cpu kernel', async (_name, shape, axis, keepDims) => {
    const { want, got } = await cpuVsWasm(rand(shape), (t) => tf.sum(t, axis, keepDims));
    expect(got.shape).toEqual(want.shape);
    expect(relErr(got, want)).toBeLessThanOrEqual(1e-6);
  });
});

describe('wasm UnsortedSegmentSum kernel', () => {
  test('matches the cpu kernel, including out-of-range ids', async () => {
    const x = rand([50, 3, 2]);
    const ids = tf.tensor1d(Array.from({ length: 50 }, (_, i) => ((i * 37) % 13) - 1), 'int32');
    await tf.setBackend('cpu');
    const expected = tf.unsortedSegmentSum(x, ids, 12);
    const expectedData = expected.dataSync().slice();
    await tf.setBackend('wasm');
    const x2 = tf.tensor(x.dataSync(), x.shape);
    const ids2 = tf.tensor1d(ids.dataSync() as Int32Array, 'int32');
    const got = tf.unsortedSegmentSum(x2, ids2 as tf.Tensor1D, 12);
    expect(got.shape).toEqual([12, 3, 2]);
    expect(relErr(got, tf.tensor(expectedData, [12, 3, 2]))).toBeLessThanOrEqual(1e-6);
  });
});

describe('wasm GatherV2 kernel', () => {
  type Case = { x: tf.Tensor; ids: tf.Tensor; axis?: number; batchDims?: number };
  /** Runs `build` on `backend` from plain copies of the data, returning shape and raw bits of the result. */
  async function gatherOn(backend: string, c: Case): Promise<{ shape: number[]; bits: number[]; dtype: string }> {
    const xData = c.x.dataSync().slice();
    const idData = c.ids.dataSync().slice();
    await tf.setBackend(backend);
    const out = tf.tidy(() =>
      tf.gather(tf.tensor(xData, c.x.shape, c.x.dtype), tf.tensor(idData, c.ids.shape, 'int32'), c.axis ?? 0, c.batchDims ?? 0),
    );
    const data = out.dataSync();
    const bits = Array.from(new Int32Array(data.buffer, data.byteOffset, data.length));
    const result = { shape: out.shape, bits, dtype: out.dtype };
    out.dispose();
    return result;
  }
  const ints = (shape: number[], mod: number, mul = 7919) =>
    tf.tensor(Int32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => (i * mul + 3) % mod), shape, 'int32');

  test('replaces the stock kernel and keeps a reference to it', async () => {
    await tf.setBackend('wasm');
    const config = tf.getKernel('GatherV2', 'wasm') as tf.KernelConfig & Record<symbol, tf.KernelConfig | undefined>;
    const stock = config[Symbol.for('almostrec.wasm.stockKernel')];
    expect(stock).toBeDefined();
    expect(stock?.kernelFunc).not.toBe(config.kernelFunc);
    expect(config.setupFunc).toBe(stock?.setupFunc);
  });

  test.each<[string, () => Case]>([
    ['1-D indices into a 2-D table', () => ({ x: rand([300, 16]), ids: ints([257], 300) })],
    ['2-D indices (batch × sequence)', () => ({ x: rand([50, 8]), ids: ints([6, 9], 50) })],
    ['3-D indices into a 3-D table', () => ({ x: rand([12, 3, 2]), ids: ints([2, 3, 4], 12) })],
    ['1-D table (scalar rows)', () => ({ x: rand([40]), ids: ints([5, 7], 40) })],
    ['scalar index', () => ({ x: rand([9, 5]), ids: tf.scalar(4, 'int32') })],
    ['empty indices', () => ({ x: rand([9, 5]), ids: tf.tensor1d([], 'int32') })],
    ['int32 params', () => ({ x: ints([30, 4], 1_000_003, 104729), ids: ints([3, 11], 30) })],
    ['NaN, ±Infinity and −0 are copied bit for bit', () => ({ x: tf.tensor2d([[NaN, -0], [Infinity, -Infinity], [1.5, -2]]), ids: tf.tensor1d([2, 0, 1, 0], 'int32') })],
    ['negative axis that means 0', () => ({ x: rand([20, 6]), ids: ints([9], 20), axis: -2 })],
    ['axis 1 (stock fallback)', () => ({ x: rand([7, 20, 3]), ids: ints([4, 5], 20), axis: 1 })],
    ['axis −1 on int32 params (stock fallback)', () => ({ x: ints([5, 6], 977), ids: ints([8], 6), axis: -1 })],
  ])('matches the cpu kernel exactly: %s', async (_name, make) => {
    await tf.setBackend('wasm');
    const c = make();
    const expected = await gatherOn('cpu', c);
    const got = await gatherOn('wasm', c);
    expect(got.shape).toEqual(expected.shape);
    expect(got.dtype).toBe(expected.dtype);
    expect(got.bits).toEqual(expected.bits);
  });

  test('batchDims 1 goes to the stock kernel unchanged', async () => {
    // Not compared with cpu: the stock wasm kernel is wrong for batchDims > 0 in tfjs 4.22
    // (tensorflow/tfjs#8658); we only promise to delegate.
    await tf.setBackend('wasm');
    const x = rand([4, 10, 3]);
    const ids = ints([4, 6], 10);
    const config = tf.getKernel('GatherV2', 'wasm') as tf.KernelConfig & Record<symbol, tf.KernelConfig | undefined>;
    const stock = config[Symbol.for('almostrec.wasm.stockKernel')] as tf.KernelConfig;
    const info = stock.kernelFunc({ inputs: { x, indices: ids }, backend: tf.backend(), attrs: { axis: 1, batchDims: 1 } }) as tf.TensorInfo;
    const direct = tf.engine().makeTensorFromTensorInfo(info);
    const viaOp = tf.gather(x, ids, 1, 1);
    expect(viaOp.shape).toEqual(direct.shape);
    expect(Array.from(viaOp.dataSync())).toEqual(Array.from(direct.dataSync()));
    tf.dispose([direct, viaOp]);
  });

  test('an out-of-range index throws the stock message and leaks nothing', async () => {
    await tf.setBackend('wasm');
    const x = rand([10, 4]);
    for (const bad of [10, -1]) {
      const ids = tf.tensor2d([[0, 3], [bad, 1]], [2, 2], 'int32');
      const before = tf.memory().numTensors;
      expect(() => tf.gather(x, ids)).toThrow(`GatherV2: the index value ${bad} is not in [0, 9]`);
      expect(tf.memory().numTensors).toBe(before);
    }
  });

  test('copies rows of tensors that live above 2 GiB in the heap (no signed offset arithmetic)', () => {
    // A stand-in for the wasm backend whose heap is a 2 GiB + 64 KiB buffer (zero pages are mapped lazily, so
    // this costs almost no memory) with every tensor placed past 2^31: training runs reach such heaps.
    const heap = new ArrayBuffer(2 ** 31 + 2 ** 16);
    const offsets = new Map<object, { id: number; memoryOffset: number }>();
    let next = 2 ** 31;
    const place = (shape: number[], dtype: tf.DataType): tf.TensorInfo => {
      const dataId = {};
      offsets.set(dataId, { id: 0, memoryOffset: next });
      next += Math.ceil((tf.util.sizeFromShape(shape) * 4) / 16) * 16;
      return { dataId, shape, dtype };
    };
    const view = (t: tf.TensorInfo) => new Int32Array(heap, offsets.get(t.dataId)!.memoryOffset, tf.util.sizeFromShape(t.shape));
    const fake = {
      wasm: { HEAPU8: new Uint8Array(heap) },
      dataIdMap: { get: (id: object) => offsets.get(id)! },
      makeOutput: place,
      typedArrayFromHeap: view,
    };
    const x = place([6, 3], 'int32');
    view(x).set(Int32Array.from({ length: 18 }, (_, i) => 100 + i));
    const indices = place([4], 'int32');
    view(indices).set([5, 0, 2, 5]);
    const kernel = tf.getKernel('GatherV2', 'wasm').kernelFunc;
    const out = kernel({ inputs: { x, indices }, backend: fake, attrs: { axis: 0, batchDims: 0 } }) as tf.TensorInfo;
    expect(out.shape).toEqual([4, 3]);
    expect(Array.from(view(out))).toEqual([115, 116, 117, 100, 101, 102, 106, 107, 108, 115, 116, 117]);
  });

  test.each([0, 1])('gradients through tf.gather (axis %i) match the cpu backend', async (axis) => {
    await tf.setBackend('wasm');
    const x = rand([11, 6, 2]);
    const ids = tf.tensor2d([[0, 3, 3, 5], [5, 1, 0, axis === 0 ? 10 : 4]], [2, 4], 'int32');
    const upShape = axis === 0 ? [2, 4, 6, 2] : [11, 2, 4, 2];
    const up = rand(upShape);
    const raw = [x.dataSync().slice(), ids.dataSync().slice(), up.dataSync().slice()] as const;
    const gradOn = async (backend: string) => {
      await tf.setBackend(backend);
      const [xx, ii, uu] = [tf.tensor(raw[0], x.shape), tf.tensor(raw[1], ids.shape, 'int32'), tf.tensor(raw[2], upShape)];
      const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, ii, axis), uu)))(xx);
      return { shape: g.shape, data: g.dataSync().slice() };
    };
    const expected = await gradOn('cpu');
    const got = await gradOn('wasm');
    expect(got.shape).toEqual(expected.shape);
    expect(relErr(tf.tensor(got.data, got.shape), tf.tensor(expected.data, expected.shape))).toBeLessThanOrEqual(1e-6);
  });
});
