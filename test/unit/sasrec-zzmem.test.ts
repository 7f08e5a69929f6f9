import { test } from 'vitest';
import { initBackend, tf } from '../../src/core/tensor/backend';
import { initSasrecParams, SasrecModel } from '../../src/core/models/sasrec';
import { dense, layerNorm, gelu, bmm, transposeLast2, embedding } from '../../src/core/tensor/ops';
import { Rng } from '../../src/core/tensor/rng';
test('mem', async () => {
  await initBackend();
  const shape = { numItems: 3650, maxLen: 200, hiddenSize: 64, numBlocks: 2, numHeads: 1, dropout: 0.2 };
  const rng = new Rng(1);
  const model = new SasrecModel(shape, initSasrecParams(shape, rng));
  const ids = new Int32Array(128 * 200).map((_, i) => 1 + (i % 3000));
  const vars = [...model.params.values()];
  const mb = () => (tf.memory().numBytes / 1e6).toFixed(0);
  const x = tf.variable(tf.randomNormal([128, 200, 64]));
  const w = tf.variable(tf.randomNormal([64, 64])); const b = tf.variable(tf.zeros([64]));
  for (const [name, f] of [
    ['dense', () => dense(x, w, b)],
    ['layerNorm', () => layerNorm(x, b, b)],
    ['gelu', () => gelu(x)],
    ['bmm', () => bmm(x, transposeLast2(x))],
    ['softmax', () => tf.softmax(tf.reshape(x, [128, 200, 64]))],
    ['embedding', () => embedding(model.params.get('item_emb')!, tf.tensor2d(ids, [128, 200], 'int32'), 0)],
    ['forward', () => model.forward(ids, 128, rng)],
    ['forward-eval', () => model.forward(ids, 128, null)],
  ] as [string, () => tf.Tensor][]) {
    const before = tf.memory().numBytes;
    let during = 0;
    const r = tf.variableGrads(() => { const y = f(); during = tf.memory().numBytes; return tf.mean(y) as tf.Scalar; }, name === 'forward' || name === 'forward-eval' ? vars : [x, w, b]);
    console.log(name, 'taped MB', ((during - before) / 1e6).toFixed(1));
    r.value.dispose(); tf.dispose(r.grads);
  }
}, 600000);
