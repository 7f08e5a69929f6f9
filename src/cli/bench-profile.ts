// `bench <model> --profile`: where one training step's time goes, per tfjs kernel, measured on the model
// built exactly as the training loop builds it (train/train-model.ts) before the real training starts.
import * as tf from '@tensorflow/tfjs-core';
import { parseModelConfig, type TrainingConfig } from '../shared/api';
import type { ModelContext, ModelSpec } from '../core/train/model-spec';
import { Rng } from '../core/tensor/rng';

export interface KernelSample {
  name: string;
  inputShapes: readonly (readonly number[] | null)[];
  ms: number;
}

export interface ProfileRow {
  key: string;
  ms: number;
  calls: number;
  /** Of the leaf kernels' total. */
  share: number;
}

export interface ProfileSummary {
  /** Leaf kernels only. */
  totalMs: number;
  byName: ProfileRow[];
  byShape: ProfileRow[];
  /** customGrad entries: their time is that of kernels listed on their own, so it is left out of the totals. */
  wrappers: { calls: number; ms: number };
}

function rows(samples: readonly KernelSample[], key: (k: KernelSample) => string, totalMs: number): ProfileRow[] {
  const agg = new Map<string, { ms: number; calls: number }>();
  for (const k of samples) {
    const e = agg.get(key(k)) ?? { ms: 0, calls: 0 };
    e.ms += k.ms;
    e.calls++;
    agg.set(key(k), e);
  }
  return [...agg]
    .map(([k, e]) => ({ key: k, ms: e.ms, calls: e.calls, share: totalMs > 0 ? e.ms / totalMs : 0 }))
    .sort((a, b) => b.ms - a.ms || a.key.localeCompare(b.key));
}

const shapeKey = (k: KernelSample) => `${k.name} ${JSON.stringify(k.inputShapes)}`;

/**
 * Totals per kernel name and per kernel + input shapes. tf.profile lists a customGrad op as one entry (named
 * after the enclosing scope, e.g. "forward") AND the kernels its forward function ran, so the entries
 * `isWrapper` picks out (not registered kernels) would count that time twice.
 */
export function aggregateKernels(samples: readonly KernelSample[], isWrapper: (name: string) => boolean): ProfileSummary {
  const leaves = samples.filter((k) => !isWrapper(k.name));
  const wrapped = samples.filter((k) => isWrapper(k.name));
  const totalMs = leaves.reduce((a, k) => a + k.ms, 0);
  return {
    totalMs,
    byName: rows(leaves, (k) => k.name, totalMs),
    byShape: rows(leaves, shapeKey, totalMs),
    wrappers: { calls: wrapped.length, ms: wrapped.reduce((a, k) => a + k.ms, 0) }
  };
}

export interface StepTiming {
  steps: number;
  /** Wall time of the profiled steps together. */
  wallMs: number;
  warmupMs: number;
}

function table(title: string, list: readonly ProfileRow[], top: number): string[] {
  const head = `${title} (top ${Math.min(top, list.length)} of ${list.length}):`;
  const lines = list.slice(0, top).map((r) => `${r.ms.toFixed(1).padStart(10)} ${(r.share * 100).toFixed(1).padStart(6)}% ${String(r.calls).padStart(6)}  ${r.key}`);
  return [head, `${'ms'.padStart(10)} ${'share'.padStart(7)} ${'calls'.padStart(6)}  kernel`, ...lines];
}

/** The printed report; ms and calls are totals over the profiled steps. */
export function formatProfile(label: string, s: ProfileSummary, t: StepTiming, topNames = 20, topShapes = 15): string {
  const perStep = (ms: number) => (ms / t.steps).toFixed(1);
  const coverage = t.wallMs > 0 ? ` (${((s.totalMs / t.wallMs) * 100).toFixed(1)}% of wall)` : '';
  const header = [
    `profile ${label}: ${t.steps} step(s) after 1 warm-up step (${t.warmupMs.toFixed(1)} ms); wall ${perStep(t.wallMs)} ms/step, kernels ${perStep(s.totalMs)} ms/step${coverage}`,
    `customGrad wrapper entries left out of the totals (their kernels are counted): ${s.wrappers.calls} calls, ${s.wrappers.ms.toFixed(1)} ms`
  ];
  return [...header, ...table('by kernel', s.byName, topNames), ...table('by kernel and input shapes', s.byShape, topShapes)].join('\n');
}

/**
 * Builds the model as trainModel does (config parsed, Rng(seed), init, build, beginEpoch), runs one warm-up
 * step, then profiles `steps` steps of loss + gradients (no optimizer update); disposes the model.
 */
export async function profileSteps(spec: ModelSpec<TrainingConfig>, ctx: ModelContext, config: Record<string, number>, steps: number): Promise<string> {
  const cfg = parseModelConfig(spec.kind, config) as unknown as TrainingConfig;
  const rng = new Rng(cfg.seed);
  const model = spec.build(cfg, ctx, spec.init(cfg, ctx, rng));
  try {
    const perEpoch = model.beginEpoch(rng);
    if (!(perEpoch >= 1)) throw new Error(`model ${spec.kind}: no training examples to profile`);
    const vars = [...model.params.values()];
    const step = (s: number): void => {
      const { value, grads } = tf.variableGrads(() => model.stepLoss(s % perEpoch, rng), vars);
      value.dataSync();
      tf.dispose([value, ...Object.values(grads)]);
    };
    const w0 = performance.now();
    step(0);
    const warmupMs = performance.now() - w0;
    let wallMs = 0;
    const info = await tf.profile(() => {
      const t0 = performance.now();
      for (let s = 1; s <= steps; s++) step(s);
      wallMs = performance.now() - t0;
    });
    // tf.profile has awaited every kernel's time; a backend that failed to time one reports {error}.
    const samples: KernelSample[] = info.kernels.map((k) => ({ name: k.name, inputShapes: k.inputShapes, ms: typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0 }));
    const backend = tf.getBackend();
    const summary = aggregateKernels(samples, (name) => tf.getKernel(name, backend) === undefined);
    return formatProfile(`${spec.kind} (${backend})`, summary, { steps, wallMs, warmupMs });
  } finally {
    model.dispose();
  }
}
