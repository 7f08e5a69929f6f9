// The shipping path end to end: loadHfCheckpoint + readPeftAdapter (not a test-local reader) feed
// LlavaModel, and the logits match those transformers + peft computed for the fixture (max |Δ| ≤ 1e-4).
import path from 'node:path';
import { beforeAll, expect, test } from 'vitest';
import { initBackend, tf } from '../../src/core/tensor/backend';
import { readSafetensors } from '../../src/core/tensor/safetensors';
import { loadHfCheckpoint } from '../../src/core/backbone/hf-checkpoint';
import { readPeftAdapter } from '../../src/core/backbone/peft-adapter';
import { LlavaModel } from '../../src/core/backbone/llava-model';
import { LoraAdapter, loraConfigFromPeft } from '../../src/core/backbone/lora';

const FIXTURE = path.resolve(__dirname, '../fixtures/hf-llava-tiny');

beforeAll(async () => {
  await initBackend('wasm');
});

test('loader + PEFT reader + model reproduce transformers’ logits with and without the adapter', () => {
  const io = readSafetensors(path.join(FIXTURE, 'io.safetensors')).tensors;
  const ids = io.get('input_ids')!;
  const rows = [Array.from(ids.data as BigInt64Array, Number)];
  const pixels = io.get('pixel_values')!;
  const loaded = loadHfCheckpoint(path.join(FIXTURE, 'model'));
  const adapter = readPeftAdapter(path.join(FIXTURE, 'lora'));
  const lora = LoraAdapter.fromPeft(adapter.modules, loraConfigFromPeft({ r: adapter.config.r, alpha: adapter.config.alpha, dropout: adapter.config.dropout }, adapter.modules));
  for (const [model, key] of [
    [new LlavaModel(loaded.config, loaded.weights), 'logits'],
    [new LlavaModel(loaded.config, loaded.weights, lora), 'logits_lora']
  ] as const) {
    const px = tf.tensor4d(pixels.data as Float32Array, pixels.shape as [number, number, number, number]);
    const out = model.forward({ inputIds: rows, pixelValues: px });
    const ours = out.logits!.dataSync();
    const want = io.get(key)!.data as Float32Array;
    let diff = 0;
    for (let i = 0; i < want.length; i++) diff = Math.max(diff, Math.abs(ours[i] - want[i]));
    expect(diff, key).toBeLessThanOrEqual(1e-4);
    tf.dispose([px, out.hidden, out.logits!]);
    model.dispose();
  }
  lora.dispose();
  tf.dispose([...loaded.weights.values()]);
});
