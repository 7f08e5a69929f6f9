// Differentiable sequence building blocks for GRU4Rec and NextItNet. Each is checked against a stock-tfjs
// implementation (values and gradients) in test/unit/seq-ops.test.ts.
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { dense } from './ops';

// tfjs types customGrad's callback as variadic (Tensor | GradSaveFunc)[]; these helpers unpack it.
type CustomArgs = (tf.Tensor | tf.GradSaveFunc)[];
const tensorArg = (args: CustomArgs, i: number): tf.Tensor => args[i] as tf.Tensor;
const saveArg = (args: CustomArgs): tf.GradSaveFunc => args[args.length - 1] as tf.GradSaveFunc;

const UNSTACK_ROWS = 'AlmostrecUnstackRows';

/**
 * tf.unstack along axis 0 for the wasm backend. Hand-written because the wasm Slice kernel copies its whole
 * input out of the heap on every call (readSync) before taking the slice, so unstacking L steps of a
 * [L, B, 3H] tensor cost O(L²·B·H) — 0.5 s for L = 50 — where this copies each row block once.
 */
function unstackRowsWasm(args: { inputs: tf.NamedTensorInfoMap; backend: object }): tf.TensorInfo[] {
  const backend = args.backend as unknown as BackendWasm;
  const { x } = args.inputs as { x: tf.TensorInfo };
  const inner = tf.util.sizeFromShape(x.shape.slice(1));
  const outs: tf.TensorInfo[] = [];
  for (let i = 0; i < x.shape[0]; i++) {
    const out = backend.makeOutput(x.shape.slice(1), x.dtype);
    // Views are taken after makeOutput: allocating may grow (and so detach) the heap buffer.
    const src = backend.typedArrayFromHeap(x);
    backend.typedArrayFromHeap(out).set(src.subarray(i * inner, (i + 1) * inner));
    outs.push(out);
  }
  return outs;
}

/** The sub-tensors x[0], x[1], … (not differentiable: used inside gruSequence's own forward/backward). */
function unstackRows(x: tf.Tensor): tf.Tensor[] {
  if (tf.getBackend() !== 'wasm' || x.dtype !== 'float32') return tf.unstack(x);
  if (!tf.getKernel(UNSTACK_ROWS, 'wasm')) tf.registerKernel({ kernelName: UNSTACK_ROWS, backendName: 'wasm', kernelFunc: unstackRowsWasm as unknown as tf.KernelFunc });
  return tf.engine().runKernel(UNSTACK_ROWS, { x }, {}) as unknown as tf.Tensor[];
}

/** Which (step, row) cells of a time-major L × B batch are real items; null = all of them. */
export type StepMask = Float32Array | null;

/**
 * Bias-free GRU recurrence (PyTorch nn.GRU gate order r, z, n; RecBole's GRU4Rec uses bias=False) over a
 * time-major batch, hidden state starting at 0:
 *   r, z = σ(gx[:, :2H] + (h Wh)[:, :2H]);  n = tanh(gx[:, 2H:] + r ⊙ (h Wh)[:, 2H:]);  h' = n + z ⊙ (h − n)
 * `gx` [L, B, 3H] are the input projections of all steps (one matmul by the caller); `wh` [H, 3H]. Where
 * `mask[t·B + b]` is 0 the step is padding and row b keeps its previous state exactly. Returns all hidden
 * states [L, B, H].
 *
 * Hand-written backward (back-propagation through time): autodiff through the loop would tape ~12 ops per
 * step, transpose Wh for every step's matmul gradient and run L small weight-gradient matmuls; here the
 * backward loop only carries dh, and dWh is one [H, L·B] × [L·B, 3H] matmul at the end. No library ships a
 * tfjs RNN kernel for the wasm backend (tfjs-layers' GRU unrolls through autodiff as well).
 */
