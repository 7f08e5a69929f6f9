// Kernels the wasm backend lacks or runs slowly, hand-written because no library ships them for wasm:
// - UnsortedSegmentSum, the gradient of gather (embedding lookups): missing in wasm, and the generic cpu
//   kernel is far too slow for embedding tables. A single pass adding rows into the output on the heap.
// - PerBatchMatMul: wasm's BatchMatMul is ~10x slower for batch > 1 (e.g. attention, [128,200,64] ×
//   [128,64,200]) than for one matrix, which goes through XNNPACK. This kernel runs the stock kernel once per
//   batch entry on views of the operands' heap memory (no copies).
// - GatherV2 (embedding lookups): the stock wasm kernel is ~60x slower than copying rows on the heap. The
//   common case (axis 0, batchDims 0, float32/int32 params, int32 indices) copies whole rows with
//   copyWithin on one Int32Array view of the heap (a byte copy, so bit-identical, NaN payloads included);
//   everything else goes to the stock kernel, saved before we override it. Its gradient (registered per
//   kernel name, not per backend) is unchanged.
// - Transpose of the last two axes (float32; 2-D, or [B, m, n] with perm [0, 2, 1]): the stock kernel takes
//   ~8 ns per element; a tiled copy on the heap ~1 ns. Every matmul gradient transposes an operand.
// - Sum over the leading axes (float32, keeping the last ones, e.g. a bias gradient sum(dy, 0)): the stock
//   kernel transposes first (~8 ns per element); this adds rows into float64 accumulators in one pass.
// Overrides keep the stock kernel for every other case (same pattern as GatherV2).
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

export const PER_BATCH_MATMUL = 'AlmostrecPerBatchMatMul';

let registered = false;

/** The parts of BackendWasm's (pinned 4.22) internals this file relies on. */
interface WasmInternals {
  dataIdMap: { get(id: object): { id: number; memoryOffset: number } };
  dataIdNextNumber: number;
  wasm: {
    cwrap(name: string, ret: null, args: string[]): (...args: unknown[]) => void;
    tfjs: { registerTensor(id: number, size: number, offset: number): void; disposeData(id: number): void };
  };
}

let wasmBatchMatMul: ((...args: unknown[]) => void) | null = null;

function perBatchMatMul(args: { inputs: tf.NamedTensorInfoMap; backend: object }): tf.TensorInfo {
  const backend = args.backend as unknown as BackendWasm;
  const internals = args.backend as unknown as WasmInternals;
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  if (a.dtype !== 'float32' || b.dtype !== 'float32') throw new Error(`${PER_BATCH_MATMUL}: float32 only`);
  const [batch, m, k] = a.shape;
  const [batchB, kB, n] = b.shape;
  if (a.shape.length !== 3 || b.shape.length !== 3 || batch !== batchB || k !== kB) {
    throw new Error(`${PER_BATCH_MATMUL}: incompatible shapes [${a.shape}] × [${b.shape}]`);
  }
  wasmBatchMatMul ??= internals.wasm.cwrap('BatchMatMul', null, ['number', 'array', 'number', 'number', 'array', 'number', 'number', 'number', 'number']);
  const out = backend.makeOutput([batch, m, n], 'float32');
  const offA = internals.dataIdMap.get(a.dataId).memoryOffset;
  const offB = internals.dataIdMap.get(b.dataId).memoryOffset;
  const offO = internals.dataIdMap.get(out.dataId).memoryOffset;
  const shapeA = new Uint8Array(new Int32Array([1, m, k]).buffer);
  const shapeB = new Uint8Array(new Int32Array([1, k, n]).buffer);
  const tfjs = internals.wasm.tfjs;
  for (let i = 0; i < batch; i++) {
    // Register views (ids only; memory stays owned by the parent tensors) and unregister them right after,
    // which also evicts XNNPACK's operator cache keyed by the operand id.
    const idA = internals.dataIdNextNumber++;
    const idB = internals.dataIdNextNumber++;
    const idO = internals.dataIdNextNumber++;
    tfjs.registerTensor(idA, m * k, offA + i * m * k * 4);
    tfjs.registerTensor(idB, k * n, offB + i * k * n * 4);
    tfjs.registerTensor(idO, m * n, offO + i * m * n * 4);
    try {
      wasmBatchMatMul(idA, shapeA, 3, idB, shapeB, 3, false, false, idO);
    } finally {
      tfjs.disposeData(idA);
      tfjs.disposeData(idB);
      tfjs.disposeData(idO);
    }
  }
  return out;
}

