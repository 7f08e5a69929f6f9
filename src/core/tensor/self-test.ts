// The backend self-test: one tiny training step (two matmuls, softmax cross-entropy, our Adam update) from
// fixed inputs, run on a candidate backend and on the pure-JS cpu backend; the candidate is offered only if
// loss, gradients and updated weights agree to SELF_TEST_TOLERANCE. Inputs come from our seeded Rng, not
// tf.random*, so both runs start from bit-identical values whatever the backend.
import * as tf from '@tensorflow/tfjs-core';
import { Adam } from './adam';
import { Rng } from './rng';

export const SELF_TEST_TOLERANCE = 1e-4;

const ROWS = 12;
const IN = 8;
const HIDDEN = 16;
const CLASSES = 6;

function normals(rng: Rng, n: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal() * scale;
  return out;
}

/** Loss, gradients and weights after one Adam step, flattened, on the current tfjs backend. */
export async function selfTestStep(): Promise<Float32Array> {
  const rng = new Rng(1234);
  const x = tf.tensor2d(normals(rng, ROWS * IN, 1), [ROWS, IN]);
  const labels = tf.oneHot(tf.tensor1d(Array.from({ length: ROWS }, () => rng.int(CLASSES)), 'int32'), CLASSES);
  const params = new Map<string, tf.Variable>([
    ['w1', tf.variable(tf.tensor2d(normals(rng, IN * HIDDEN, 0.3), [IN, HIDDEN]), true, 'selftest_w1')],
    ['w2', tf.variable(tf.tensor2d(normals(rng, HIDDEN * CLASSES, 0.3), [HIDDEN, CLASSES]), true, 'selftest_w2')]
  ]);
  const adam = new Adam(params, { learningRate: 0.01 });
  try {
    const { value, grads } = tf.variableGrads(() => {
      const logits = tf.matMul(tf.relu(tf.matMul(x, params.get('w1')!)), params.get('w2')!);
      return tf.mean(tf.neg(tf.sum(tf.mul(labels, tf.logSoftmax(logits)), -1))) as tf.Scalar;
    });
    // variableGrads keys gradients by variable name; Adam wants them by parameter name.
    const byParam: tf.NamedTensorMap = { w1: grads['selftest_w1'], w2: grads['selftest_w2'] };
    const parts = [await value.data(), await byParam.w1.data(), await byParam.w2.data()];
    adam.apply(params, byParam);
    parts.push(await params.get('w1')!.data(), await params.get('w2')!.data());
    tf.dispose([value, ...Object.values(grads)]);
    const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p as Float32Array, at);
      at += p.length;
    }
    return out;
  } finally {
    adam.dispose();
    tf.dispose([x, labels, ...params.values()]);
  }
}

/** Largest absolute difference between two equally long arrays (Infinity when lengths differ or a value is NaN). */
export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= worst)) worst = Number.isNaN(d) ? Infinity : d;
  }
  return worst;
}
