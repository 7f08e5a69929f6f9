// The Backbones view's pure parts: the pretraining form built from the shared catalogue, and the loss
// curve merged from the stored history and live progress events. No DOM, no runes: unit tests import it.
import { PRETRAIN_PARAMS, PRETRAIN_STAGES, pretrainDefaults, type PretrainPoint, type PretrainStage } from '../../../shared/backbones';
import { configField, type ConfigField } from './models';

export const PRETRAIN_FIELDS: ConfigField<Record<string, number>>[] = PRETRAIN_PARAMS.map(configField);
export const PRETRAIN_DEFAULTS: Record<string, number> = pretrainDefaults();

/** What a progress event tells about one step (the job reports {loss, stage, step, learningRate}). */
export interface LivePoint {
  step: number;
  stage: PretrainStage;
  loss: number;
}

/** The step a progress event's metrics describe, or null when they are not a training step's. */
export function liveFromMetrics(m: Record<string, number> | undefined): LivePoint | null {
  if (!m || !Number.isInteger(m.step) || !Number.isFinite(m.loss)) return null;
  const stage = PRETRAIN_STAGES.find((s) => s === m.stage);
  return stage === undefined ? null : { step: m.step, stage, loss: m.loss };
}

/**
 * Appends a live point. A step at or before the last one means a resumed job went back to its checkpoint:
 * the points from there on are being redone, so they are dropped.
 */
export function appendLive(points: readonly LivePoint[], p: LivePoint): LivePoint[] {
  const last = points.at(-1);
  const kept = last && p.step <= last.step ? points.filter((q) => q.step < p.step) : points;
  return [...kept, p];
}

/**
 * The curve to draw: stored history up to the first live step, then the live points. History beyond it is
 * what a resumed job is redoing (the catalog drops those rows itself when the job truncates).
 */
export function lossCurve(history: readonly PretrainPoint[], live: readonly LivePoint[]): LivePoint[] {
  const firstLive = live.length > 0 ? live[0].step : Infinity;
  const stored = history.filter((h) => h.step < firstLive).map((h) => ({ step: h.step, stage: h.stage, loss: h.loss }));
  return [...stored, ...live];
}
