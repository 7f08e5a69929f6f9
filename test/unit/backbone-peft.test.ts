// Hugging Face PEFT LoRA adapters: the peft-made fixture reads (both towers, 8 modules); writing follows
// DESIGN.md §7 key for key and reads back in both layouts; unsupported or broken adapters are refused
// with errors naming the file.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../../src/core/tensor/safetensors';
import { LAYOUT_FIELD, readPeftAdapter, writePeftAdapter, type LoraPair, type PeftLoraConfig } from '../../src/core/backbone/peft-adapter';

const FIXTURE = resolve(__dirname, '../fixtures/hf-llava-tiny/lora');
const FIXTURE_CONFIG = JSON.parse(readFileSync(join(FIXTURE, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'peft-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

let counter = 0;
function freshDir(): string {
  const dir = join(root, `a${counter++}`);
  mkdirSync(dir);
  return dir;
}

function expectSameModules(a: Map<string, LoraPair>, b: Map<string, LoraPair>): void {
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  for (const [m, p] of a) {
    const q = b.get(m)!;
    expect(q.a.shape).toEqual(p.a.shape);
    expect(q.b.shape).toEqual(p.b.shape);
    expect(q.a.data).toEqual(p.a.data);
    expect(q.b.data).toEqual(p.b.data);
  }
}

describe('readPeftAdapter', () => {
  test('reads the peft 0.21 fixture: 8 modules in both towers, r 4, alpha 8, A r × in, B out × r', () => {
    const { config, modules } = readPeftAdapter(FIXTURE);
    expect(config).toEqual({ r: 4, alpha: 8, dropout: 0, targetModules: ['q_proj', 'v_proj'], baseModel: null, taskType: null });
    expect([...modules.keys()].sort()).toEqual([
      'text.layers.0.self_attn.q_proj',
      'text.layers.0.self_attn.v_proj',
      'text.layers.1.self_attn.q_proj',
      'text.layers.1.self_attn.v_proj',
      'vision.encoder.layers.0.self_attn.q_proj',
      'vision.encoder.layers.0.self_attn.v_proj',
      'vision.encoder.layers.1.self_attn.q_proj',
      'vision.encoder.layers.1.self_attn.v_proj'
    ]);
    // Text: d 64, 2 KV heads of 16 → v_proj out 32. Vision: d 32.
    expect(modules.get('text.layers.0.self_attn.q_proj')!.a.shape).toEqual([4, 64]);
    expect(modules.get('text.layers.0.self_attn.q_proj')!.b.shape).toEqual([64, 4]);
    expect(modules.get('text.layers.1.self_attn.v_proj')!.b.shape).toEqual([32, 4]);
    expect(modules.get('vision.encoder.layers.0.self_attn.v_proj')!.a.shape).toEqual([4, 32]);
    expect(modules.get('vision.encoder.layers.0.self_attn.v_proj')!.b.shape).toEqual([32, 4]);
    // Values as stored (checked against the whole-file reader), and non-zero B as the fixture promises.
    const raw = readSafetensors(join(FIXTURE, 'adapter_model.safetensors')).tensors;
    const b = modules.get('vision.encoder.layers.1.self_attn.q_proj')!.b.data;
    expect(b).toEqual(raw.get('base_model.model.model.vision_tower.encoder.layers.1.self_attn.q_proj.lora_B.weight')!.data);
    expect(b.some((v) => v !== 0)).toBe(true);
  });

  test('accepts the legacy layout, an adapter name in the key and f16/bf16 weights', () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 2, lora_alpha: 4, target_modules: ['q_proj'] }));
    const a = Float32Array.from([1, 0.5, -2, 0.25, 3, -1]); // exactly representable in f16 and bf16
    const tensors: Record<string, TensorToWrite> = {
      'base_model.model.language_model.model.layers.0.self_attn.q_proj.lora_A.default.weight': { dtype: 'F32', shape: [2, 3], data: a },
      'base_model.model.language_model.model.layers.0.self_attn.q_proj.lora_B.default.weight': { dtype: 'F32', shape: [3, 2], data: a }
    };
    writeSafetensors(join(dir, 'adapter_model.safetensors'), tensors, { format: 'pt' });
    const { modules } = readPeftAdapter(dir);
    expect([...modules.keys()]).toEqual(['text.layers.0.self_attn.q_proj']);
    expect(modules.get('text.layers.0.self_attn.q_proj')!.b.data).toEqual(a);

    // f16 (0x3c00 = 1) and bf16 (0x3f80 = 1) matrices of ones, written byte by byte.
    for (const [dtype, one] of [['F16', [0x00, 0x3c]], ['BF16', [0x80, 0x3f]]] as const) {
      const header = {
        __metadata__: { format: 'pt' },
        'base_model.model.model.vision_tower.vision_model.encoder.layers.0.self_attn.v_proj.lora_A.weight': { dtype, shape: [2, 2], data_offsets: [0, 8] },
        'base_model.model.model.vision_tower.vision_model.encoder.layers.0.self_attn.v_proj.lora_B.weight': { dtype, shape: [2, 2], data_offsets: [8, 16] }
      };
      const json = Buffer.from(JSON.stringify(header));
      const lead = Buffer.alloc(8);
      lead.writeBigUInt64LE(BigInt(json.length));
      writeFileSync(join(dir, 'adapter_model.safetensors'), Buffer.concat([lead, json, Buffer.from(Array.from({ length: 8 }, () => one).flat())]));
      writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 2, lora_alpha: 4, target_modules: ['v_proj'] }));
      const pair = readPeftAdapter(dir).modules.get('vision.encoder.layers.0.self_attn.v_proj')!;
      expect([...pair.a.data, ...pair.b.data]).toEqual(new Array(8).fill(1));
    }
  });

  test('refuses unsupported configs and broken weights, naming the file', () => {
    const base = { ...FIXTURE_CONFIG };
    const cases: [Record<string, unknown>, string][] = [
      [{ ...base, peft_type: 'IA3' }, '"peft_type" is "IA3"; only "LORA"'],
      [{ ...base, use_dora: true }, 'DoRA'],
      [{ ...base, use_rslora: true }, 'use_rslora'],
      [{ ...base, bias: 'lora_only' }, '"bias" is "lora_only"'],
      [{ ...base, r: 0 }, '"r" must be a positive integer'],
      [{ ...base, rank_pattern: { q_proj: 8 } }, 'rank_pattern'],
      [{ ...base, modules_to_save: ['lm_head'] }, 'modules_to_save']
    ];
    for (const [json, message] of cases) {
      const dir = freshDir();
      writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify(json));
      writeFileSync(join(dir, 'adapter_model.safetensors'), readFileSync(join(FIXTURE, 'adapter_model.safetensors')));
      expect(() => readPeftAdapter(dir), message).toThrow(`${join(dir, 'adapter_config.json')}: `);
      expect(() => readPeftAdapter(dir), message).toThrow(message);
    }

    const dir = freshDir();
    expect(() => readPeftAdapter(dir)).toThrow(`${join(dir, 'adapter_config.json')}: missing`);
    writeFileSync(join(dir, 'adapter_config.json'), '{"peft_type": "LORA",');
    expect(() => readPeftAdapter(dir)).toThrow(`${join(dir, 'adapter_config.json')}: not valid JSON`);
    writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify(FIXTURE_CONFIG));
    expect(() => readPeftAdapter(dir)).toThrow(`${join(dir, 'adapter_model.safetensors')}: missing`);

    // An A without its B, a rank that is not r, and a key that is not a LoRA weight.
    const weights = join(dir, 'adapter_model.safetensors');
    const m = (k: string): string => `base_model.model.model.language_model.layers.0.self_attn.${k}`;
    const ones = (n: number): Float32Array => new Float32Array(n).fill(1);
    writeSafetensors(weights, { [m('q_proj.lora_A.weight')]: { dtype: 'F32', shape: [4, 64], data: ones(256) } });
    expect(() => readPeftAdapter(dir)).toThrow(`${weights}: text.layers.0.self_attn.q_proj has lora_A but no lora_B`);
    writeSafetensors(weights, {
      [m('q_proj.lora_A.weight')]: { dtype: 'F32', shape: [2, 64], data: ones(128) },
      [m('q_proj.lora_B.weight')]: { dtype: 'F32', shape: [64, 2], data: ones(128) }
    });
    expect(() => readPeftAdapter(dir)).toThrow(`${weights}: text.layers.0.self_attn.q_proj: A [2,64] and B [64,2] do not have rank r = 4`);
    writeSafetensors(weights, { [m('q_proj.lora_embedding_A')]: { dtype: 'F32', shape: [4, 64], data: ones(256) } });
    expect(() => readPeftAdapter(dir)).toThrow(`${weights}: "${m('q_proj.lora_embedding_A')}" is not a LoRA weight`);
  });
});

