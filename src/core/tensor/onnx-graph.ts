// Small builders for the ONNX graphs built in code (onnx-proto): core/inference's scoring graphs and
// vision's MobileNetV2. Here in tensor/ so both can use them without vision/ importing inference/. The
// session is single-threaded by default: one user's scoring is small, and the app's other work keeps the cores.
import { onnx } from 'onnx-proto';
import type { NativeSession, OrtModules } from './ort-cross-entropy';

export const FLOAT = onnx.TensorProto.DataType.FLOAT;
export const INT64 = onnx.TensorProto.DataType.INT64;
const { INT, INTS, FLOAT: FLOAT_ATTR } = onnx.AttributeProto.AttributeType;

type Attr = number | number[] | { float: number };

export function node(opType: string, input: string[], output: string[], attrs: Record<string, Attr> = {}): onnx.INodeProto {
  const attribute = Object.entries(attrs).map(([name, v]): onnx.IAttributeProto =>
    Array.isArray(v) ? { name, type: INTS, ints: v } : typeof v === 'number' ? { name, type: INT, i: v } : { name, type: FLOAT_ATTR, f: v.float }
  );
  return { opType, input, output, attribute };
}

export function valueInfo(name: string, elemType: number, dims: (string | number)[]): onnx.IValueInfoProto {
  return { name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } } };
}

export const floatInit = (name: string, dims: number[], data: Float32Array): onnx.ITensorProto => ({
  name,
  dims,
  dataType: FLOAT,
  rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
});
export const int64Init = (name: string, values: number[]): onnx.ITensorProto => ({ name, dims: [values.length], dataType: INT64, int64Data: values });

/** The serialized model of `graph` (opset 18). */
export function modelBytes(graph: onnx.IGraphProto): Uint8Array {
  return onnx.ModelProto.encode({ irVersion: 8, producerName: 'almostrec-workbench', opsetImport: [{ domain: '', version: 18 }], graph }).finish();
}

/** A native session on `bytes`, run synchronously (see ort-cross-entropy.ts). */
export function scoringSession(ort: OrtModules, bytes: Uint8Array, threads = 1): NativeSession {
  const session = new ort.Session();
  session.loadModel(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // No spinning: an idle pool thread would busy-wait on a core the rest of the app needs.
    extra: { session: { intra_op: { allow_spinning: '0' } } }
  });
  return session;
}
