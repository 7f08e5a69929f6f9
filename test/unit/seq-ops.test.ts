// gruSequence's hand-written BPTT and causalConv1d's im2col are checked against stock tfjs: a plain GRU loop
// through autodiff, and tf.conv1d (the wasm backend lacks its filter gradient, so the conv reference is always
// computed on the cpu backend; tfjs' conv gradients refuse dilation > 1, so the reference convolves with the
// equivalent undilated filter, zeros between the taps).
import { beforeAll, describe, expect, test } from 'vitest';
import { initBackend, tf } from '../../src/core/tensor/backend';
import { causalConv1d, gruSequence } from '../../src/core/tensor/seq-ops';
import { Rng } from '../../src/core/tensor/rng';

const rng = new Rng(11);
function randArray(n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal() * scale);
}

function expectClose(got: tf.Tensor | number[], want: tf.Tensor | number[], tol = 1e-4): void {
  const a = Array.isArray(got) ? got : [...got.dataSync()];
  const b = Array.isArray(want) ? want : [...want.dataSync()];
  expect(a.length).toBe(b.length);
  let diff = 0;
  let mag = 1;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    mag = Math.max(mag, Math.abs(b[i]));
  }
  expect(diff / mag).toBeLessThanOrEqual(tol);
}

/** The textbook GRU (PyTorch equations, no bias) unrolled with stock ops; tfjs autodiff gives its gradient. */
function stockGru(gx: tf.Tensor3D, wh: tf.Tensor2D, mask: Float32Array | null = null): tf.Tensor3D {
  const [L, B] = gx.shape;
  const H = wh.shape[0];
  let h: tf.Tensor = tf.zeros([B, H]);
  const out: tf.Tensor[] = [];
  for (let t = 0; t < L; t++) {
    const x = tf.reshape(tf.slice(gx, [t, 0, 0], [1, B, 3 * H]), [B, 3 * H]);
    const gh = tf.matMul(h as tf.Tensor2D, wh);
    const r = tf.sigmoid(tf.add(tf.slice(x, [0, 0], [B, H]), tf.slice(gh, [0, 0], [B, H])));
    const z = tf.sigmoid(tf.add(tf.slice(x, [0, H], [B, H]), tf.slice(gh, [0, H], [B, H])));
    const n = tf.tanh(tf.add(tf.slice(x, [0, 2 * H], [B, H]), tf.mul(r, tf.slice(gh, [0, 2 * H], [B, H]))));
    const hNew = tf.add(tf.mul(tf.sub(1, z), n), tf.mul(z, h));
    if (mask) {
      const m = tf.tensor2d(mask.subarray(t * B, (t + 1) * B), [B, 1]);
      h = tf.add(tf.mul(m, hNew), tf.mul(tf.sub(1, m), h));
    } else h = hNew;
    out.push(h);
  }
  return tf.stack(out) as tf.Tensor3D;
}

beforeAll(async () => {
  await initBackend('wasm');
});

