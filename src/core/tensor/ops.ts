// Differentiable building blocks whose gradients avoid transposed matmuls: the wasm backend's BatchMatMul is
// ~10x slower with transpose flags, so every backward pass transposes explicitly (a cheap memory copy) and
// then multiplies plainly. Each op is checked against tfjs's stock implementation in test/unit/kernels.test.ts.
import * as tf from '@tensorflow/tfjs-core';
import { ortCrossEntropy, type CrossEntropyRunner } from './ort-cross-entropy';
import { PER_BATCH_MATMUL } from './wasm-kernels';

/** Swap the last two axes. */
export function transposeLast2(x: tf.Tensor): tf.Tensor {
  const n = x.shape.length;
  const perm = x.shape.map((_, i) => (i === n - 2 ? n - 1 : i === n - 1 ? n - 2 : i));
  return tf.transpose(x, perm);
}

// tfjs types customGrad's callback as variadic (Tensor | GradSaveFunc)[]; these helpers unpack it.
type CustomArgs = (tf.Tensor | tf.GradSaveFunc)[];
const tensorArg = (args: CustomArgs, i: number): tf.Tensor => args[i] as tf.Tensor;
const saveArg = (args: CustomArgs): tf.GradSaveFunc => args[args.length - 1] as tf.GradSaveFunc;

/** Plain batched matmul; on wasm, batches > 1 go through the much faster per-batch kernel. */
function batchMatMul(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  if (a.shape.length === 3 && a.shape[0] > 1 && tf.getBackend() === 'wasm' && tf.getKernel(PER_BATCH_MATMUL, 'wasm')) {
    return tf.engine().runKernel(PER_BATCH_MATMUL, { a, b }, {}) as tf.Tensor;
  }
  return tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D);
}

const bmmOp = tf.customGrad((...args: CustomArgs) => {
  const [a, b, save] = [tensorArg(args, 0), tensorArg(args, 1), saveArg(args)];
  save([a, b]);
  return {
    value: batchMatMul(a, b),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sa, sb] = saved;
      return [batchMatMul(dy, transposeLast2(sb)), batchMatMul(transposeLast2(sa), dy)];
    }
  };
});

/** Batched a @ b for rank-3 tensors [B, m, k] × [B, k, n] (or plain 2-D matrices). */
export function bmm(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  return bmmOp(a, b) as tf.Tensor;
}

const denseOp = tf.customGrad((...args: CustomArgs) => {
  const [x, w, b, save] = [tensorArg(args, 0), tensorArg(args, 1), tensorArg(args, 2), saveArg(args)];
  save([x, w]);
  return {
    value: tf.add(tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D), b),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sx, sw] = saved;
      return [
        tf.matMul(dy as tf.Tensor2D, tf.transpose(sw) as tf.Tensor2D),
        tf.matMul(tf.transpose(sx) as tf.Tensor2D, dy as tf.Tensor2D),
        tf.sum(dy, 0)
      ];
    }
  };
});

/** x[..., in] @ w[in, out] + b[out]. */
export function dense(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const inDim = x.shape[x.shape.length - 1] as number;
  const lead = x.shape.slice(0, -1);
  const y = denseOp(tf.reshape(x, [-1, inDim]), w, b) as tf.Tensor;
  return tf.reshape(y, [...lead, w.shape[1] as number]);
}

/**
 * Row lookup table[ids]. The gradient is a segment sum into the table; rows equal to `paddingIdx` get no
 * gradient (PyTorch's nn.Embedding padding_idx semantics), pass -1 for none.
 */
export function embedding(table: tf.Tensor, ids: tf.Tensor, paddingIdx = -1): tf.Tensor {
  const flatIds = tf.reshape(ids, [-1]);
  const op = tf.customGrad((...args: CustomArgs) => {
    const [t, save] = [tensorArg(args, 0), saveArg(args)];
    save([flatIds]);
    return {
      value: tf.gather(t, flatIds),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const rows = table.shape[0] as number;
        let g = tf.unsortedSegmentSum(dy, saved[0] as tf.Tensor1D, rows);
        if (paddingIdx >= 0 && paddingIdx < rows) {
          const keep = new Float32Array(rows).fill(1);
          keep[paddingIdx] = 0;
          g = tf.mul(g, tf.tensor2d(keep, [rows, 1]));
        }
        return [g];
      }
    };
  });
  const out = op(table) as tf.Tensor;
  return tf.reshape(out, [...ids.shape, table.shape[1] as number]);
}

/** Rows per chunk so one chunk of logits stays around 8 M floats (32 MiB): bounds the wasm heap peak. */
export function defaultChunkRows(numClasses: number): number {
  return Math.max(1, Math.floor((8 * 1024 * 1024) / Math.max(1, numClasses)));
}

/** Softmax probabilities are kept for the backward pass when they fit in this many floats (256 MiB). */
const KEEP_PROBS_MAX_FLOATS = 64 * 1024 * 1024;