export function gruSequence(gx: tf.Tensor3D, wh: tf.Tensor2D, mask: StepMask = null): tf.Tensor3D {
  const [L, B, H3] = gx.shape;
  const H = wh.shape[0];
  if (H3 !== 3 * H || wh.shape[1] !== 3 * H) throw new Error(`gruSequence: gx [${gx.shape}] and wh [${wh.shape}] disagree (expected 3·H = ${3 * H})`);
  if (mask && mask.length !== L * B) throw new Error(`gruSequence: mask has ${mask.length} entries for ${L} steps × ${B} rows`);
  // Per-step masks, only for steps where some row is padding (the common case needs no blend at all).
  const stepMask = (t: number): Float32Array | null => {
    if (!mask) return null;
    const m = mask.subarray(t * B, (t + 1) * B);
    return m.every((v) => v === 1) ? null : m;
  };

  const op = tf.customGrad((...args: CustomArgs) => {
    const [gxIn, whIn, save] = [tensorArg(args, 0), tensorArg(args, 1) as tf.Tensor2D, saveArg(args)];
    const gxSteps = unstackRows(gxIn);
    const h0: tf.Tensor2D = tf.zeros([B, H]);
    let h = h0;
    const hs: tf.Tensor[] = [];
    const rzs: tf.Tensor[] = [];
    const ns: tf.Tensor[] = [];
    const ghns: tf.Tensor[] = [];
    for (let t = 0; t < L; t++) {
      const m = stepMask(t);
      const hPrev = h;
      const step = tf.tidy(() => {
        const gh = tf.matMul(hPrev, whIn);
        const [gxRz, gxN] = tf.split(gxSteps[t], [2 * H, H], 1);
        const [ghRz, ghN] = tf.split(gh, [2 * H, H], 1);
        const rz = tf.sigmoid(tf.add(gxRz, ghRz));
        const [r, z] = tf.split(rz, 2, 1);
        const n = tf.tanh(tf.add(gxN, tf.mul(r, ghN)));
        let next = tf.add(n, tf.mul(z, tf.sub(hPrev, n)));
        if (m) next = tf.add(hPrev, tf.mul(tf.tensor2d(m, [B, 1]), tf.sub(next, hPrev)));
        return { next: next as tf.Tensor2D, rz, n, ghN };
      });
      h = step.next;
      hs.push(h);
      rzs.push(step.rz);
      ns.push(step.n);
      ghns.push(step.ghN);
    }
    const out = tf.stack(hs) as tf.Tensor3D;
    const saved = [out, tf.stack(rzs), tf.stack(ns), tf.stack(ghns), whIn];
    tf.dispose([h0, ...gxSteps, ...hs, ...rzs, ...ns, ...ghns]);
    save(saved);
    return {
      value: out,
      gradFunc: (dy: tf.Tensor, s: tf.Tensor[]) => {
        const [sOut, sRz, sN, sGhn, sWh] = s;
        const whT = tf.transpose(sWh) as tf.Tensor2D; // [3H, H], once: every step's matmul is then plain
        const dys = unstackRows(dy);
        const outs = unstackRows(sOut);
        const rzList = unstackRows(sRz);
        const nList = unstackRows(sN);
        const ghnList = unstackRows(sGhn);
        const zeros = tf.zeros([B, H]);
        const dgx: tf.Tensor[] = new Array(L);
        const dgh: tf.Tensor[] = new Array(L);
        let dh: tf.Tensor = zeros;
        for (let t = L - 1; t >= 0; t--) {
          const m = stepMask(t);
          const dhNext = dh;
          const step = tf.tidy(() => {
            const g = tf.add(dhNext, dys[t]);
            const mT = m ? tf.tensor2d(m, [B, 1]) : null;
            // A padding step passes the gradient straight through to the previous state.
            const gNew = mT ? tf.mul(g, mT) : g;
            const hPrev = t > 0 ? outs[t - 1] : zeros;
            const [r, z] = tf.split(rzList[t], 2, 1);
            const n = nList[t];
            const dz = tf.mul(gNew, tf.sub(hPrev, n));
            const dn = tf.mul(gNew, tf.sub(1, z));
            const dan = tf.mul(dn, tf.sub(1, tf.square(n)));
            const dar = tf.mul(tf.mul(dan, ghnList[t]), tf.mul(r, tf.sub(1, r)));
            const daz = tf.mul(dz, tf.mul(z, tf.sub(1, z)));
            const dgh = tf.concat([dar, daz, tf.mul(dan, r)], 1);
            let dPrev = tf.add(tf.mul(gNew, z), tf.matMul(dgh as tf.Tensor2D, whT));
            if (mT) dPrev = tf.add(dPrev, tf.mul(g, tf.sub(1, mT)));
            return { dPrev, dgx: tf.concat([dar, daz, dan], 1), dgh };
          });
          if (dhNext !== zeros) dhNext.dispose();
          dh = step.dPrev;
          dgx[t] = step.dgx;
          dgh[t] = step.dgh;
        }
        // dWh = Σ_t h_{t−1}ᵀ dgh_t as one matmul over all steps (h_{−1} = 0 contributes nothing).
        const prev = L > 1 ? tf.concat([tf.zeros([1, B, H]), tf.slice(sOut, [0, 0, 0], [L - 1, B, H])]) : tf.zeros([1, B, H]);
        const dWh = tf.matMul(tf.transpose(tf.reshape(prev, [L * B, H])) as tf.Tensor2D, tf.reshape(tf.stack(dgh), [L * B, 3 * H]) as tf.Tensor2D);
        const dGx = tf.stack(dgx);
        // Free the per-step pieces now rather than at the end of the whole backward pass (peak memory).
        tf.dispose([whT, zeros, dh, prev, ...dys, ...outs, ...rzList, ...nList, ...ghnList, ...dgx, ...dgh]);
        return [dGx, dWh];
      }
    };
  });
  return op(gx, wh) as tf.Tensor3D;
}

