// Item representations for the visual baselines: ID embedding + W_v · frozen image feature. The features
// are constants, so the projection's gradient is only dW = Fᵀ · dy, computed against a transposed copy of
// F made once (no transposed matmul per step, no wasted dF). Checked against stock tfjs in
// test/unit/vision-projection.test.ts.
import * as tf from '@tensorflow/tfjs-core';
import type { ItemFeatures } from '../train/model-spec';

/** The frozen feature matrix F ((numItems + 1) × dim, zero rows for items without an image) and Fᵀ. */
export class FrozenFeatures {
  readonly dim: number;
  readonly rows: number;
  private readonly f: tf.Tensor2D;
  private readonly fT: tf.Tensor2D;

  constructor(features: ItemFeatures, numItems: number, model: string) {
    if (features.values.length !== (numItems + 1) * features.dim || features.has.length !== numItems + 1) {
      throw new Error(`${model}: item features (${features.encoderId}) cover ${features.has.length - 1} items of dim ${features.dim}, the dataset has ${numItems}`);
    }
    this.dim = features.dim;
    this.rows = numItems + 1;
    // Rows of items without an image are zeroed here whatever `values` holds, so they fall back to ID only.
    const values = features.values.slice();
    for (let i = 0; i < this.rows; i++) if (!features.has[i] || i === 0) values.fill(0, i * this.dim, (i + 1) * this.dim);
    // keep: they live as long as the model, even when it is built inside a tidy scope.
    this.f = tf.keep(tf.tensor2d(values, [this.rows, this.dim]));
    this.fT = tf.keep(tf.tidy(() => tf.transpose(this.f) as tf.Tensor2D));
  }

  /** F · w ([rows, out]); differentiable in w only. */
  project(w: tf.Tensor): tf.Tensor2D {
    const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const wIn = args[0] as tf.Tensor2D;
      return {
        value: tf.matMul(this.f, wIn),
        gradFunc: (dy: tf.Tensor) => [tf.matMul(this.fT, dy as tf.Tensor2D)]
      };
    });
    return op(w) as tf.Tensor2D;
  }

  dispose(): void {
    this.f.dispose();
    this.fT.dispose();
  }
}

/** The fused item table: ID embedding + F · W_v (rows of items without an image are the ID embedding alone). */
export function fusedItemTable(itemEmb: tf.Tensor, features: FrozenFeatures, visProj: tf.Tensor): tf.Tensor2D {
  return tf.add(itemEmb, features.project(visProj)) as tf.Tensor2D;
}