function unsortedSegmentSum(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: object;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const backend = args.backend as unknown as BackendWasm;
  const { x, segmentIds } = args.inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
  const numSegments = (args.attrs as { numSegments: number }).numSegments;
  const idsSize = tf.util.sizeFromShape(segmentIds.shape);
  const inner = idsSize === 0 ? 0 : tf.util.sizeFromShape(x.shape) / idsSize;
  const outShape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
  const out = backend.makeOutput(outShape, x.dtype);
  const dst = backend.typedArrayFromHeap(out);
  dst.fill(0);
  const src = backend.typedArrayFromHeap(x);
  const ids = backend.typedArrayFromHeap(segmentIds);
  for (let i = 0; i < idsSize; i++) {
    const seg = ids[i];
    // Out-of-range ids are dropped, as in TensorFlow's UnsortedSegmentSum.
    if (seg < 0 || seg >= numSegments) continue;
    const s = i * inner;
    const d = seg * inner;
    for (let j = 0; j < inner; j++) dst[d + j] += src[s + j];
  }
  return out;
}

type KernelFunc = (args: { inputs: tf.NamedTensorInfoMap; backend: object; attrs?: tf.NamedAttrMap }) => tf.TensorInfo | tf.TensorInfo[];

/** Marks our override configs with the stock one, so a second copy of this module never wraps our own kernel. */
const STOCK_CONFIG = Symbol.for('almostrec.wasm.stockKernel');
type MarkedConfig = tf.KernelConfig & { [STOCK_CONFIG]?: tf.KernelConfig };
type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: object; attrs?: tf.NamedAttrMap };

const stockKernels = new Map<string, KernelFunc>();

function stock(name: string, args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const fn = stockKernels.get(name);
  if (!fn) throw new Error(`${name}: the stock wasm kernel was not found`);
  return fn(args);
}

function gatherV2(args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const { x, indices } = args.inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
  const { axis, batchDims } = args.attrs as { axis: number; batchDims: number };
  const fast =
    (x.dtype === 'float32' || x.dtype === 'int32') &&
    indices.dtype === 'int32' &&
    x.shape.length >= 1 &&
    (batchDims ?? 0) === 0 &&
    tf.util.parseAxisParam(axis, x.shape)[0] === 0;
  if (!fast) return stock('GatherV2', args);
  const backend = args.backend as unknown as BackendWasm;
  const internals = args.backend as unknown as WasmInternals & { wasm: { HEAPU8: Uint8Array } };
  const rows = x.shape[0];
  const inner = tf.util.sizeFromShape(x.shape.slice(1));
  const count = tf.util.sizeFromShape(indices.shape);
  // Check every index before allocating the output, with the stock kernel's message.
  const ids = backend.typedArrayFromHeap(indices) as Int32Array;
  for (let i = 0; i < count; i++) {
    const index = ids[i];
    if (index < 0 || index >= rows) throw new Error(`GatherV2: the index value ${index} is not in [0, ${rows - 1}]`);
  }
  const out = backend.makeOutput([...indices.shape, ...x.shape.slice(1)], x.dtype);
  if (count === 0 || inner === 0) return out;
  // The heap view is taken after makeOutput, which may grow (and so replace) the heap's buffer. Offsets are
  // divided, not shifted: the heap outgrows 2 GiB in real training, and `>> 2` would turn them negative.
  const heap = new Int32Array(internals.wasm.HEAPU8.buffer);
  const src = internals.dataIdMap.get(x.dataId).memoryOffset / 4;
  const dst = internals.dataIdMap.get(out.dataId).memoryOffset / 4;
  const at = internals.dataIdMap.get(indices.dataId).memoryOffset / 4;
  if (inner === 1) {
    for (let i = 0; i < count; i++) heap[dst + i] = heap[src + heap[at + i]];
  } else {
    for (let i = 0; i < count; i++) {
      const s = src + heap[at + i] * inner;
      heap.copyWithin(dst + i * inner, s, s + inner);
    }
  }
  return out;
}

/**
 * Rows per block of the transpose: each output row gets 8 consecutive values per pass, reading 8 input rows
 * that stay in cache (measured ~1–1.5 ns per element for shapes from 25600 × 64 to 2297 × 3651).
 */
