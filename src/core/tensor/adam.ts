// Adam (PyTorch semantics: bias-corrected, eps outside the square root). Our own rather than tf.train.adam
// so its state is a plain set of named tensors plus a step count that checkpoints save and restore exactly.
import * as tf from '@tensorflow/tfjs-core';

export interface AdamOptions {
  learningRate: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** L2 penalty added to the gradient before the moments (torch.optim.Adam's weight_decay, not AdamW). */
  weightDecay?: number;
}

export class Adam {
  step = 0;
  readonly m = new Map<string, tf.Variable>();
  readonly v = new Map<string, tf.Variable>();
  private lr: number;
  private readonly b1: number;
  private readonly b2: number;
  private readonly eps: number;
  private readonly wd: number;

  constructor(params: Map<string, tf.Variable>, opts: AdamOptions) {
    this.lr = opts.learningRate;
    this.b1 = opts.beta1 ?? 0.9;
    this.b2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.wd = opts.weightDecay ?? 0;
    for (const [name, p] of params) {
      this.m.set(name, tf.tidy(() => tf.variable(tf.zerosLike(p), false)));
      this.v.set(name, tf.tidy(() => tf.variable(tf.zerosLike(p), false)));
    }
  }

  /** Learning-rate schedules set the rate before each step. */
  setLearningRate(lr: number): void {
    this.lr = lr;
  }

  /** Apply one update to `params` from `grads` (same names). */
  apply(params: Map<string, tf.Variable>, grads: tf.NamedTensorMap): void {
    this.step++;
    const bc1 = 1 - this.b1 ** this.step;
    const bc2 = 1 - this.b2 ** this.step;
    const stepSize = this.lr / bc1;
    const sqrtBc2 = Math.sqrt(bc2);
    tf.tidy(() => {
      for (const [name, p] of params) {
        const raw = grads[name];
        if (!raw) continue;
        const g = this.wd > 0 ? tf.add(raw, tf.mul(p, this.wd)) : raw;
        const m = this.m.get(name)!;
        const v = this.v.get(name)!;
        m.assign(tf.add(tf.mul(m, this.b1), tf.mul(g, 1 - this.b1)));
        v.assign(tf.add(tf.mul(v, this.b2), tf.mul(tf.square(g), 1 - this.b2)));
        const denom = tf.add(tf.div(tf.sqrt(v), sqrtBc2), this.eps);
        p.assign(tf.sub(p, tf.mul(tf.div(m, denom), stepSize)));
      }
    });
  }

  /** Restore moment values and the step count (from a checkpoint). */
  load(step: number, m: Map<string, Float32Array>, v: Map<string, Float32Array>): void {
    this.step = step;
    tf.tidy(() => {
      for (const [name, mv] of this.m) {
        const a = m.get(name);
        const b = v.get(name);
        if (!a || !b) throw new Error(`Adam state lacks "${name}"`);
        mv.assign(tf.tensor(a, mv.shape));
        this.v.get(name)!.assign(tf.tensor(b, mv.shape));
      }
    });
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
  }
}