describe('writePeftAdapter', () => {
  const { config, modules } = readPeftAdapter(FIXTURE);

  test('current layout (default): DESIGN.md §7 keys, metadata and config; reads back equal', () => {
    const dir = freshDir();
    writePeftAdapter(dir, { ...config, baseModel: 'llava-hf/llava-1.5-7b-hf', taskType: 'CAUSAL_LM' }, modules, { extraConfig: { layers_pattern: null } });
    expect(readdirSync(dir).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    const file = readSafetensors(join(dir, 'adapter_model.safetensors'));
    expect(file.metadata).toEqual({ format: 'pt' });
    const keys = [...file.tensors.keys()];
    expect(keys).toContain('base_model.model.model.language_model.layers.0.self_attn.q_proj.lora_A.weight');
    expect(keys).toContain('base_model.model.model.language_model.layers.1.self_attn.v_proj.lora_B.weight');
    expect(keys).toContain('base_model.model.model.vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.lora_A.weight');
    expect(keys.every((k) => /^base_model\.model\.model\.(language_model|vision_tower\.vision_model)\..+\.lora_[AB]\.weight$/.test(k))).toBe(true);
    expect(keys.length).toBe(16);
    const json = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(json).toMatchObject({
      peft_type: 'LORA',
      r: 4,
      lora_alpha: 8,
      lora_dropout: 0,
      target_modules: ['q_proj', 'v_proj'],
      bias: 'none',
      task_type: 'CAUSAL_LM',
      base_model_name_or_path: 'llava-hf/llava-1.5-7b-hf',
      inference_mode: true,
      fan_in_fan_out: false,
      use_dora: false,
      use_rslora: false,
      init_lora_weights: true,
      layers_pattern: null,
      [LAYOUT_FIELD]: 'current'
    });
    const back = readPeftAdapter(dir);
    expect(back.config).toEqual({ ...config, baseModel: 'llava-hf/llava-1.5-7b-hf', taskType: 'CAUSAL_LM' });
    expectSameModules(back.modules, modules);
  });

  test('legacy layout keys and round trip', () => {
    const dir = freshDir();
    writePeftAdapter(dir, config, modules, { layout: 'legacy' });
    const keys = [...readSafetensors(join(dir, 'adapter_model.safetensors')).tensors.keys()];
    expect(keys).toContain('base_model.model.language_model.model.layers.0.self_attn.q_proj.lora_A.weight');
    expect(keys).toContain('base_model.model.vision_tower.vision_model.encoder.layers.1.self_attn.v_proj.lora_B.weight');
    expect(JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'))[LAYOUT_FIELD]).toBe('legacy');
    expectSameModules(readPeftAdapter(dir).modules, modules);
  });

  test('refuses inconsistent input', () => {
    const dir = freshDir();
    const cfg: PeftLoraConfig = { ...config };
    expect(() => writePeftAdapter(dir, { ...cfg, r: 8 }, modules)).toThrow('not rank 8');
    expect(() => writePeftAdapter(dir, { ...cfg, targetModules: ['q_proj'] }, modules)).toThrow('v_proj is not matched by target_modules [q_proj]');
    expect(() => writePeftAdapter(dir, cfg, modules, { extraConfig: { use_dora: true } })).toThrow('extraConfig may not set use_dora');
    expect(() => writePeftAdapter(dir, cfg, new Map())).toThrow('no modules');
    expect(readdirSync(dir)).toEqual([]);
  });
});
