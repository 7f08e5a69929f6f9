// The learning-rate schedule the backbone's pretraining and the LLM recommenders share (LLaVA's recipe):
// linear warm-up, then cosine decay to 10 % of the peak at the last update.

/** The learning rate of 0-based update `step` out of `totalSteps`: linear warm-up, then cosine to 10 % of `peak`. */
export function learningRateAt(step: number, totalSteps: number, peak: number, warmup: number): number {
  if (warmup > 0 && step < warmup) return (peak * (step + 1)) / warmup;
  const span = Math.max(1, totalSteps - warmup);
  const progress = Math.min(1, (step - warmup) / span);
  return peak * (0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * progress)));
}
