// The tiny compact backbone the pretraining tests share (one 32-wide layer, 2 × 2 grids): small enough to
// pretrain a few steps in a second on any backend. Each test sets its own steps, batch and checkpoints.
import type { PretrainParams } from '../../src/core/backbone/pretrain';

type RunShape = Pick<PretrainParams, 'maxTokens' | 'batchSize' | 'stage0Steps' | 'stage1Steps' | 'stage2Steps' | 'checkpointEvery' | 'heldOutPercent'>;

export function tinyPretrainParams(run: RunShape): PretrainParams {
  return {
    hiddenSize: 32,
    numLayers: 1,
    numHeads: 2,
    numKvHeads: 1,
    intermediateSize: 64,
    gridSize: 2,
    stage0LearningRate: 1e-2,
    stage1LearningRate: 1e-2,
    stage2LearningRate: 1e-2,
    warmupSteps: 1,
    seed: 7,
    ...run
  };
}
