// A tiny random compact backbone and a synthetic dataset for the models of the ALMOSTREC family
// (almostrec.test.ts, e4srec.test.ts): users walk through the items in order, odd items have an image.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { compactConfig, COMPACT_IMAGE_TOKEN, initialWeights } from '../../src/core/backbone/compact';
import { llamaTokenizer } from '../../src/core/backbone/tokenizer';
import type { SequenceData } from '../../src/core/data/types';
import { tokenizeTitles } from '../../src/core/models/almostrec-prompt';
import { initBackend } from '../../src/core/tensor/backend';
import { Rng } from '../../src/core/tensor/rng';
import type { BackboneInputs, ModelContext } from '../../src/core/train/model-spec';

export const tokenizer = llamaTokenizer({ imageTokenId: COMPACT_IMAGE_TOKEN });
export const NUM_ITEMS = 30;
export const ITEM_DIM = 8;
export const D_MODEL = 32;
export const TITLES = [
  '',
  ...['Toy Story (1995)', 'Heat (1995)', 'Matrix, The (1999)', 'Babe (1995)', 'Casino (1995)', 'Fargo (1996)', 'Alien (1979)', 'Brazil (1985)', 'Clerks (1994)', 'Ran (1985)'],
  ...Array.from({ length: NUM_ITEMS - 10 }, (_, i) => `Movie ${i + 11} (2000)`)
];

/** Users walk through the items in order (i → i+1, wrapping), so the next item is learnable. */
export function syntheticData(): SequenceData {
  const rng = new Rng(4);
  const users = Array.from({ length: 24 }, (_, u) => {
    const start = rng.int(NUM_ITEMS);
    const items = Int32Array.from({ length: 6 + rng.int(4) }, (_, i) => ((start + i) % NUM_ITEMS) + 1);
    return { userId: u + 1, items, timestamps: Float64Array.from(items, (_, i) => i) };
  });
  return { datasetId: 3, numItems: NUM_ITEMS, itemIds: Int32Array.from({ length: NUM_ITEMS + 1 }, (_, i) => (i ? 100 + i : 0)), users };
}

/** Odd items have an image (tokensPerImage visual tokens each), even ones none. */
export function backboneInputs(tokensPerImage = 1): BackboneInputs & { itemTable: NonNullable<BackboneInputs['itemTable']> } {
  const cfg = compactConfig({ hiddenSize: D_MODEL, numLayers: 1, numHeads: 2, numKvHeads: 1, intermediateSize: 64, gridSize: 2, maxTokens: 64 }, 'test-grid');
  const weights = initialWeights(cfg, 9);
  const rng = new Rng(6);
  const values = new Float32Array((NUM_ITEMS + 1) * ITEM_DIM);
  for (let i = ITEM_DIM; i < values.length; i++) values[i] = rng.normal() * 0.5;
  return {
    backbone: { id: 1, name: 'tiny', path: '/backbones/tiny', config: cfg, weights },
    tokenizer,
    datasetName: 'synthetic',
    itemTable: { values, dim: ITEM_DIM, runId: 2, model: 'sasrec', path: '/runs/2/item_embeddings.safetensors' },
    titleTokens: tokenizeTitles(tokenizer, TITLES),
    visual: {
      cacheId: 'backbone:1/k1',
      tokensPerImage,
      dim: D_MODEL,
      tokens: Array.from({ length: NUM_ITEMS + 1 }, (_, i) => (i % 2 === 1 ? Float32Array.from({ length: tokensPerImage * D_MODEL }, () => rng.normal()) : null))
    },
    dispose: () => {
      for (const t of weights.values()) t.dispose();
    }
  };
}

/** What a test file of a model on the tiny backbone shares: the inputs, the model context and a scratch folder. */
export interface TinySuite {
  inputs: ReturnType<typeof backboneInputs>;
  ctx: ModelContext;
  dir: string;
}

/**
 * Registers the suite's setup and teardown (wasm backend, the tiny backbone, a temp folder) and returns the
 * object they fill; `context` shapes the model context from the inputs (e.g. no M for a model that reads none).
 */
export function tinyBackboneSuite(
  data: SequenceData,
  prefix: string,
  context: (inputs: ReturnType<typeof backboneInputs>) => BackboneInputs = (i) => i
): TinySuite {
  const suite = {} as TinySuite;
  beforeAll(async () => {
    await initBackend('wasm');
    suite.inputs = backboneInputs();
    suite.ctx = { data, backbone: context(suite.inputs) };
    suite.dir = mkdtempSync(join(tmpdir(), prefix));
  });
  afterAll(() => {
    suite.inputs.dispose();
    rmSync(suite.dir, { recursive: true, force: true });
  });
  return suite;
}

/** Random non-zero LoRA B factors (PEFT starts them at 0), so LoRA takes part in every check of a test. */
export function withLiveLora(values: Map<string, Float32Array>, seed: number): Map<string, Float32Array> {
  const rng = new Rng(seed);
  for (const [name, v] of values) if (name.endsWith('.B')) for (let i = 0; i < v.length; i++) v[i] = rng.normal() * 0.05;
  return values;
}
