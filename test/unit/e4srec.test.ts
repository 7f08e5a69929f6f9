// E4SRec on the tiny random backbone of almostrec-fixture.ts: its prompt (golden string), its parameters
// (input adapter, head, LoRA q,v — nothing else trains: backbone and M stay bit-identical), that it is
// ALMOSTREC's model with images and titles removed, and its export manifest.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { parseModelConfig } from '../../src/shared/api';
import { usesBackbone } from '../../src/shared/models';
import { AlmostrecModel, almostrecSpec } from '../../src/core/models/almostrec';
import { ALMOSTREC_MANIFEST_FILE, type AlmostrecManifest } from '../../src/core/models/almostrec-export';
import { renderPieces } from '../../src/core/models/almostrec-prompt';
import { E4SREC_TASK, e4srecAsAlmostrec, e4srecSpec, type E4srecConfig } from '../../src/core/models/e4srec';
import { MODEL_SPECS } from '../../src/core/models/registry';
import { tf } from '../../src/core/tensor/backend';
import { Rng } from '../../src/core/tensor/rng';
import { readSafetensors } from '../../src/core/tensor/safetensors';
import { CHECKPOINT_FILE, trainModel } from '../../src/core/train/train-model';
import { D_MODEL, ITEM_DIM, NUM_ITEMS, syntheticData, tokenizer, tinyBackboneSuite } from './almostrec-fixture';

const config = (over: Partial<E4srecConfig> = {}): E4srecConfig =>
  parseModelConfig('e4srec', { backboneId: 1, seqRunId: 2, epochs: 1, batchSize: 8, learningRate: 1e-2, warmupSteps: 0, historyLength: 5, seed: 7, ...over }) as unknown as E4srecConfig;

const data = syntheticData();
const suite = tinyBackboneSuite(data, 'e4srec-unit-');

function withModel<T>(c: E4srecConfig, f: (m: AlmostrecModel) => T): T {
  const model = e4srecSpec.build(c, suite.ctx, e4srecSpec.init(c, suite.ctx, new Rng(c.seed))) as AlmostrecModel;
  try {
    return f(model);
  } finally {
    model.dispose();
  }
}

test('the catalogue and the registry know E4SRec as a model on a backbone', () => {
  expect(MODEL_SPECS.e4srec).toBe(e4srecSpec);
  expect(usesBackbone('e4srec')).toBe(true);
  expect(usesBackbone('sasrec')).toBe(false);
  expect(() => parseModelConfig('e4srec', { useImages: 1 })).toThrow('Unrecognized key');
});

test('golden prompt: <s>, the instruction, then one ID token per history item — no images, no titles', () => {
  withModel(config(), (m) => {
    const text = renderPieces(m.pieces(Int32Array.from([3, 1, 4, 1, 5, 9])), tokenizer);
    // historyLength 5: the newest five items.
    expect(text).toBe(`<s> ${E4SREC_TASK} [ID:1] [ID:4] [ID:1] [ID:5] [ID:9]`);
  });
});

test('trains the input adapter (W^B), the head (W^T) and LoRA on q,v only; the backbone and M stay bit-identical', async () => {
  const c = config();
  expect(e4srecSpec.paramShapes(c, suite.ctx).map(([n, s]) => `${n} ${s.join('×')}`)).toEqual([
    `w_b ${ITEM_DIM}×${D_MODEL}`,
    `w_t ${D_MODEL}×${NUM_ITEMS + 1}`,
    `lora.text.layers.0.self_attn.q_proj.A 8×${D_MODEL}`,
    `lora.text.layers.0.self_attn.q_proj.B ${D_MODEL}×8`,
    `lora.text.layers.0.self_attn.v_proj.A 8×${D_MODEL}`,
    'lora.text.layers.0.self_attn.v_proj.B 16×8'
  ]);
  const frozen = new Map([...suite.inputs.backbone.weights].map(([n, t]) => [n, t.dataSync().slice()]));
  const m = suite.inputs.itemTable.values.slice();
  const before = tf.memory().numTensors;
  const out = join(suite.dir, 'train');
  const r = await trainModel(e4srecSpec, suite.ctx, c, { checkpointDir: out });
  expect(tf.memory().numTensors).toBe(before);
  expect(r.history[0].loss).toBeGreaterThan(0);
  for (const [n, t] of suite.inputs.backbone.weights) expect(t.dataSync(), n).toEqual(frozen.get(n));
  expect(suite.inputs.itemTable.values).toEqual(m);
  const init = e4srecSpec.init(c, suite.ctx, new Rng(c.seed));
  const trained = readSafetensors(join(out, CHECKPOINT_FILE));
  expect([...trained.tensors.keys()].filter((k) => k.startsWith('param.')).sort()).toEqual([...init.keys()].map((k) => `param.${k}`).sort());
  for (const [name, v] of init) expect(trained.tensors.get(`param.${name}`)!.data, name).not.toEqual(v);

  // The export (it reads the checkpoint as an e4srec one): ALMOSTREC's files, the manifest naming E4SRec and its prompt.
  const artifacts = e4srecSpec.exportArtifacts!(join(out, CHECKPOINT_FILE), suite.ctx);
  expect(artifacts.map((a) => a.kind)).toEqual(['almostrec_tensors', 'lora_adapter', 'lora_adapter_config', 'almostrec_manifest']);
  const manifest = JSON.parse(readFileSync(join(out, ALMOSTREC_MANIFEST_FILE), 'utf8')) as AlmostrecManifest;
  expect(manifest.model).toBe('e4srec');
  expect(manifest.prompt).toMatchObject({ task: E4SREC_TASK, titles: false, layout: 'interleaved' });
});

describe('E4SRec is ALMOSTREC without images and titles', () => {
  test('same initial values and the same scores as ALMOSTREC (useImages 0) reading E4SRec’s prompt', () => {
    const c = config();
    const values = e4srecSpec.init(c, suite.ctx, new Rng(5));
    const a = e4srecAsAlmostrec(c);
    expect(values).toEqual(almostrecSpec.init(a, suite.ctx, new Rng(5)));
    const histories = [Int32Array.from([1, 2, 3]), Int32Array.from([7, 8, 9, 10, 11, 12])];
    const e4 = e4srecSpec.build(c, suite.ctx, values);
    const alm = new AlmostrecModel(a, suite.ctx, values, { task: E4SREC_TASK, titles: false });
    try {
      expect(e4.scoreBatch(histories)).toEqual(alm.scoreBatch(histories));
    } finally {
      e4.dispose();
      alm.dispose();
    }
  });

  test('every ID token is a trained position (interleaved = concat here: nothing sits between ID tokens)', () => {
    withModel(config(), (m) => {
      const pieces = m.pieces(Int32Array.from([1, 2, 3]));
      const firstId = pieces.findIndex((p) => p.kind === 'id');
      expect(pieces.slice(firstId).every((p) => p.kind === 'id')).toBe(true);
      expect(m.layoutOptions).toMatchObject({ interleaved: true, useImages: false, useText: true, promptTitles: 0 });
    });
  });
});