/**
 * Mean softmax cross-entropy of logits = h @ table^T over ALL rows of `table` (tied output embedding), for
 * every row of h whose target is not `ignoreTarget` (padding). Fused and chunked so at most one chunk of
 * logits is live at a time; the softmax probabilities are kept for backward when small enough, otherwise
 * recomputed from the saved log-sum-exp. Backward uses d logits = w·(softmax − one-hot) without forming it:
 * dh = w·(P @ table − table[target]), dtable = (w·h)ᵀ @ P − segmentSum(w·h, target); the per-row weights w
 * scale the small (rows × d) side, never the (rows × items) one. Returns a scalar; no valid target gives 0.
 */
export function tiedSoftmaxCrossEntropy(
  h: tf.Tensor2D,
  table: tf.Tensor2D,
  targets: Int32Array,
  ignoreTarget = 0,
  chunkRows = defaultChunkRows(table.shape[0]),
  keepProbs = h.shape[0] * table.shape[0] <= KEEP_PROBS_MAX_FLOATS
): tf.Scalar {
  const n = h.shape[0];
  const numClasses = table.shape[0];
  if (targets.length !== n) throw new Error(`tiedSoftmaxCrossEntropy: ${targets.length} targets for ${n} rows`);
  const weights = new Float32Array(n);
  let count = 0;
  for (let i = 0; i < n; i++) {
    if (targets[i] !== ignoreTarget) {
      if (targets[i] < 0 || targets[i] >= numClasses) throw new Error(`tiedSoftmaxCrossEntropy: target ${targets[i]} outside [0, ${numClasses})`);
      weights[i] = 1;
      count++;
    }
  }
  const step = Math.max(1, Math.min(n, chunkRows));
  const chunks: { start: number; rows: number }[] = [];
  for (let start = 0; start < n; start += step) chunks.push({ start, rows: Math.min(step, n - start) });

  if (crossEntropyImpl() === 'onnxruntime') {
    const ort = ortCrossEntropy(table.dataSync() as Float32Array, numClasses, table.shape[1]);
    if (ort) return ortTiedSoftmaxCrossEntropy(h, table, ort, targets, weights, count, chunks);
  }

  const op = tf.customGrad((...args: CustomArgs) => {
    const [hIn, tIn, save] = [tensorArg(args, 0), tensorArg(args, 1), saveArg(args)];
    const tableT = tf.transpose(tIn) as tf.Tensor2D;
    const lseParts: tf.Tensor[] = [];
    const exps: tf.Tensor[] = [];
    const invs: tf.Tensor[] = [];
    let total: tf.Tensor = tf.scalar(0);
    for (const { start, rows } of chunks) {
      const next = tf.tidy(() => {
        const hc = tf.slice(hIn, [start, 0], [rows, -1]) as tf.Tensor2D;
        const logits = tf.matMul(hc, tableT);
        const mx = tf.max(logits, 1, true);
        const e = tf.exp(tf.sub(logits, mx));
        const sum = tf.sum(e, 1, true);
        const lse = tf.reshape(tf.add(tf.log(sum), mx), [rows]);
        const tgt = tf.tensor1d(targets.subarray(start, start + rows), 'int32');
        const w = tf.tensor1d(weights.subarray(start, start + rows));
        // Target logit = <h_i, table[target_i]>, cheaper than gathering from the logits matrix.
        const tl = tf.sum(tf.mul(hc, tf.gather(tIn, tgt)), 1);
        const part = tf.sum(tf.mul(tf.sub(lse, tl), w));
        // Softmax = e · (1/sum) row-wise; the division is folded into the small side in backward.
        return keepProbs ? { lse, part, e, inv: tf.reciprocal(sum) } : { lse, part };
      }) as { lse: tf.Tensor; part: tf.Tensor; e?: tf.Tensor; inv?: tf.Tensor };
      lseParts.push(next.lse);
      if (next.e && next.inv) {
        exps.push(next.e);
        invs.push(next.inv);
      }
      const added = tf.add(total, next.part);
      total.dispose();
      next.part.dispose();
      total = added;
    }
    const lseAll = lseParts.length === 1 ? lseParts[0] : tf.concat(lseParts);
    save([hIn, tIn, lseAll, ...exps, ...invs]);
    return {
      value: tf.div(total, Math.max(1, count)),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sh, st, slse] = saved;
        const savedExps = saved.slice(3, 3 + exps.length);
        const savedInvs = saved.slice(3 + exps.length);
        const scale = tf.div(dy, Math.max(1, count));
        const tableT2 = keepProbs ? null : (tf.transpose(st) as tf.Tensor2D);
        const dhParts: tf.Tensor[] = [];
        // Accumulate dtableᵀ (d × items) so the big matrix is never transposed; transpose once at the end.
        let dTableT: tf.Tensor = tf.zeros([st.shape[1] as number, numClasses]);
        let dTableTarget: tf.Tensor = tf.zerosLike(st);
        chunks.forEach(({ start, rows }, c) => {
          const next = tf.tidy(() => {
            const hc = tf.slice(sh, [start, 0], [rows, -1]) as tf.Tensor2D;
            const tgt = tf.tensor1d(targets.subarray(start, start + rows), 'int32');
            const w = tf.reshape(tf.mul(tf.tensor1d(weights.subarray(start, start + rows)), scale), [rows, 1]);
            // P = e · inv row-wise: kept (e, inv) from forward, or recomputed already normalised (inv = 1).
            const e = keepProbs
              ? (savedExps[c] as tf.Tensor2D)
              : (tf.exp(tf.sub(tf.matMul(hc, tableT2!), tf.reshape(tf.slice(slse, [start], [rows]), [rows, 1]))) as tf.Tensor2D);
            const rowScale = (x: tf.Tensor): tf.Tensor => (keepProbs ? tf.mul(x, savedInvs[c]) : x);
            const wh = tf.mul(hc, w);
            return {
              dh: tf.mul(tf.sub(rowScale(tf.matMul(e, st as tf.Tensor2D)), tf.gather(st, tgt)), w),
              dtT: tf.add(dTableT, tf.matMul(tf.transpose(rowScale(wh)) as tf.Tensor2D, e)),
              dtTarget: tf.add(dTableTarget, tf.unsortedSegmentSum(wh, tgt, numClasses))
            };
          });
          dhParts.push(next.dh);
          dTableT.dispose();
          dTableTarget.dispose();
          dTableT = next.dtT;
          dTableTarget = next.dtTarget;
        });
        return [dhParts.length === 1 ? dhParts[0] : tf.concat(dhParts), tf.sub(tf.transpose(dTableT), dTableTarget)];
      }
    };
  });
  return op(h, table) as tf.Tensor as tf.Scalar;
}

