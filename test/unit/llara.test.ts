// LLaRA on the tiny random backbone of almostrec-fixture.ts: its prompts (golden strings, text-only and
// hybrid), its parameters (LoRA and the projector only: the backbone and M stay bit-identical), its loss
// against a plain full forward, full ranking by title likelihood against per-title full forwards (never
// conditioned on a target), the curriculum, LLaRA's own HR@1 with its valid ratio, bit-exact resume and the
// exported PEFT adapter, projector and manifest.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { parseModelConfig } from '../../src/shared/api';
import { readPeftAdapter } from '../../src/core/backbone/peft-adapter';
import { splitInput, trainPart } from '../../src/core/data/types';
import { renderPieces, type Piece } from '../../src/core/models/almostrec-prompt';
import { LlaraModel, curriculumProbability, llaraSpec, type LlaraConfig, type LlaraExample } from '../../src/core/models/llara';
import { llaraCandidateEval, type LlaraAnswerer } from '../../src/core/models/llara-eval';
import { LLARA_MANIFEST_FILE, LLARA_TENSORS_FILE } from '../../src/core/models/llara-export';
import { PROJECTOR } from '../../src/core/models/llara-params';
import { LLARA_PROMPT, llaraAnswer, matchCandidate } from '../../src/core/models/llara-prompt';
import { CancelledError } from '../../src/core/progress';
import { tf } from '../../src/core/tensor/backend';
import { Rng } from '../../src/core/tensor/rng';
import { readSafetensors } from '../../src/core/tensor/safetensors';
import { CHECKPOINT_FILE, trainModel } from '../../src/core/train/train-model';
import { D_MODEL, ITEM_DIM, NUM_ITEMS, syntheticData, tokenizer, tinyBackboneSuite, withLiveLora } from './almostrec-fixture';

const config = (over: Partial<LlaraConfig> = {}): LlaraConfig =>
  parseModelConfig('llara', {
    backboneId: 1,
    seqRunId: 2,
    epochs: 1,
    batchSize: 8,
    learningRate: 1e-2,
    warmupSteps: 0,
    historyLength: 4,
    candidates: 6,
    maxTitleTokens: 4,
    curriculumEpochs: 0,
    seed: 7,
    ...over
  }) as unknown as LlaraConfig;

const data = syntheticData();
const suite = tinyBackboneSuite(data, 'llara-unit-', (i) => ({ ...i, visual: null }));

/** A model whose LoRA B factors are non-zero (so LoRA takes part in every check), from seed `seed`. */
function build(c: LlaraConfig, seed = 3): LlaraModel {
  return llaraSpec.build(c, suite.ctx, withLiveLora(llaraSpec.init(c, suite.ctx, new Rng(seed)), seed + 1)) as LlaraModel;
}

function withModel<T>(c: LlaraConfig, f: (m: LlaraModel) => T): T {
  const m = build(c);
  try {
    return f(m);
  } finally {
    m.dispose();
  }
}

type Llava = { forward(i: object): { hidden: tf.Tensor; logits?: tf.Tensor } };
const llavaOf = (m: LlaraModel): Llava => (m as unknown as { llava: Llava }).llava;

/** log-softmax rows of the backbone's logits for one whole sequence of pieces (eval mode, no shared prefix, no padding). */
function fullLogProbs(m: LlaraModel, pieces: Piece[]): number[][] {
  return tf.tidy(() => {
    const { embeds } = m.embedPieces([pieces]);
    const { logits } = llavaOf(m).forward({ inputsEmbeds: embeds, logits: 'all' });
    return tf.logSoftmax(tf.squeeze(logits!, [0])).arraySync() as number[][];
  });
}

const textPieces = (tokens: number[]): Piece[] => tokens.map((token) => ({ kind: 'text', token }));

