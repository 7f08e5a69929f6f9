// ALMOSTREC's parameters and frozen tables, shared by the model (almostrec.ts) and its export
// (almostrec-export.ts): names and shapes in checkpoint order, and M as the model sees it.
import { loraModuleShapes } from '../backbone/lora';
import { Rng } from '../tensor/rng';
import type { BackboneInputs, ModelContext } from '../train/model-spec';
import { loraConfigOf, tokenPoolK, type AlmostrecConfig } from './almostrec-config';

export const MODEL = 'ALMOSTREC';

export function backboneInputsOf(ctx: ModelContext): BackboneInputs & { itemTable: NonNullable<BackboneInputs['itemTable']> } {
  const b = ctx.backbone;
  if (!b) throw new Error(`${MODEL} needs a backbone and a sequential run's item table (ModelContext.backbone)`);
  if (!b.itemTable) throw new Error(`${MODEL} needs a sequential run's item table (seqRunId), none was loaded`);
  return { ...b, itemTable: b.itemTable };
}

/** The LoRA modules a config adapts, [out, in] each, in a fixed order (empty with useLora = 0). */
export function loraModules(config: AlmostrecConfig, inputs: BackboneInputs): Map<string, [number, number]> {
  const lora = loraConfigOf(config);
  return lora ? loraModuleShapes(inputs.backbone.config, lora) : new Map();
}

export const loraName = (path: string, factor: 'A' | 'B'): string => `lora.${path}.${factor}`;

/** Parameter names and shapes: W^B [d_i, d_m], W^T [d_m, numItems + 1], then each LoRA module's A [r, in] and B [out, r]. */
export function almostrecParamShapes(config: AlmostrecConfig, ctx: ModelContext): [string, number[]][] {
  const inputs = backboneInputsOf(ctx);
  tokenPoolK(config.visualTokens);
  if (config.useImages && !inputs.visual) throw new Error(`${MODEL}: useImages = 1 but no visual tokens were loaded`);
  const dm = inputs.backbone.config.text.hiddenSize;
  const di = inputs.itemTable.dim;
  const out: [string, number[]][] = [
    ['w_b', [di, dm]],
    ['w_t', [dm, ctx.data.numItems + 1]]
  ];
  for (const [path, [outDim, inDim]] of loraModules(config, inputs)) {
    out.push([loraName(path, 'A'), [config.loraRank, inDim]], [loraName(path, 'B'), [outDim, config.loraRank]]);
  }
  return out;
}

/**
 * The frozen random table that replaces M when pretrainedIds = 0: N(0, 0.02), row 0 zero, drawn from the
 * config's seed alone, so every rebuild (training, scoring, export) gets the same table without storing it.
 */
export function randomItemTable(numItems: number, dim: number, seed: number): Float32Array {
  const rng = new Rng((seed ^ 0x6d5f7264) >>> 0);
  const out = new Float32Array((numItems + 1) * dim);
  for (let i = dim; i < out.length; i++) out[i] = rng.normal() * 0.02;
  return out;
}

/** M as the model uses it: the sequential run's table, or its random stand-in. */
export function itemTableValues(config: AlmostrecConfig, ctx: ModelContext): Float32Array {
  const { itemTable } = backboneInputsOf(ctx);
  const expected = (ctx.data.numItems + 1) * itemTable.dim;
  if (itemTable.values.length !== expected) throw new Error(`${MODEL}: item table has ${itemTable.values.length} values, expected ${ctx.data.numItems + 1} × ${itemTable.dim}`);
  return config.pretrainedIds ? itemTable.values : randomItemTable(ctx.data.numItems, itemTable.dim, config.seed);
}
