// Parameter plumbing shared by GRU4Rec and NextItNet: checked creation of named variables from value arrays
// and the PyTorch-style initialisers their RecBole references use.
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../../tensor/rng';

// Variable names must be unique per engine; several models may coexist (tests, comparisons).
let modelCounter = 0;

/**
 * Variables for `shapes` (in that order) from `values`; a missing or wrongly sized value (e.g. a checkpoint
 * of another configuration) is an error naming the model and the parameter.
 */
export function createVariables(model: string, shapes: [string, number[]][], values: Map<string, Float32Array>): Map<string, tf.Variable> {
  for (const [name, dims] of shapes) {
    const v = values.get(name);
    if (!v) throw new Error(`${model}: missing parameter "${name}"`);
    const expected = dims.reduce((a, b) => a * b, 1);
    if (v.length !== expected) throw new Error(`${model}: parameter "${name}" has ${v.length} values, expected [${dims}]`);
  }
  const prefix = `${model.toLowerCase()}${++modelCounter}/`;
  const params = new Map<string, tf.Variable>();
  // tidy frees each initial-value tensor; the variable keeps its own copy.
  for (const [name, dims] of shapes) params.set(name, tf.tidy(() => tf.variable(tf.tensor(values.get(name)!, dims), true, prefix + name)));
  return params;
}

export function disposeVariables(params: Map<string, tf.Variable>): void {
  for (const v of params.values()) v.dispose();
  params.clear();
}

/** U(−bound, bound). */
export function uniformValues(size: number, bound: number, rng: Rng): Float32Array {
  const v = new Float32Array(size);
  for (let i = 0; i < size; i++) v[i] = (rng.next() * 2 - 1) * bound;
  return v;
}

/** N(0, std²). */
export function normalValues(size: number, std: number, rng: Rng): Float32Array {
  const v = new Float32Array(size);
  for (let i = 0; i < size; i++) v[i] = rng.normal() * std;
  return v;
}

/** Inverted dropout with a mask drawn from `rng`; identity when rng is null (eval) or p = 0. */
export function dropout(x: tf.Tensor, p: number, rng: Rng | null): tf.Tensor {
  if (!rng || p <= 0) return x;
  return tf.mul(x, tf.tensor(rng.dropoutMask(tf.util.sizeFromShape(x.shape), p), x.shape));
}

/** A copy of the item table (rows × dim, row 0 forced to zero: it is padding) for ALMOSTREC's M. */
export function itemTable(values: Map<string, Float32Array>, name: string, dim: number, model: string): { table: Float32Array; dim: number } {
  const v = values.get(name);
  if (!v) throw new Error(`${model}: no "${name}" among the values`);
  if (v.length === 0 || v.length % dim !== 0) throw new Error(`${model}: "${name}" has ${v.length} values, not a multiple of embedding size ${dim}`);
  const table = v.slice();
  table.fill(0, 0, dim);
  return { table, dim };
}