describe('prompt', () => {
  test('golden: <s>, the history (last L items) and the candidates, each item its title cut to maxTitleTokens and in hybrid prompts its ID token', () => {
    withModel(config(), (m) => {
      // Items 1…5: "Toy Story (1995)", "Heat (1995)", "Matrix, The (1999)", "Babe (1995)", "Casino (1995)" — years dropped, articles moved.
      const history = Int32Array.from([7, 1, 3, 4, 2]); // the first falls outside historyLength 4
      const candidates = [5, 4];
      const hybrid = m.promptPieces(history, candidates, true);
      expect(renderPieces(hybrid, tokenizer)).toBe(
        '<s> This user has interacted with, in order: Toy Story [ID:1] ; The Matrix [ID:3] ; Babe [ID:4] ; Heat [ID:2] . ' +
          'Choose the next one from these candidates: Casino [ID:5] ; Babe [ID:4] . Answer:'
      );
      const text = m.promptPieces(history, candidates, false);
      expect(text.every((p) => p.kind === 'text')).toBe(true);
      const ids = text.map((p) => (p as { token: number }).token);
      expect(ids[0]).toBe(tokenizer.bosId);
      expect(tokenizer.decode(ids)).toBe(
        `${LLARA_PROMPT.history} Toy Story ; The Matrix ; Babe ; Heat . ${LLARA_PROMPT.candidates} Casino ; Babe . ${LLARA_PROMPT.answer}`
      );
      // The answer: the target's title, then ";".
      expect(tokenizer.decode(llaraAnswer(3, m.tokens))).toBe('The Matrix ;');
      expect(m.prefixTokens).toEqual(ids.slice(0, m.prefixTokens.length));
    });
  });

  test("LLaRA's reading of an answer: exactly one candidate's title in the text", () => {
    const titles = ['Toy Story', 'Heat', 'Toy Story 2'];
    expect(matchCandidate(' heat ', titles)).toBe(1);
    expect(matchCandidate('HEAT wave', titles)).toBe(1);
    expect(matchCandidate('Toy Story 2', titles)).toBeNull(); // "Toy Story" occurs too: ambiguous
    expect(matchCandidate('Babe', titles)).toBeNull();
    expect(matchCandidate('', titles)).toBeNull();
  });
});

