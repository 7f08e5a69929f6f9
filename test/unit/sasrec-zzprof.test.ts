import { test } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Catalog } from '../../src/core/catalog';
import { importDataset, resolveEmbeddedDatasetDir } from '../../src/core/importers';
import { initBackend, tf } from '../../src/core/tensor/backend';
import { trainPart } from '../../src/core/data/types';
import { initSasrecParams, padLeftInto, SasrecModel } from '../../src/core/models/sasrec';
import { Rng } from '../../src/core/tensor/rng';
test('prof', async () => {
  await initBackend();
  const dir = mkdtempSync(join(tmpdir(), 'dev-'));
  const cat = Catalog.open(join(dir, 'c.db'));
  const { datasetId } = await importDataset(cat, { format: 'movielens-latest', path: resolveEmbeddedDatasetDir(), name: 'x', options: {} });
  const data = cat.loadSequences(datasetId);
  const shape = { numItems: data.numItems, maxLen: 200, hiddenSize: 64, numBlocks: 2, numHeads: 1, dropout: 0.2 };
  const rng = new Rng(1);
  const model = new SasrecModel(shape, initSasrecParams(shape, rng));
  const seqs = data.users.map(trainPart).slice(0, 128);
  const B = 128, L = 200;
  const inputs = new Int32Array(B * L), targets = new Int32Array(B * L);
  seqs.forEach((seq, b) => { padLeftInto(seq.subarray(0, seq.length - 1), L, inputs, b * L); padLeftInto(seq.subarray(1), L, targets, b * L); });
  console.log('rows', targets.filter((t) => t !== 0).length);
  const vars = [...model.params.values()];
  for (let r = 0; r < 2; r++) {
    const t0 = performance.now();
    let peak = 0;
    const info = await tf.profile(() => { const { value, grads } = tf.variableGrads(() => { const l = model.loss(inputs, targets, B, rng); peak = tf.memory().numBytes; return l; }, vars); value.dataSync(); tf.dispose(grads); value.dispose(); });
    console.log('after forward MB', peak / 1e6, 'peakBytes', info.peakBytes / 1e6, 'heap', ((tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.length / 1e6), process.memoryUsage());
    console.log('total', performance.now() - t0);
    if (r === 1) {
      const agg = new Map<string, [number, number]>();
      for (const k of info.kernels) { const a = agg.get(k.name) ?? [0, 0]; a[0] += k.kernelTimeMs as number; a[1]++; agg.set(k.name, a); }
      console.log([...agg].sort((a, b) => b[1][0] - a[1][0]).slice(0, 25).map(([n, [t, c]]) => `${n} ${t.toFixed(0)}ms x${c}`).join('\n'));
    }
  }
  let t0 = performance.now();
  for (let i = 0; i < 3; i++) { const t = model.scoreNext(seqs.slice(0, 128)); }
  console.log('score 3x128', performance.now() - t0);
}, 600000);