const BLOCK_ROWS = 8;

function transpose(args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const { x } = args.inputs as { x: tf.TensorInfo };
  const perm = (args.attrs as { perm: number[] }).perm;
  const rank = x.shape.length;
  const swapsLast2 = (rank === 2 && perm[0] === 1 && perm[1] === 0) || (rank === 3 && perm[0] === 0 && perm[1] === 2 && perm[2] === 1);
  if (x.dtype !== 'float32' || !swapsLast2) return stock('Transpose', args);
  const backend = args.backend as unknown as BackendWasm;
  const [batch, m, n] = rank === 2 ? [1, x.shape[0], x.shape[1]] : (x.shape as [number, number, number]);
  const out = backend.makeOutput(perm.map((p) => x.shape[p]), 'float32');
  // Views after makeOutput (it may grow the heap). Output[b, j, i] = input[b, i, j].
  const src = backend.typedArrayFromHeap(x) as Float32Array;
  const dst = backend.typedArrayFromHeap(out) as Float32Array;
  for (let b = 0; b < batch; b++) {
    const base = b * m * n;
    for (let i0 = 0; i0 < m; i0 += BLOCK_ROWS) {
      const i1 = Math.min(m, i0 + BLOCK_ROWS);
      for (let j = 0; j < n; j++) {
        let o = base + j * m + i0;
        for (let i = i0; i < i1; i++) dst[o++] = src[base + i * n + j];
      }
    }
  }
  return out;
}

function sumLeading(args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const { x } = args.inputs as { x: tf.TensorInfo };
  const { axis, keepDims } = args.attrs as { axis: number | number[]; keepDims: boolean };
  const axes = tf.util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
  const leading = axes.length > 0 && axes.length < x.shape.length && axes.every((a, i) => a === i);
  if (x.dtype !== 'float32' || !leading) return stock('Sum', args);
  const backend = args.backend as unknown as BackendWasm;
  const kept = x.shape.slice(axes.length);
  const cols = tf.util.sizeFromShape(kept);
  const rows = cols === 0 ? 0 : tf.util.sizeFromShape(x.shape) / cols;
  const out = backend.makeOutput(keepDims ? [...axes.map(() => 1), ...kept] : kept, 'float32');
  const src = backend.typedArrayFromHeap(x) as Float32Array;
  const acc = new Float64Array(cols);
  for (let r = 0, o = 0; r < rows; r++, o += cols) for (let c = 0; c < cols; c++) acc[c] += src[o + c];
  (backend.typedArrayFromHeap(out) as Float32Array).set(acc);
  return out;
}

/** Replace the wasm kernel `name` by `fn`, which delegates the cases it does not handle to the stock one. */
function registerOverride(name: string, fn: KernelFunc): void {
  const current = tf.getKernel(name, 'wasm') as MarkedConfig | undefined;
  if (!current) return; // nothing to delegate to: leave tfjs alone
  const stockConfig = current[STOCK_CONFIG] ?? current;
  stockKernels.set(name, stockConfig.kernelFunc as KernelFunc);
  const config: MarkedConfig = {
    kernelName: name,
    backendName: 'wasm',
    kernelFunc: fn as tf.KernelFunc,
    // Keep the stock setup/dispose so a re-created wasm backend still initialises the stock kernel we delegate to.
    setupFunc: stockConfig.setupFunc,
    disposeFunc: stockConfig.disposeFunc,
    [STOCK_CONFIG]: stockConfig
  };
  tf.unregisterKernel(name, 'wasm'); // avoids tfjs's "already registered" warning
  tf.registerKernel(config);
}

export function registerWasmKernels(): void {
  if (registered) return;
  registerOverride('GatherV2', gatherV2);
  registerOverride('Transpose', transpose);
  registerOverride('Sum', sumLeading);
  if (!tf.getKernel('UnsortedSegmentSum', 'wasm')) {
    tf.registerKernel({ kernelName: 'UnsortedSegmentSum', backendName: 'wasm', kernelFunc: unsortedSegmentSum });
  }
  if (!tf.getKernel(PER_BATCH_MATMUL, 'wasm')) {
    tf.registerKernel({ kernelName: PER_BATCH_MATMUL, backendName: 'wasm', kernelFunc: perBatchMatMul });
  }
  registered = true;
}
