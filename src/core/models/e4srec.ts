// E4SRec (Li et al. 2023, "E4SRec: An Elegant Effective Efficient Extensible Solution of Large Language
// Models for Sequential Recommendation") on the workbench's backbone (DESIGN §6). The LLM reads an
// instruction, then the history as ID tokens — a pre-trained sequential model's frozen item embeddings
// through a linear input adapter — and a linear head over all items reads the last hidden state; softmax
// cross-entropy, LoRA on the frozen decoder. No images and no titles.
//
// That is ALMOSTREC's model with the content removed: its ID tokens are E4SRec's input adapter (W^B), its W^T
// E4SRec's prediction layer. So E4SRec runs on AlmostrecModel with images off, no titles and its own
// instruction; with nothing between two ID tokens the interleaved and concat layouts are the same sequence
// (<s> instruction S(i1) … S(iL)), and every ID token is trained, as SASRec trains every position. Sharing
// the code keeps the comparison with ALMOSTREC to the inputs alone: same optimiser, windows, LoRA and head.
import type { TrainingConfig } from '../../shared/api';
import type { ModelSpec } from '../train/model-spec';
import { AlmostrecModel, almostrecSpec } from './almostrec';
import { llmOptimizer, type AlmostrecConfig } from './almostrec-config';
import { exportAlmostrec, type AlmostrecVariant } from './almostrec-export';
import { almostrecParamShapes } from './almostrec-params';
import type { PromptStyle } from './almostrec-style';

export interface E4srecConfig extends TrainingConfig {
  warmupSteps: number;
  gradAccum: number;
  lrSchedule: number;
  backboneId: number;
  seqRunId: number;
  historyLength: number;
  loraRank: number;
  loraAlpha: number;
  loraDropout: number;
  loraTargets: number;
  initOutputFromIds: number;
}

/** E4SRec's instruction: the task only, the history follows as ID tokens. */
export const E4SREC_TASK = 'Given the IDs of the items a user interacted with, in order, predict the next one. History:';
export const E4SREC_PROMPT: PromptStyle = { task: E4SREC_TASK, titles: false };

/** The same model as ALMOSTREC's config: images off, instruction on (titles off through E4SREC_PROMPT), LoRA on, M pretrained. */
export function e4srecAsAlmostrec(config: E4srecConfig): AlmostrecConfig {
  return {
    ...config,
    visualTokens: 1,
    samplesPerUser: 1,
    maxTitleTokens: 1,
    promptTitles: 0,
    idDropout: 0,
    windowPhase: 0,
    useLora: 1,
    useImages: 0,
    useText: 1,
    pretrainedIds: 1,
    layout: 1
  };
}

export const E4SREC_VARIANT: AlmostrecVariant = {
  kind: 'e4srec',
  asAlmostrec: (c) => e4srecAsAlmostrec(c as unknown as E4srecConfig),
  style: E4SREC_PROMPT
};

export const e4srecSpec: ModelSpec<E4srecConfig> = {
  kind: 'e4srec',
  needsBackbone: true,
  paramShapes: (config, ctx) => almostrecParamShapes(e4srecAsAlmostrec(config), ctx),
  init: (config, ctx, rng) => almostrecSpec.init(e4srecAsAlmostrec(config), ctx, rng),
  build: (config, ctx, values) => new AlmostrecModel(e4srecAsAlmostrec(config), ctx, values, E4SREC_PROMPT),
  optimizer: llmOptimizer,
  exportArtifacts: (checkpointPath, ctx) => exportAlmostrec(checkpointPath, ctx, E4SREC_VARIANT)
};
