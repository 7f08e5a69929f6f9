// LLaRA's hyper-parameters and parameters, shared by the model (llara.ts) and its export (llara-export.ts):
// the MLP projector that turns a frozen item embedding M(i) into an ID token, then LoRA on the language model
// (TALLRec's, tallrec.ts). Everything else — the backbone, its head and M — stays frozen.
import type { TrainingConfig } from '../../shared/api';
import type { Rng } from '../tensor/rng';
import type { BackboneInputs, ModelContext } from '../train/model-spec';
import { uniformValues } from './cf/tables';
import { initTextLora, textLoraShapes } from './tallrec';

export const MODEL = 'LLaRA';

export interface LlaraConfig extends TrainingConfig {
  warmupSteps: number;
  gradAccum: number;
  lrSchedule: number;
  backboneId: number;
  seqRunId: number;
  historyLength: number;
  /** Items a prompt lists (training and LLaRA's HR@1: the target among them). */
  candidates: number;
  samplesPerUser: number;
  maxTitleTokens: number;
  /** Epochs over which the share of hybrid prompts rises from 0 to 1 (capped at `epochs`); 0: hybrid from the start. */
  curriculumEpochs: number;
  loraRank: number;
  loraAlpha: number;
  loraDropout: number;
  loraTargets: number;
}

export type LlaraInputs = BackboneInputs & { itemTable: NonNullable<BackboneInputs['itemTable']> };

export function llaraInputs(ctx: ModelContext): LlaraInputs {
  const b = ctx.backbone;
  if (!b) throw new Error(`${MODEL} needs a backbone and a sequential run's item table (ModelContext.backbone)`);
  if (!b.itemTable) throw new Error(`${MODEL} needs a sequential run's item table (seqRunId), none was loaded`);
  const expected = (ctx.data.numItems + 1) * b.itemTable.dim;
  if (b.itemTable.values.length !== expected) throw new Error(`${MODEL}: item table has ${b.itemTable.values.length} values, expected ${ctx.data.numItems + 1} × ${b.itemTable.dim}`);
  return { ...b, itemTable: b.itemTable };
}

/**
 * The projector's parameters, as LLaRA's MlpProjector (Linear(d_i, d_m), GELU, Linear(d_m, d_m)) with the
 * weights stored [in, out] (x · W + b).
 */
export const PROJECTOR = { w1: 'projector.w1', b1: 'projector.b1', w2: 'projector.w2', b2: 'projector.b2' } as const;

function projectorShapes(inputs: LlaraInputs): [string, number[]][] {
  const di = inputs.itemTable.dim;
  const dm = inputs.backbone.config.text.hiddenSize;
  return [
    [PROJECTOR.w1, [di, dm]],
    [PROJECTOR.b1, [dm]],
    [PROJECTOR.w2, [dm, dm]],
    [PROJECTOR.b2, [dm]]
  ];
}

/** Parameter names and shapes: the projector's four, then each LoRA module's A [r, in] and B [out, r]. */
export function llaraParamShapes(config: LlaraConfig, ctx: ModelContext): [string, number[]][] {
  const inputs = llaraInputs(ctx);
  if (!(config.candidates >= 2)) throw new Error(`${MODEL}: candidates ${config.candidates} must be at least 2`);
  return [...projectorShapes(inputs), ...textLoraShapes(config, inputs)];
}

/**
 * The projector as PyTorch's nn.Linear initialises it (weights and biases U(±1/√fan_in)); LoRA as PEFT
 * (A U(±1/√in), B = 0), so training starts from the frozen backbone's own language model.
 */
export function initLlara(config: LlaraConfig, ctx: ModelContext, rng: Rng): Map<string, Float32Array> {
  const inputs = llaraInputs(ctx);
  const values = new Map<string, Float32Array>();
  const di = inputs.itemTable.dim;
  const dm = inputs.backbone.config.text.hiddenSize;
  for (const [name, shape] of projectorShapes(inputs)) {
    const fanIn = name === PROJECTOR.w1 || name === PROJECTOR.b1 ? di : dm;
    values.set(name, uniformValues(shape.reduce((a, b) => a * b, 1), 1 / Math.sqrt(fanIn), rng));
  }
  initTextLora(textLoraShapes(config, inputs), rng, values);
  return values;
}
