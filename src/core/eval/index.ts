export { metricsFromRanks } from './metrics';
export { evaluate, rankTarget, type Scorer, type EvaluateOptions, type EvaluationResult } from './evaluator';