/**
 * Which implementation tiedSoftmaxCrossEntropy uses: onnxruntime on the CPU backends (ort-cross-entropy.ts),
 * tfjs kernels elsewhere (native TensorFlow, GPU) or when env ALMOSTREC_CROSS_ENTROPY=tfjs asks for them.
 * onnxruntime falls back to tfjs when it cannot be loaded.
 */
export function crossEntropyImpl(): 'onnxruntime' | 'tfjs' {
  const wanted = process.env.ALMOSTREC_CROSS_ENTROPY;
  if (wanted !== undefined && wanted !== 'tfjs' && wanted !== 'onnxruntime') throw new Error(`ALMOSTREC_CROSS_ENTROPY="${wanted}" is not one of onnxruntime, tfjs`);
  const backend = tf.getBackend();
  return wanted !== 'tfjs' && (backend === 'wasm' || backend === 'cpu') ? 'onnxruntime' : 'tfjs';
}

/**
 * tiedSoftmaxCrossEntropy through onnxruntime: loss and both gradients are computed together in the forward
 * pass, chunk by chunk (the gradient of a scalar loss only needs dy's scale); backward scales them by dy.
 */
function ortTiedSoftmaxCrossEntropy(
  h: tf.Tensor2D,
  table: tf.Tensor2D,
  run: CrossEntropyRunner,
  targets: Int32Array,
  valid: Float32Array,
  count: number,
  chunks: { start: number; rows: number }[]
): tf.Scalar {
  const [n, d] = h.shape;
  const numClasses = table.shape[0];
  const op = tf.customGrad((...args: CustomArgs) => {
    const [hIn, save] = [tensorArg(args, 0), saveArg(args)];
    const hData = hIn.dataSync() as Float32Array;
    const dh = new Float32Array(n * d);
    const dtable = new Float32Array(numClasses * d);
    let loss = 0;
    for (const { start, rows } of chunks) {
      const ids = new BigInt64Array(rows);
      const weights = new Float32Array(rows);
      for (let i = 0; i < rows; i++) {
        // Ignored rows keep a valid index (0) and weight 0: they add nothing to the loss or the gradients.
        ids[i] = BigInt(valid[start + i] ? targets[start + i] : 0);
        weights[i] = valid[start + i] / Math.max(1, count);
      }
      const out = run({ h: hData.subarray(start * d, (start + rows) * d), rows, targets: ids, weights });
      loss += out.loss;
      dh.set(out.dh, start * d);
      for (let i = 0; i < dtable.length; i++) dtable[i] += out.dtable[i];
    }
    save([tf.tensor2d(dh, [n, d]), tf.tensor2d(dtable, [numClasses, d])]);
    return {
      value: tf.scalar(loss),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.mul(saved[0], dy), tf.mul(saved[1], dy)]
    };
  });
  return op(h, table) as tf.Tensor as tf.Scalar;
}

/** LayerNorm over the last axis (PyTorch default eps 1e-5). */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps = 1e-5): tf.Tensor {
  const axis = x.shape.length - 1;
  const { mean, variance } = tf.moments(x, axis, true);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps))), gamma), beta);
}

/** Exact (erf) GELU, as PyTorch's activation='gelu'. */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
}
