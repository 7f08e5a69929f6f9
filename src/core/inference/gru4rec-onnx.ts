// GRU4Rec's scoring path as an ONNX graph run by onnxruntime-node (see sasrec-onnx.ts for why). It mirrors
// Gru4recModel.scoreBatch (models/gru4rec.ts): item_emb[ids] → bias-free GRU layers → dense → · item_embᵀ.
// Our GRU is PyTorch's (gates r, z, n; n = tanh(x·W_n + r ⊙ (h·R_n))), which is ONNX's GRU with
// linear_before_reset = 1 and its gates reordered to z, r, h. Histories are right-padded with their lengths
// as sequence_lens, so Y_h is each history's state after its last item — the same as the tfjs path, whose
// left padding keeps the state at zero until the first item. Parity ≤ 1e-4: test/integration/inference.test.ts.
import { onnx } from 'onnx-proto';
import type { Scorer } from '../eval/evaluator';
import type { Gru4recConfig } from '../models/gru4rec';
import { historyBatch } from '../models/seq/batches';
import { loadOrt } from '../tensor/ort-cross-entropy';
import { FLOAT, INT64, floatInit, modelBytes, node, scoringSession, valueInfo } from '../tensor/onnx-graph';

const INT32 = onnx.TensorProto.DataType.INT32;

/** Our [in, 3H] (gates r, z, n, x·W layout) as ONNX's [1, 3H, in] (gates z, r, h, W·x layout). */
function onnxGates(w: Float32Array, inDim: number, H: number): Float32Array {
  const out = new Float32Array(3 * H * inDim);
  const ours = [1, 0, 2]; // ONNX gate g reads our gate ours[g]
  for (let g = 0; g < 3; g++) {
    for (let j = 0; j < H; j++) for (let i = 0; i < inDim; i++) out[(g * H + j) * inDim + i] = w[i * 3 * H + ours[g] * H + j];
  }
  return out;
}

export type Gru4recShape = Pick<Gru4recConfig, 'maxLen' | 'embeddingSize' | 'hiddenSize' | 'numLayers'> & { numItems: number };

export function gru4recScoringModel(shape: Gru4recShape, values: Map<string, Float32Array>): Uint8Array {
  const { embeddingSize: E, hiddenSize: H, numLayers } = shape;
  const n = shape.numItems + 1;
  const get = (name: string): Float32Array => {
    const v = values.get(name);
    if (!v) throw new Error(`GRU4Rec ONNX export: parameter "${name}" missing`);
    return v;
  };
  const table = get('item_emb');
  const tableT = new Float32Array(E * n);
  for (let i = 0; i < n; i++) for (let c = 0; c < E; c++) tableT[c * n + i] = table[i * E + c];
  const inits: onnx.ITensorProto[] = [floatInit('item_emb', [n, E], table), floatInit('item_emb_t', [E, n], tableT)];
  inits.push(floatInit('dense.w', [H, E], get('dense.w')), floatInit('dense.b', [E], get('dense.b')));
  const nodes: onnx.INodeProto[] = [node('Gather', ['item_emb', 'ids'], ['emb'], { axis: 0 }), node('Transpose', ['emb'], ['x0'], { perm: [1, 0, 2] })];
  let x = 'x0';
  for (let l = 0; l < numLayers; l++) {
    const inDim = l === 0 ? E : H;
    inits.push(floatInit(`W${l}`, [1, 3 * H, inDim], onnxGates(get(`gru${l}.w_ih`), inDim, H)), floatInit(`R${l}`, [1, 3 * H, H], onnxGates(get(`gru${l}.w_hh`), H, H)));
    nodes.push(node('GRU', [x, `W${l}`, `R${l}`, '', 'lens'], [`Y${l}`, `Yh${l}`], { hidden_size: H, linear_before_reset: 1 }));
    // Y is [L, 1, B, H]; the next layer reads [L, B, H].
    inits.push({ name: `axis1_${l}`, dims: [1], dataType: INT64, int64Data: [1] });
    nodes.push(node('Squeeze', [`Y${l}`, `axis1_${l}`], [`x${l + 1}`]));
    x = `x${l + 1}`;
  }
  inits.push({ name: 'axis0', dims: [1], dataType: INT64, int64Data: [0] });
  nodes.push(
    node('Squeeze', [`Yh${numLayers - 1}`, 'axis0'], ['last']),
    node('MatMul', ['last', 'dense.w'], ['out.mm']),
    node('Add', ['out.mm', 'dense.b'], ['out']),
    node('MatMul', ['out', 'item_emb_t'], ['scores'])
  );
  return modelBytes({
    name: 'gru4rec_scores',
    input: [valueInfo('ids', INT64, ['batch', 'len']), valueInfo('lens', INT32, ['batch'])],
    output: [valueInfo('scores', FLOAT, ['batch', n])],
    initializer: inits,
    node: nodes
  });
}

/** A GRU4Rec scorer on onnxruntime for these weights, or null where onnxruntime does not load. */
export function ortGru4recScorer(shape: Gru4recShape, values: Map<string, Float32Array>, threads = 1): (Scorer & { dispose(): void }) | null {
  const ort = loadOrt();
  if (!ort) return null;
  const session = scoringSession(ort, gru4recScoringModel(shape, values), threads);
  return {
    scoreBatch(histories: Int32Array[]): Float32Array {
      if (histories.some((h) => h.length === 0)) throw new Error('GRU4Rec ONNX: an empty history has no last state');
      const { ids, lengths, batch, len } = historyBatch(histories, shape.maxLen, 'right');
      const out = session.run(
        { ids: new ort.Tensor('int64', BigInt64Array.from(ids, (v) => BigInt(v)), [batch, len]), lens: new ort.Tensor('int32', lengths as unknown as Float32Array, [batch]) },
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