/**
 * Causal dilated 1-D convolution over [B, L, C] (output t sees inputs t, t − d, …, t − (k−1)·d; positions
 * before 0 are zeros, as RecBole's NextItNet left-pads each conv input with (k−1)·d zeros). `w` is
 * [k·C, Cout] with tap j (multiplying x[t − (k−1−j)·d]) in rows j·C … j·C + C − 1 — tf.conv1d's filter
 * [k, C, Cout] flattened. Done as im2col (one gather of the k shifted rows of a zero-padded copy, one
 * matmul) because the wasm backend has no Conv2DBackpropFilter kernel, so tf.conv1d cannot be trained
 * there (and tfjs' conv gradients refuse dilation > 1 anyway). A gather rather than k slices: wasm's Slice
 * copies its whole input per call. Every piece is a stock differentiable op or ops.ts's dense.
 */
export function causalConv1d(x: tf.Tensor3D, w: tf.Tensor2D, b: tf.Tensor1D, kernelSize: number, dilation: number): tf.Tensor3D {
  const [B, L, C] = x.shape;
  if (w.shape[0] !== kernelSize * C) throw new Error(`causalConv1d: weight [${w.shape}] does not match kernel ${kernelSize} × ${C} channels`);
  const reach = (kernelSize - 1) * dilation;
  if (kernelSize === 1) return dense(x, w, b) as tf.Tensor3D;
  const padded = tf.reshape(tf.pad(x, [[0, 0], [reach, 0], [0, 0]]), [B * (L + reach), C]);
  // Row (b, t), tap j reads padded row b·(L + reach) + t + j·d (= x[t − (k−1−j)·d], zeros before 0).
  const rows = new Int32Array(B * L * kernelSize);
  for (let bi = 0, o = 0; bi < B; bi++) {
    for (let t = 0; t < L; t++) for (let j = 0; j < kernelSize; j++) rows[o++] = bi * (L + reach) + t + j * dilation;
  }
  const cols = tf.reshape(tf.gather(padded, tf.tensor1d(rows, 'int32')), [B, L, kernelSize * C]);
  return dense(cols, w, b) as tf.Tensor3D;
}
