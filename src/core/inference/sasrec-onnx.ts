// SASRec's scoring path (eval mode: no dropout) as an ONNX graph run by onnxruntime-node, for live
// inference: one user's scores in one native call, where tfjs-wasm dispatches ~15 kernels per block, each
// with its own overhead. The graph is built here with onnx-proto from the trained weights (initializers)
// and mirrors sasrecEncoder (models/sasrec.ts) op for op:
//   h = LN(item_emb[ids] + pos);  per block: h = LN(h + MHA(h, bias));  h = LN(h + W2·GELU(W1·h + b1) + b2)
//   scores = h[:, last] · item_embᵀ
// The causal/padding bias and the position rows are computed in JS (attentionBias, the last L rows of
// pos_emb) and fed as inputs, so one graph serves every history length. Parity with tfjs: ≤ 1e-4
// (test/integration/inference.test.ts).
import { onnx } from 'onnx-proto';
import type { Scorer } from '../eval/evaluator';
import { attentionBias, padLeftInto, type SasrecShape } from '../models/sasrec';
import { loadOrt } from '../tensor/ort-cross-entropy';
import { FLOAT, INT64, floatInit, int64Init, modelBytes, node, scoringSession, valueInfo } from '../tensor/onnx-graph';

/** The serialized scoring graph for `shape` with `values` (SASRec's parameters by name) as initializers. */
export function sasrecScoringModel(shape: SasrecShape, values: Map<string, Float32Array>): Uint8Array {
  const d = shape.hiddenSize;
  const H = shape.numHeads;
  const dh = d / H;
  const n = shape.numItems + 1;
  const get = (name: string): Float32Array => {
    const v = values.get(name);
    if (!v) throw new Error(`SASRec ONNX export: parameter "${name}" missing`);
    return v;
  };
  const inits: onnx.ITensorProto[] = [];
  const nodes: onnx.INodeProto[] = [];
  const vec = (name: string) => inits.push(floatInit(name, [d], get(name)));
  const mat = (name: string) => inits.push(floatInit(name, [d, d], get(name)));
  inits.push(floatInit('item_emb', [n, d], get('item_emb')));
  // The output projection needs item_embᵀ; transposed once here rather than per call.
  const table = get('item_emb');
  const tableT = new Float32Array(d * n);
  for (let i = 0; i < n; i++) for (let c = 0; c < d; c++) tableT[c * n + i] = table[i * d + c];
  inits.push(floatInit('item_emb_t', [d, n], tableT));
  inits.push(int64Init('heads_shape', [0, 0, H, dh]), int64Init('merge_shape', [0, 0, d]));
  inits.push(floatInit('scale', [], Float32Array.of(1 / Math.sqrt(dh))));
  inits.push(floatInit('half', [], Float32Array.of(0.5)), floatInit('one', [], Float32Array.of(1)), floatInit('inv_sqrt2', [], Float32Array.of(Math.SQRT1_2)));

  const ln = (x: string, prefix: string, out: string) => {
    vec(`${prefix}.gamma`);
    vec(`${prefix}.beta`);
    nodes.push(node('LayerNormalization', [x, `${prefix}.gamma`, `${prefix}.beta`], [out], { axis: -1, epsilon: { float: 1e-5 } }));
  };
  const dense = (x: string, w: string, b: string, out: string) => {
    mat(w);
    vec(b);
    nodes.push(node('MatMul', [x, w], [`${out}.mm`]), node('Add', [`${out}.mm`, b], [out]));
  };

  nodes.push(node('Gather', ['item_emb', 'ids'], ['emb'], { axis: 0 }), node('Add', ['emb', 'pos'], ['emb_pos']));
  ln('emb_pos', 'emb_ln', 'h0');
  let h = 'h0';
  for (let i = 0; i < shape.numBlocks; i++) {
    const p = `block${i}.`;
    for (const x of ['q', 'k', 'v']) {
      dense(h, `${p}attn.w${x}`, `${p}attn.b${x}`, `${p}${x}`);
      nodes.push(node('Reshape', [`${p}${x}`, 'heads_shape'], [`${p}${x}.bhld`]));
    }
    nodes.push(
      node('Transpose', [`${p}q.bhld`], [`${p}qh`], { perm: [0, 2, 1, 3] }),
      node('Transpose', [`${p}k.bhld`], [`${p}kt`], { perm: [0, 2, 3, 1] }),
      node('Transpose', [`${p}v.bhld`], [`${p}vh`], { perm: [0, 2, 1, 3] }),
      node('MatMul', [`${p}qh`, `${p}kt`], [`${p}qk`]),
      node('Mul', [`${p}qk`, 'scale'], [`${p}qk.s`]),
      node('Add', [`${p}qk.s`, 'bias'], [`${p}qk.b`]),
      node('Softmax', [`${p}qk.b`], [`${p}probs`], { axis: -1 }),
      node('MatMul', [`${p}probs`, `${p}vh`], [`${p}ctx`]),
      node('Transpose', [`${p}ctx`], [`${p}ctx.t`], { perm: [0, 2, 1, 3] }),
      node('Reshape', [`${p}ctx.t`, 'merge_shape'], [`${p}ctx.m`])
    );
    dense(`${p}ctx.m`, `${p}attn.wo`, `${p}attn.bo`, `${p}attn`);
    nodes.push(node('Add', [h, `${p}attn`], [`${p}res1`]));
    ln(`${p}res1`, `${p}ln1`, `${p}h1`);
    dense(`${p}h1`, `${p}ffn.w1`, `${p}ffn.b1`, `${p}inner`);
    // Exact (erf) GELU, as ops.gelu.
    nodes.push(
      node('Mul', [`${p}inner`, 'inv_sqrt2'], [`${p}g.x`]),
      node('Erf', [`${p}g.x`], [`${p}g.erf`]),
      node('Add', [`${p}g.erf`, 'one'], [`${p}g.1p`]),
      node('Mul', [`${p}inner`, 'half'], [`${p}g.half`]),
      node('Mul', [`${p}g.half`, `${p}g.1p`], [`${p}gelu`])
    );
    dense(`${p}gelu`, `${p}ffn.w2`, `${p}ffn.b2`, `${p}ffn`);
    nodes.push(node('Add', [`${p}h1`, `${p}ffn`], [`${p}res2`]));
    ln(`${p}res2`, `${p}ln2`, `${p}h2`);
    h = `${p}h2`;
  }
  nodes.push(node('Gather', [h, 'last'], ['h_last'], { axis: 1 }), node('MatMul', ['h_last', 'item_emb_t'], ['scores']));
  const graph: onnx.IGraphProto = {
    name: 'sasrec_scores',
    input: [valueInfo('ids', INT64, ['batch', 'len']), valueInfo('pos', FLOAT, ['len', d]), valueInfo('bias', FLOAT, ['batch', 1, 'len', 'len']), valueInfo('last', INT64, [1])],
    output: [valueInfo('scores', FLOAT, ['batch', 1, n])],
    initializer: inits,
    node: nodes
  };
  return modelBytes(graph);
}

