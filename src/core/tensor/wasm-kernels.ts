// Kernels the wasm backend lacks. UnsortedSegmentSum is the gradient of gather (embedding lookups); without
// it the wasm backward pass fails, and the generic cpu kernel is far too slow for embedding tables.
// Hand-written because no library ships it for wasm: a single pass adding rows into the output on the heap.
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

let registered = false;

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

export function registerWasmKernels(): void {
  if (registered || tf.getKernel('UnsortedSegmentSum', 'wasm')) return;
  tf.registerKernel({ kernelName: 'UnsortedSegmentSum', backendName: 'wasm', kernelFunc: unsortedSegmentSum });
  registered = true;
}