for (const backend of ['cpu', 'wasm']) {
  describe(`sequence ops vs stock (${backend})`, () => {
    beforeAll(async () => {
      await tf.setBackend(backend);
    });

    for (const masked of [false, true]) {
      test(`gruSequence forward and gradients match an unrolled stock GRU${masked ? ' (with padding steps)' : ''}`, () => {
        const [L, B, H] = [5, 3, 4];
        const gx = tf.tensor3d(randArray(L * B * 3 * H), [L, B, 3 * H]);
        const wh = tf.tensor2d(randArray(H * 3 * H, 0.5), [H, 3 * H]);
        // Row 0 has two leading padding steps, row 2 one; row 1 none.
        const mask = masked ? Float32Array.from([0, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]) : null;
        const up = tf.tensor3d(randArray(L * B * H), [L, B, H]);
        const loss = (fn: typeof gruSequence) => (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(fn(a as tf.Tensor3D, b as tf.Tensor2D, mask), up));
        expectClose(gruSequence(gx, wh, mask), stockGru(gx, wh, mask));
        const ours = tf.grads(loss(gruSequence))([gx, wh]);
        const stock = tf.grads(loss(stockGru))([gx, wh]);
        expectClose(ours[0], stock[0]);
        expectClose(ours[1], stock[1]);
        if (masked) {
          // Padding steps leave the state at its previous value (0 before the first item).
          const hs = gruSequence(gx, wh, mask).arraySync() as number[][][];
          expect(hs[0][0]).toEqual([0, 0, 0, 0]);
          expect(hs[1][0]).toEqual([0, 0, 0, 0]);
          expect(hs[0][2]).toEqual([0, 0, 0, 0]);
        }
      });
    }

    test('gruSequence: a single step, and no tensors leak through forward + backward', () => {
      const gx = tf.tensor3d(randArray(2 * 6), [1, 2, 6]);
      const wh = tf.tensor2d(randArray(2 * 6), [2, 6]);
      expectClose(gruSequence(gx, wh), stockGru(gx, wh, null));
      const vars = [tf.variable(gx), tf.variable(wh)];
      const before = tf.memory().numTensors;
      const { value, grads } = tf.variableGrads(() => tf.sum(gruSequence(vars[0] as tf.Tensor3D, vars[1] as tf.Tensor2D)), vars);
      value.dispose();
      tf.dispose(grads);
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(gruSequence(a as tf.Tensor3D, b as tf.Tensor2D)))([gx, wh]);
      tf.dispose(g);
      expect(tf.memory().numTensors).toBe(before);
    });

    for (const [k, d] of [
      [3, 1],
      [3, 4],
      [2, 8],
      [1, 1]
    ]) {
      test(`causalConv1d (kernel ${k}, dilation ${d}) matches tf.conv1d on a left-padded input, values and gradients`, async () => {
        const [B, L, C, O] = [2, 7, 3, 5];
        const xv = randArray(B * L * C);
        const wv = randArray(k * C * O, 0.5);
        const bv = randArray(O);
        const upv = randArray(B * L * O);
        // Stock reference on cpu: tf.conv1d over an explicitly zero-padded input.
        const current = tf.getBackend();
        await tf.setBackend('cpu');
        const dilatedFilter = (w: tf.Tensor): tf.Tensor3D => {
          if (k === 1) return tf.reshape(w, [1, C, O]);
          const taps = tf.unstack(tf.reshape(w, [k, C, O]));
          const parts: tf.Tensor[] = [];
          taps.forEach((tap, j) => {
            if (j > 0 && d > 1) parts.push(tf.zeros([d - 1, C, O]));
            parts.push(tf.expandDims(tap, 0));
          });
          return tf.concat(parts) as tf.Tensor3D;
        };
        const stockFn = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) =>
          tf.add(tf.conv1d(tf.pad(x, [[0, 0], [(k - 1) * d, 0], [0, 0]]) as tf.Tensor3D, dilatedFilter(w), 1, 'valid'), b);
        const args = () => [tf.tensor3d(xv, [B, L, C]), tf.tensor2d(wv, [k * C, O]), tf.tensor1d(bv)];
        const up = () => tf.tensor3d(upv, [B, L, O]);
        const refValue = [...stockFn(...(args() as [tf.Tensor, tf.Tensor, tf.Tensor])).dataSync()];
        const refGrads = tf.grads((x, w, b) => tf.sum(tf.mul(stockFn(x, w, b), up())))(args()).map((g) => [...g.dataSync()]);
        await tf.setBackend(current);
        const ours = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => causalConv1d(x as tf.Tensor3D, w as tf.Tensor2D, b as tf.Tensor1D, k, d);
        expectClose([...ours(...(args() as [tf.Tensor, tf.Tensor, tf.Tensor])).dataSync()], refValue);
        const got = tf.grads((x, w, b) => tf.sum(tf.mul(ours(x, w, b), up())))(args());
        got.forEach((g, i) => expectClose([...g.dataSync()], refGrads[i]));
      });
    }

    test('causalConv1d is causal: output t does not depend on inputs after t', () => {
      const [B, L, C] = [1, 6, 2];
      const w = tf.tensor2d(randArray(3 * C * C), [3 * C, C]);
      const b = tf.tensor1d(randArray(C));
      const xa = randArray(B * L * C);
      const xb = xa.slice();
      xb[4 * C] += 1; // change step 4
      const ya = causalConv1d(tf.tensor3d(xa, [B, L, C]), w, b, 3, 2).arraySync() as number[][][];
      const yb = causalConv1d(tf.tensor3d(xb, [B, L, C]), w, b, 3, 2).arraySync() as number[][][];
      expect(ya[0].slice(0, 4)).toEqual(yb[0].slice(0, 4));
      expect(ya[0][4]).not.toEqual(yb[0][4]);
    });
  });
}
