// NextItNet's scoring path as an ONNX graph run by onnxruntime-node (see sasrec-onnx.ts for why). It mirrors
// NextitnetModel.scoreBatch (models/nextitnet.ts): item_emb[ids] → residual blocks of two dilated causal
// convolutions, each followed by LayerNorm (eps 1e-8) and ReLU → the final dense at each history's last item
// → · item_embᵀ. Our convolution weight [k·C, Cout] (tap j multiplies x[t − (k−1−j)·d]) is ONNX Conv's
// [Cout, C, k] with (k−1)·d zeros padded in front, which reads the same x at tap j. Right-padded histories,
// as the tfjs path (causal: no real position sees padding). Parity ≤ 1e-4: test/integration/inference.test.ts.
import type { onnx } from 'onnx-proto';
import type { Scorer } from '../eval/evaluator';
import { LN_EPS, residualDilations, type NextitnetConfig } from '../models/nextitnet';
import { historyBatch } from '../models/seq/batches';
import { loadOrt } from '../tensor/ort-cross-entropy';
import { FLOAT, INT64, floatInit, int64Init, modelBytes, node, scoringSession, valueInfo } from '../tensor/onnx-graph';

export type NextitnetShape = Pick<NextitnetConfig, 'maxLen' | 'embeddingSize' | 'kernelSize' | 'numBlocks'> & { numItems: number };

/** [k·C, Cout] (tf.conv1d's filter flattened) as ONNX Conv's [Cout, C, k]. */
function convWeight(w: Float32Array, k: number, C: number, Cout: number): Float32Array {
  const out = new Float32Array(Cout * C * k);
  for (let o = 0; o < Cout; o++) for (let c = 0; c < C; c++) for (let j = 0; j < k; j++) out[(o * C + c) * k + j] = w[(j * C + c) * Cout + o];
  return out;
}

export function nextitnetScoringModel(shape: NextitnetShape, values: Map<string, Float32Array>): Uint8Array {
  const { embeddingSize: E, kernelSize: k } = shape;
  const n = shape.numItems + 1;
  const get = (name: string): Float32Array => {
    const v = values.get(name);
    if (!v) throw new Error(`NextItNet ONNX export: parameter "${name}" missing`);
    return v;
  };
  const table = get('item_emb');
  const tableT = new Float32Array(E * n);
  for (let i = 0; i < n; i++) for (let c = 0; c < E; c++) tableT[c * n + i] = table[i * E + c];
  const inits: onnx.ITensorProto[] = [floatInit('item_emb', [n, E], table), floatInit('item_emb_t', [E, n], tableT), int64Init('flat_shape', [-1, E])];
  inits.push(floatInit('final.w', [E, E], get('final.w')), floatInit('final.b', [E], get('final.b')));
  const nodes: onnx.INodeProto[] = [node('Gather', ['item_emb', 'ids'], ['x0'], { axis: 0 })];
  const convLnRelu = (x: string, block: number, c: 1 | 2, dilation: number): string => {
    const p = `block${block}.`;
    inits.push(floatInit(`${p}conv${c}.w`, [E, E, k], convWeight(get(`${p}conv${c}.w`), k, E, E)), floatInit(`${p}conv${c}.b`, [E], get(`${p}conv${c}.b`)));
    inits.push(floatInit(`${p}ln${c}.gamma`, [E], get(`${p}ln${c}.gamma`)), floatInit(`${p}ln${c}.beta`, [E], get(`${p}ln${c}.beta`)));
    const o = `${p}c${c}`;
    nodes.push(
      node('Transpose', [x], [`${o}.bcl`], { perm: [0, 2, 1] }),
      node('Conv', [`${o}.bcl`, `${p}conv${c}.w`, `${p}conv${c}.b`], [`${o}.conv`], { dilations: [dilation], kernel_shape: [k], pads: [(k - 1) * dilation, 0] }),
      node('Transpose', [`${o}.conv`], [`${o}.blc`], { perm: [0, 2, 1] }),
      node('LayerNormalization', [`${o}.blc`, `${p}ln${c}.gamma`, `${p}ln${c}.beta`], [`${o}.ln`], { axis: -1, epsilon: { float: LN_EPS } }),
      node('Relu', [`${o}.ln`], [`${o}.out`])
    );
    return `${o}.out`;
  };
  let x = 'x0';
  residualDilations(shape.numBlocks).forEach((d, i) => {
    const out2 = convLnRelu(convLnRelu(x, i, 1, d), i, 2, 2 * d);
    nodes.push(node('Add', [out2, x], [`block${i}.out`]));
    x = `block${i}.out`;
  });
  nodes.push(
    node('Reshape', [x, 'flat_shape'], ['flat']),
    node('Gather', ['flat', 'rows'], ['last'], { axis: 0 }),
    node('MatMul', ['last', 'final.w'], ['head.mm']),
    node('Add', ['head.mm', 'final.b'], ['head']),
    node('MatMul', ['head', 'item_emb_t'], ['scores'])
  );
  return modelBytes({
    name: 'nextitnet_scores',
    input: [valueInfo('ids', INT64, ['batch', 'len']), valueInfo('rows', INT64, ['batch'])],
    output: [valueInfo('scores', FLOAT, ['batch', n])],
    initializer: inits,
    node: nodes
  });
}

/** A NextItNet scorer on onnxruntime for these weights, or null where onnxruntime does not load. */
export function ortNextitnetScorer(shape: NextitnetShape, values: Map<string, Float32Array>, threads = 1): (Scorer & { dispose(): void }) | null {
  const ort = loadOrt();
  if (!ort) return null;
  const session = scoringSession(ort, nextitnetScoringModel(shape, values), threads);
  return {
    scoreBatch(histories: Int32Array[]): Float32Array {
      const { ids, lengths, batch, len } = historyBatch(histories, shape.maxLen, 'right');
      // Each history's last item: row b·len + length − 1 of the flattened block outputs (column 0 when empty, as tfjs).
      const rows = BigInt64Array.from(lengths, (l, b) => BigInt(b * len + Math.max(0, l - 1)));
      const out = session.run(
        { ids: new ort.Tensor('int64', BigInt64Array.from(ids, (v) => BigInt(v)), [batch, len]), rows: new ort.Tensor('int64', rows, [batch]) },
        { scores: null },
        {}
      );
      return out.scores.data;
    },
    dispose() {
      // The native session is freed with its last reference.
    }
  };
}
