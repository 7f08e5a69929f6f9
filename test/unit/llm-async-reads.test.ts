// The LLM baselines read their decoding and prefix-tree scoring through one implementation run two ways
// (tensor/read-steps.ts): synchronously (dataSync, the CPU path as before) and asynchronously (await data(),
// the only read webgpu has in Node). On a CPU backend both must give bit-identical results and free the same
// tensors; webgpu-models.test.ts holds the asynchronous path on webgpu to the cpu backend.
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test } from 'vitest';
import { parseModelConfig } from '../../src/shared/api';
import { splitInput } from '../../src/core/data/types';
import { LlaraModel, type LlaraConfig } from '../../src/core/models/llara';
import { initLlara } from '../../src/core/models/llara-params';
import { TallrecModel, initTextLora, textLoraShapes, type TallrecConfig } from '../../src/core/models/tallrec';
import { Vip5Model, type Vip5Config } from '../../src/core/models/vip5';
import { runReadsAsync, runReadsSync, type ReadSteps } from '../../src/core/tensor/read-steps';
import { Rng } from '../../src/core/tensor/rng';
import { syntheticData, tinyBackboneSuite, withLiveLora } from './almostrec-fixture';

const data = syntheticData();
const suite = tinyBackboneSuite(data, 'llm-async-reads-');
const base = { backboneId: 1, epochs: 1, batchSize: 8, learningRate: 1e-2, warmupSteps: 0, historyLength: 4, seed: 7 };
const histories = [data.users[0].items.subarray(0, 5), Int32Array.from([20, 21]), Int32Array.from([29])];

/** Runs `fn` on a model made by `make`, then disposes it. */
async function withModel<M extends { dispose(): void }>(make: () => M, fn: (m: M) => Promise<void>): Promise<void> {
  const m = make();
  try {
    await fn(m);
  } finally {
    m.dispose();
  }
}

/** Runs `fn` and checks that it leaves no tensor behind. */
async function noLeak(fn: () => Promise<void>): Promise<void> {
  const before = tf.memory().numTensors;
  await fn();
  expect(tf.memory().numTensors).toBe(before);
}

describe('read steps', () => {
  function* twoReads(log: string[]): ReadSteps<number> {
    const a = tf.tensor1d([1, 2]);
    const b = tf.tensor1d([10]);
    try {
      const [x, y] = yield [a, b];
      log.push('read');
      return x[0] + x[1] + y[0];
    } finally {
      tf.dispose([a, b]);
      log.push('freed');
    }
  }

  /** A read that fails (the tensor is already disposed), thrown back in at the yield. */
  function* failingRead(log: string[]): ReadSteps<number> {
    const t = tf.scalar(1);
    t.dispose();
    try {
      yield [t];
      log.push('went on');
      return 0;
    } finally {
      log.push('freed');
    }
  }

  test('both drivers hand back the yielded tensors\' values in order; a failed read runs the computation\'s finally and throws', async () => {
    const sync: string[] = [];
    const async: string[] = [];
    expect(runReadsSync(twoReads(sync))).toBe(13);
    expect(await runReadsAsync(twoReads(async))).toBe(13);
    expect(sync).toEqual(['read', 'freed']);
    expect(async).toEqual(sync);
    const failed: string[] = [];
    expect(() => runReadsSync(failingRead(failed))).toThrow(/disposed/);
    await expect(runReadsAsync(failingRead(failed))).rejects.toThrow(/disposed/);
    expect(failed).toEqual(['freed', 'freed']);
  });
});

describe('sync and async reads agree bit for bit on a CPU backend', () => {
  test('TALLRec: the full ranking over the prefix tree of titles', async () => {
    const config = parseModelConfig('tallrec', { ...base, maxTitleTokens: 4 }) as unknown as TallrecConfig;
    const ctx = { data, backbone: { ...suite.inputs, itemTable: null, visual: null } };
    const values = withLiveLora(initTextLora(textLoraShapes(config, ctx.backbone), new Rng(3)), 5);
    await withModel(
      () => new TallrecModel(config, ctx, values),
      async (m) => {
        const sync = m.scoreBatch(histories);
        await noLeak(async () => expect(await m.scoreBatchAsync(histories)).toEqual(sync));
        expect(sync.slice(1, data.numItems + 1).every(Number.isFinite)).toBe(true);
      }
    );
  });

  test('LLaRA: the full ranking, the greedy answer among candidates and the case study', async () => {
    const config = parseModelConfig('llara', { ...base, seqRunId: 2, candidates: 6, maxTitleTokens: 4, curriculumEpochs: 0 }) as unknown as LlaraConfig;
    const ctx = { data, backbone: { ...suite.inputs, visual: null } };
    await withModel(
      () => new LlaraModel(config, ctx, withLiveLora(initLlara(config, ctx, new Rng(3)), 5)),
      async (m) => {
        const sync = m.scoreBatch(histories);
        await noLeak(async () => expect(await m.scoreBatchAsync(histories)).toEqual(sync));
        for (const u of data.users.slice(0, 3)) {
          const { history, target } = splitInput(u, 'test');
          const candidates = m.evalCandidates(history, target);
          const answer = m.answer(history, candidates);
          await noLeak(async () => expect(await m.answerAsync(history, candidates)).toEqual(answer));
          const label = (i: number) => `#${i}`;
          const c = m.caseStudy(history, target, label);
          await noLeak(async () => expect(await m.caseStudyAsync(history, target, label)).toEqual(c));
          expect(c.generated).toBe(answer.text);
        }
      }
    );
  });

  test('VIP5: the full ranking over the prefix tree of IDs, recommend and constrained greedy decoding', async () => {
    const config = parseModelConfig('vip5', base) as unknown as Vip5Config;
    const ctx = { data, backbone: suite.inputs };
    const values = withLiveLora(initTextLora(textLoraShapes(config, ctx.backbone), new Rng(3)), 5);
    await withModel(
      () => new Vip5Model(config, ctx, values),
      async (m) => {
        const sync = m.scoreBatch(histories);
        await noLeak(async () => expect(await m.scoreBatchAsync(histories)).toEqual(sync));
        for (const h of histories) {
          const top = m.recommend(h, 5);
          await noLeak(async () => expect(await m.recommendAsync(h, 5)).toEqual(top));
          const greedy = m.decodeGreedy(h);
          await noLeak(async () => expect(await m.decodeGreedyAsync(h)).toEqual(greedy));
        }
      }
    );
  });
});