describe('parameters and training', () => {
  test('only LoRA (q, v) and the projector train: the backbone and M stay bit-identical; the export is a PEFT causal-LM adapter, the projector and a manifest', async () => {
    const c = config();
    expect(llaraSpec.paramShapes(c, suite.ctx)).toEqual([
      [PROJECTOR.w1, [ITEM_DIM, D_MODEL]],
      [PROJECTOR.b1, [D_MODEL]],
      [PROJECTOR.w2, [D_MODEL, D_MODEL]],
      [PROJECTOR.b2, [D_MODEL]],
      ['lora.text.layers.0.self_attn.q_proj.A', [8, D_MODEL]],
      ['lora.text.layers.0.self_attn.q_proj.B', [D_MODEL, 8]],
      ['lora.text.layers.0.self_attn.v_proj.A', [8, D_MODEL]],
      ['lora.text.layers.0.self_attn.v_proj.B', [16, 8]]
    ]);
    const frozen = new Map([...suite.inputs.backbone.weights].map(([n, t]) => [n, t.dataSync().slice()]));
    const m = suite.inputs.itemTable.values.slice();
    const before = tf.memory().numTensors;
    const out = join(suite.dir, 'train');
    const init = llaraSpec.init(c, suite.ctx, new Rng(c.seed));
    const r = await trainModel(llaraSpec, suite.ctx, c, { checkpointDir: out, threads: 1 });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.history[0].loss).toBeGreaterThan(0);
    for (const [n, t] of suite.inputs.backbone.weights) expect(t.dataSync(), n).toEqual(frozen.get(n));
    expect(suite.inputs.itemTable.values).toEqual(m);
    const trained = readSafetensors(join(out, CHECKPOINT_FILE)).tensors;
    expect([...trained.keys()].filter((k) => k.startsWith('param.')).sort()).toEqual(llaraSpec.paramShapes(c, suite.ctx).map(([n]) => `param.${n}`).sort());
    expect(trained.get('param.lora.text.layers.0.self_attn.q_proj.B')!.data.some((v) => v !== 0)).toBe(true);
    for (const name of Object.values(PROJECTOR)) expect(trained.get(`param.${name}`)!.data, name).not.toEqual(init.get(name));

    const artifacts = llaraSpec.exportArtifacts!(r.checkpointPath, suite.ctx);
    expect(artifacts.map((a) => a.kind)).toEqual(['lora_adapter', 'lora_adapter_config', 'llara_tensors', 'llara_manifest']);
    const adapter = readPeftAdapter(join(out, 'lora'));
    expect(adapter.config).toMatchObject({ r: 8, taskType: 'CAUSAL_LM', targetModules: ['q_proj', 'v_proj'] });
    const best = readSafetensors(r.checkpointPath).tensors;
    const tensors = readSafetensors(join(out, LLARA_TENSORS_FILE));
    expect(tensors.tensors.get('mlp_proj.0.weight')!.shape).toEqual([D_MODEL, ITEM_DIM]);
    expect(tensors.tensors.get('mlp_proj.2.weight')!.shape).toEqual([D_MODEL, D_MODEL]);
    // PyTorch's [out, in]: the transpose of the model's [in, out].
    const w1 = best.get(PROJECTOR.w1)!.data;
    expect(tensors.tensors.get('mlp_proj.0.weight')!.data[3 * ITEM_DIM + 5]).toBe(w1[5 * D_MODEL + 3]);
    expect(tensors.tensors.get('mlp_proj.2.bias')!.data).toEqual(best.get(PROJECTOR.b2)!.data);
    expect(tensors.tensors.get('item_ids')!.data).toEqual(data.itemIds);
    const manifest = JSON.parse(readFileSync(join(out, LLARA_MANIFEST_FILE), 'utf8')) as Record<string, unknown>;
    expect(manifest).toMatchObject({
      model: 'llara',
      dataset: { id: data.datasetId, numItems: NUM_ITEMS },
      sequentialRun: { id: 2, model: 'sasrec' },
      backbone: { id: 1, name: 'tiny' },
      prompt: { text: LLARA_PROMPT, candidates: 6 },
      loraAdapter: 'lora'
    });
  });

  test('the loss is the mean cross-entropy of the answer tokens (title and ";") of a plain full forward, in hybrid and text-only prompts', () => {
    withModel(config({ loraDropout: 0 }), (m) => {
      const seqs = data.users.map(trainPart);
      // Two examples of different lengths in one batch: right padding and the shared prefix must not matter.
      const examples: LlaraExample[] = [
        { history: seqs[0].subarray(0, 3), target: seqs[0][3], candidates: Int32Array.from([12, seqs[0][3], 20, 2]) },
        { history: seqs[1].subarray(0, 1), target: seqs[1][1], candidates: Int32Array.from([seqs[1][1], 9, 28, 30, 3, 11]) }
      ];
      for (const hybrid of [true, false]) {
        const got = tf.tidy(() => m.examplesLoss(examples, hybrid, new Rng(1)).loss.dataSync()[0]);
        let sum = 0;
        let count = 0;
        for (const ex of examples) {
          const prompt = m.promptPieces(ex.history, ex.candidates, hybrid);
          const answer = llaraAnswer(ex.target, m.tokens);
          const lp = fullLogProbs(m, [...prompt, ...textPieces(answer)]);
          answer.forEach((token, k) => (sum -= lp[prompt.length + k - 1][token]));
          count += answer.length;
          if (!hybrid) {
            // Text-only: the same as a forward over the token ids themselves.
            const ids = [...prompt.map((p) => (p as { token: number }).token), ...answer];
            const byIds = tf.tidy(() => tf.logSoftmax(tf.squeeze(llavaOf(m).forward({ inputIds: [ids], logits: 'all' }).logits!, [0])).arraySync() as number[][]);
            expect(byIds[prompt.length][answer[1]]).toBeCloseTo(lp[prompt.length][answer[1]], 4);
          }
        }
        expect(got, hybrid ? 'hybrid' : 'text-only').toBeCloseTo(sum / count, 4);
      }
    });
  });

  test('curriculum: the hybrid probability rises per step from 0 to 1 over curriculumEpochs; text-only steps leave the projector without a gradient', () => {
    expect(curriculumProbability(1, 0, 3, 2)).toBe(0);
    expect(curriculumProbability(2, 0, 3, 2)).toBe(0.5);
    expect(curriculumProbability(2, 2, 3, 2)).toBeCloseTo(5 / 6, 12);
    expect(curriculumProbability(3, 0, 3, 2)).toBe(1);
    expect(curriculumProbability(1, 0, 3, 0)).toBe(1);
    withModel(config({ curriculumEpochs: 2, epochs: 4, batchSize: 4 }), (m) => {
      const steps = m.beginEpoch(new Rng(5), 1);
      expect(steps).toBe(6); // 24 users, one target each, batches of 4
      expect(m.isHybridStep(0)).toBe(false);
      const grads = (step: number): string[] =>
        tf.tidy(() => {
          const names = new Map([...m.params].map(([n, v]) => [v.name, n]));
          const { value, grads: g } = tf.variableGrads(() => m.stepLoss(step, new Rng(9)), [...m.params.values()]);
          value.dispose();
          return Object.keys(g).map((k) => names.get(k)!);
        });
      expect(grads(0)).not.toContain(PROJECTOR.w1);
      expect(grads(0)).toContain('lora.text.layers.0.self_attn.q_proj.A');
      m.beginEpoch(new Rng(5), 3);
      for (let s = 0; s < steps; s++) expect(m.isHybridStep(s), `epoch 3 step ${s}`).toBe(true);
      expect(grads(0)).toContain(PROJECTOR.w1);
      // The same rng and epoch give the same examples and draws (a replica, a resumed run).
      const a = new Rng(8);
      m.beginEpoch(a, 2);
      const first = Array.from({ length: steps }, (_, s) => m.isHybridStep(s));
      const ex = m.example(0);
      m.beginEpoch(new Rng(8), 2);
      expect(Array.from({ length: steps }, (_, s) => m.isHybridStep(s))).toEqual(first);
      expect(m.example(0)).toEqual(ex);
      // Candidates: the target and items of no training interaction of the user, once each.
      expect(Array.from(ex.candidates)).toContain(ex.target);
      expect(new Set(ex.candidates).size).toBe(6);
    });
    withModel(config({ curriculumEpochs: 0 }), (m) => {
      const steps = m.beginEpoch(new Rng(5), 1);
      for (let s = 0; s < steps; s++) expect(m.isHybridStep(s)).toBe(true);
    });
  });

  test("a step's shards (the replica's half) combine to the whole step's loss", () => {
    withModel(config({ loraDropout: 0 }), (m) => {
      m.beginEpoch(new Rng(5), 1);
      tf.tidy(() => {
        const whole = m.shardLoss(1, 0, 1, new Rng(2))!;
        const parts = [m.shardLoss(1, 0, 2, new Rng(2))!, m.shardLoss(1, 1, 2, new Rng(2))!];
        expect(parts[0].count + parts[1].count).toBe(whole.count);
        const combined = parts.reduce((a, p) => a + p.loss.dataSync()[0] * p.count, 0) / whole.count;
        expect(combined).toBeCloseTo(whole.loss.dataSync()[0], 4);
      });
    });
  });

  test('cancelled mid-epoch and resumed, it ends bit for bit where an uninterrupted run does (curriculum and LoRA dropout included)', async () => {
    const c = config({ epochs: 2, curriculumEpochs: 2, gradAccum: 2, warmupSteps: 3, loraDropout: 0.1 });
    const straight = join(suite.dir, 'straight');
    await trainModel(llaraSpec, suite.ctx, c, { checkpointDir: straight, threads: 1 });
    const cut = join(suite.dir, 'cut');
    const signal = { aborted: false };
    await expect(
      trainModel(llaraSpec, suite.ctx, c, {
        checkpointDir: cut,
        signal,
        threads: 1,
        onProgress: (p) => {
          if (p.phase === 'train' && p.metrics!.epoch === 2 && p.metrics!.step === 1) signal.aborted = true;
        }
      })
    ).rejects.toBeInstanceOf(CancelledError);
    await trainModel(llaraSpec, suite.ctx, c, { checkpointDir: cut, resume: true, threads: 1 });
    const a = readSafetensors(join(straight, CHECKPOINT_FILE));
    const b = readSafetensors(join(cut, CHECKPOINT_FILE));
    for (const [name, t] of a.tensors) expect(b.tensors.get(name)!.data, name).toEqual(t.data);
    expect(b.metadata.rng).toBe(a.metadata.rng);
  });
});