/** A SASRec scorer on onnxruntime for these weights, or null where onnxruntime does not load. */
export function ortSasrecScorer(shape: SasrecShape, values: Map<string, Float32Array>, threads = 1): (Scorer & { dispose(): void }) | null {
  const ort = loadOrt();
  if (!ort) return null;
  const session = scoringSession(ort, sasrecScoringModel(shape, values), threads);
  const d = shape.hiddenSize;
  const posEmb = values.get('pos_emb')!;
  const width = shape.numItems + 1;
  return {
    scoreBatch(histories: Int32Array[]): Float32Array {
      // As SasrecModel.scoreNext: left-padded to the longest history (at most maxLen), positions from the right.
      const L = Math.max(1, Math.min(shape.maxLen, Math.max(...histories.map((x) => x.length))));
      const B = histories.length;
      const ids = new Int32Array(B * L);
      histories.forEach((hist, b) => padLeftInto(hist, L, ids, b * L));
      const out = session.run(
        {
          ids: new ort.Tensor('int64', BigInt64Array.from(ids, (x) => BigInt(x)), [B, L]),
          pos: new ort.Tensor('float32', posEmb.slice((shape.maxLen - L) * d, shape.maxLen * d), [L, d]),
          bias: new ort.Tensor('float32', attentionBias(ids, B, L), [B, 1, L, L]),
          last: new ort.Tensor('int64', BigInt64Array.of(BigInt(L - 1)), [1])
        },
        { scores: null },
        {}
      );
      const scores = out.scores.data;
      if (scores.length !== B * width) throw new Error(`SASRec ONNX: ${scores.length} scores for ${B} × ${width}`);
      return scores;
    },
    dispose() {
      // The native session is freed with its last reference; nothing else is held.
    }
  };
}
