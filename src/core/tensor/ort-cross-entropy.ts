// The softmax cross-entropy over all items, forward and gradients in one onnxruntime call per chunk of rows.
// On the CPU backends (wasm, cpu) this is the largest cost of every model trained with a full softmax
// (SASRec, GRU4Rec, NextItNet, the backbone's LM head): tfjs-wasm multiplies the rows × items matrices at
// ~20–40 GFLOP/s on one core and its Exp is scalar, where onnxruntime's MLAS kernels use the CPU's native
// vector units (AVX2/AVX-512 GEMM, vectorised exp). Measured on [2297 × 64] rows against 3,651 items:
// ~26 ms per chunk on one thread for loss + both gradients, against ~180 ms for the tfjs-wasm op.
//
// The ONNX graph (built here with onnx-proto; opset 18):
//   logits = h · tableᵀ;  logp = LogSoftmax(logits);  loss = −Σᵢ wᵢ · logp[i, targetᵢ]
//   g = w ⊙ (exp(logp) − onehot(target));  dh = g · table;  dtable = gᵀ · h
// with wᵢ = 1/count for a real target and 0 for an ignored one, so the loss is the mean over real targets.
//
// Sessions are run synchronously through onnxruntime-node's native binding (its public run() is a Promise
// resolved on setImmediate, and tfjs's gradient tape cannot await). That binding is internal to the package,
// so the version is pinned in package.json; anything missing makes `ortCrossEntropy()` return null and the
// caller keeps the tfjs implementation.
import { createRequire } from 'node:module';
import { onnx } from 'onnx-proto';
import { scoringSession } from './onnx-graph';

const runtimeRequire = createRequire(import.meta.url);

export interface OrtTensor {
  data: Float32Array;
  dims: readonly number[];
}
export interface NativeSession {
  loadModel(buffer: ArrayBuffer, byteOffset: number, byteLength: number, options: object): void;
  run(feeds: Record<string, unknown>, fetches: Record<string, null>, options: object): Record<string, OrtTensor>;
}
export interface OrtModules {
  Session: new () => NativeSession;
  Tensor: new (type: string, data: Float32Array | BigInt64Array, dims: number[]) => unknown;
}

let modules: OrtModules | null | undefined;

/** onnxruntime-node's synchronous native session and its Tensor, or null where it does not load (also used by core/inference). */
export function loadOrt(): OrtModules | null {
  if (modules !== undefined) return modules;
  try {
    const { binding, initOrt } = runtimeRequire('onnxruntime-node/dist/binding.js') as { binding: { InferenceSession: new () => NativeSession }; initOrt(): void };
    const { Tensor } = runtimeRequire('onnxruntime-node') as { Tensor: OrtModules['Tensor'] };
    initOrt();
    modules = { Session: binding.InferenceSession, Tensor };
  } catch {
    modules = null;
  }
  return modules;
}

/** Whether onnxruntime-node's CPU build loads here. */
export function ortAvailable(): boolean {
  return loadOrt() !== null;
}

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;

function valueInfo(name: string, elemType: number, dims: (string | number)[]): onnx.IValueInfoProto {
  return { name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } } };
}

function node(opType: string, input: string[], output: string[], attrs: Record<string, number | string> = {}): onnx.INodeProto {
  const attribute = Object.entries(attrs).map(([name, v]) =>
    typeof v === 'string' ? { name, type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode(v) } : { name, type: onnx.AttributeProto.AttributeType.INT, i: v }
  );
  return { opType, input, output, attribute };
}

/** The serialized model (see the header comment). */
export function crossEntropyModel(): Uint8Array {
  const graph: onnx.IGraphProto = {
    name: 'tied_softmax_cross_entropy',
    input: [valueInfo('h', FLOAT, ['rows', 'dim']), valueInfo('table', FLOAT, ['items', 'dim']), valueInfo('target', INT64, ['rows', 1]), valueInfo('weight', FLOAT, ['rows', 1])],
    output: [valueInfo('loss', FLOAT, []), valueInfo('dh', FLOAT, ['rows', 'dim']), valueInfo('dtable', FLOAT, ['items', 'dim'])],
    node: [
      node('Gemm', ['h', 'table'], ['logits'], { transB: 1 }),
      node('LogSoftmax', ['logits'], ['logp'], { axis: 1 }),
      node('GatherElements', ['logp', 'target'], ['target_logp'], { axis: 1 }),
      node('Mul', ['target_logp', 'weight'], ['weighted'], {}),
      node('ReduceSum', ['weighted'], ['neg_loss'], { keepdims: 0 }),
      node('Neg', ['neg_loss'], ['loss']),
      node('Exp', ['logp'], ['p']),
      node('Mul', ['p', 'weight'], ['wp']),
      node('Neg', ['weight'], ['neg_weight']),
      node('ScatterElements', ['wp', 'target', 'neg_weight'], ['g'], { axis: 1, reduction: 'add' }),
      node('MatMul', ['g', 'table'], ['dh']),
      node('Gemm', ['g', 'h'], ['dtable'], { transA: 1 })
    ]
  };
  return onnx.ModelProto.encode({ irVersion: 8, producerName: 'almostrec-workbench', opsetImport: [{ domain: '', version: 18 }], graph }).finish();
}

/**
 * Intra-op threads of the session used next: set by initBackend to the compute threads (computeThreads),
 * and to 1 by the training loop while a data-parallel replica keeps the other core busy (train/replicas.ts).
 */
let threads = 1;
const sessions = new Map<number, NativeSession>();

export function setCrossEntropyThreads(n: number): void {
  threads = Math.max(1, Math.floor(n));
}

function session(ort: OrtModules): NativeSession {
  let s = sessions.get(threads);
  if (!s) {
    // No spinning (scoringSession): idle pool threads would otherwise busy-wait on the cores the tfjs kernels need.
    s = scoringSession(ort, crossEntropyModel(), threads);
    sessions.set(threads, s);
  }
  return s;
}

export interface CrossEntropyChunk {
  /** rows × dim, row-major. */
  h: Float32Array;
  rows: number;
  /** Class of each row (any valid index where the weight is 0). */
  targets: BigInt64Array;
  /** Per-row weight in the summed loss (1/count for a real target, 0 to ignore the row). */
  weights: Float32Array;
}

/** Runs one chunk; the table (items × dim) is shared by all chunks of a call. */
export type CrossEntropyRunner = (chunk: CrossEntropyChunk) => { loss: number; dh: Float32Array; dtable: Float32Array };

/** A runner over `table` when onnxruntime is usable here, else null. */
export function ortCrossEntropy(table: Float32Array, items: number, dim: number): CrossEntropyRunner | null {
  const ort = loadOrt();
  if (!ort) return null;
  let s: NativeSession;
  try {
    s = session(ort);
  } catch {
    return null;
  }
  const tableTensor = new ort.Tensor('float32', table, [items, dim]);
  const fetches = { loss: null, dh: null, dtable: null };
  return ({ h, rows, targets, weights }) => {
    const out = s.run(
      { h: new ort.Tensor('float32', h, [rows, dim]), table: tableTensor, target: new ort.Tensor('int64', targets, [rows, 1]), weight: new ort.Tensor('float32', weights, [rows, 1]) },
      fetches,
      {}
    );
    return { loss: out.loss.data[0], dh: out.dh.data, dtable: out.dtable.data };
  };
}