describe('evaluation', () => {
  test('scores are log P(title ";" | hybrid prompt) of a full forward for every item; the prompt never depends on a target', () => {
    withModel(config(), (m) => {
      const history = Int32Array.from([5, 6, 7, 8, 9]);
      const before = tf.memory().numTensors;
      const scores = m.scoreBatch([history, Int32Array.from([1])]);
      expect(tf.memory().numTensors).toBe(before);
      const width = NUM_ITEMS + 1;
      expect(scores.length).toBe(2 * width);
      expect(scores[0]).toBe(-Infinity);
      const candidates = m.scoringCandidates(history);
      const prompt = m.promptPieces(history, candidates, true);
      for (const item of [1, 8, 17, NUM_ITEMS]) {
        const answer = llaraAnswer(item, m.tokens);
        const lp = fullLogProbs(m, [...prompt, ...textPieces(answer)]);
        const want = answer.reduce((a, token, k) => a + lp[prompt.length + k - 1][token], 0);
        expect(scores[item], `item ${item}`).toBeCloseTo(want, 3);
      }
      // A history alone scores as in a batch.
      const alone = m.scoreBatch([Int32Array.from([1])]);
      for (let i = 1; i < width; i++) expect(scores[width + i]).toBeCloseTo(alone[i], 5);

      // The ranking prompt's candidates: from the seed and the history only, outside the history.
      expect(Array.from(m.scoringCandidates(history))).toEqual(Array.from(candidates));
      expect(candidates.length).toBe(6);
      expect(new Set(candidates).size).toBe(6);
      for (const i of candidates) expect(history).not.toContain(i);
      // So the held-out item is listed only by chance (LLaRA's HR@1 lists it always).
      const listed = data.users.map((u) => {
        const { history: h, target } = splitInput(u, 'valid');
        expect(Array.from(m.evalCandidates(h, target))).toContain(target);
        return m.scoringCandidates(h).includes(target);
      });
      expect(listed).toContain(false);
    });
  });

  test("LLaRA's HR@1: deterministic, in [0, 1]; an answer naming one candidate is valid, a hit when it is the held-out item", async () => {
    const m = build(config());
    try {
      const before = tf.memory().numTensors;
      const r = await llaraCandidateEval(m, data, 'test', { users: 6, perUser: true });
      expect(tf.memory().numTensors).toBe(before);
      expect(r.users).toBe(6);
      expect(r.validRatio).toBeGreaterThanOrEqual(0);
      expect(r.validRatio).toBeLessThanOrEqual(1);
      expect(r.hr1).toBeGreaterThanOrEqual(0);
      expect(r.hr1).toBeLessThanOrEqual(1);
      expect(r.perUser).toHaveLength(6);
      for (const [i, u] of r.perUser!.entries()) {
        expect(u.candidates).toHaveLength(6);
        expect(u.candidates).toContain(u.target);
        expect(u.target).toBe(splitInput(data.users[i], 'test').target);
      }
      expect(await llaraCandidateEval(m, data, 'test', { users: 6, perUser: true })).toEqual(r);

      // A stand-in that writes the held-out item's title for even users, another candidate's for users 1 and
      // 3, and no title for user 5: 5 valid answers of 6, 3 hits.
      const userOf = new Map(data.users.map((u, i) => [Array.from(splitInput(u, 'test').history).join(), i]));
      const fake: LlaraAnswerer = {
        evalCandidates: (h, t) => m.evalCandidates(h, t),
        answer: (h, candidates) => {
          const u = userOf.get(Array.from(h).join())!;
          const titles = Array.from(candidates, (i) => m.titleText(i));
          const target = Array.from(candidates).indexOf(splitInput(data.users[u], 'test').target);
          const other = titles.findIndex((t, j) => j !== target && matchCandidate(t, titles) === j);
          const text = u === 5 ? 'nothing of the kind' : `${titles[u % 2 === 0 ? target : other]} ;`;
          return { tokens: [], text, matched: matchCandidate(text, titles) };
        }
      };
      const f = await llaraCandidateEval(fake, data, 'test', { users: 6 });
      expect(f).toEqual({ hr1: 3 / 5, validRatio: 5 / 6, users: 6, valid: 5, hits: 3 });
    } finally {
      m.dispose();
    }
  });

  test('a case: the hybrid prompt as text with [ID:item] marks, the answer and the candidate it names', () => {
    withModel(config(), (m) => {
      const { history, target } = splitInput(data.users[2], 'test');
      const before = tf.memory().numTensors;
      const c = m.caseStudy(history, target, (i) => String(data.itemIds[i]));
      expect(tf.memory().numTensors).toBe(before);
      expect(c.prompt.startsWith(`<s> ${LLARA_PROMPT.history} `)).toBe(true);
      expect(c.prompt).toContain(`[ID:${data.itemIds[history[history.length - 1]]}]`);
      expect(c.prompt.endsWith(LLARA_PROMPT.answer)).toBe(true);
      expect(c.candidates).toEqual(Array.from(m.evalCandidates(history, target)));
      expect(typeof c.generated).toBe('string');
      if (c.matched === null) expect(c.hit).toBe(false);
      else expect(c.hit).toBe(c.candidates[c.matched] === target);
    });
  });
});
