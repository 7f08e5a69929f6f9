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

/** Marks our GatherV2 config with the stock one, so a second copy of this module never wraps our own kernel. */
const STOCK_CONFIG = Symbol.for('almostrec.wasm.stockGatherV2');
type MarkedConfig = tf.KernelConfig & { [STOCK_CONFIG]?: tf.KernelConfig };

let stockGatherV2: KernelFunc | null = null;

function gatherV2(args: { inputs: tf.NamedTensorInfoMap; backend: object; attrs?: tf.NamedAttrMap }): tf.TensorInfo | tf.TensorInfo[] {
  const { x, indices } = args.inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
  const { axis, batchDims } = args.attrs as { axis: number; batchDims: number };
  const fast =
    (x.dtype === 'float32' || x.dtype === 'int32') &&
    indices.dtype === 'int32' &&
    x.shape.length >= 1 &&
    (batchDims ?? 0) === 0 &&
    tf.util.parseAxisParam(axis, x.shape)[0] === 0;
  if (!fast) {
    if (!stockGatherV2) throw new Error('GatherV2: the stock wasm kernel was not found');
    return stockGatherV2(args);
  }
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

function registerGatherV2(): void {
  const current = tf.getKernel('GatherV2', 'wasm') as MarkedConfig | undefined;
  if (!current) return; // nothing to delegate to: leave tfjs alone
  const stock = current[STOCK_CONFIG] ?? current;
  stockGatherV2 = stock.kernelFunc as KernelFunc;
  const config: MarkedConfig = {
    kernelName: 'GatherV2',
    backendName: 'wasm',
    kernelFunc: gatherV2 as tf.KernelFunc,
    // Keep the stock setup/dispose so a re-created wasm backend still initialises the stock kernel we delegate to.
    setupFunc: stock.setupFunc,
    disposeFunc: stock.disposeFunc,
    [STOCK_CONFIG]: stock,
  };
  tf.unregisterKernel('GatherV2', 'wasm'); // avoids tfjs's "already registered" warning
  tf.registerKernel(config);
}

export function registerWasmKernels(): void {
  if (registered) return;
  registerGatherV2();
  if (!tf.getKernel('UnsortedSegmentSum', 'wasm')) {
    tf.registerKernel({ kernelName: 'UnsortedSegmentSum', backendName: 'wasm', kernelFunc: unsortedSegmentSum });
  }
  if (!tf.getKernel(PER_BATCH_MATMUL, 'wasm')) {
    tf.registerKernel({ kernelName: PER_BATCH_MATMUL, backendName: 'wasm', kernelFunc: perBatchMatMul });
  }
  registered = true;
}
