// Text tokenizers: the packaged LLaMA-2 tokenizer against token ids published elsewhere (transformers docs,
// vLLM's LLaVA docstring), decode∘encode round trips on titles, and a checkpoint's tokenizer.json read
// through @huggingface/tokenizers agreeing with it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LlamaTokenizer } from 'llama-tokenizer-js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { IMAGE_TOKEN, llamaTokenizer, loadTokenizer } from '../../src/core/backbone/tokenizer';

const TITLES = [
  'Amélie (2001)',
  'Crème brûlée — naïve café',
  '東京物語 (1953)',
  'Pokémon: The First Movie 🎬',
  'Léon: The Professional',
  'Ørsted & Søn, “quoted” ‘text’ … ½',
  'Ꙋ🦙 mixed  double  spaces\tand\nnewlines',
  'Das Boot (1981)',
  ''
];

// "USER: <image>\nWhat's the content of the image?\nASSISTANT:" as llava-hf/llava-1.5-7b-hf's processor
// tokenizes it (quoted in vLLM's LLaVA model docstring): text on each side of <image> gets its own "▁".
const LLAVA_PROMPT = "USER: <image>\nWhat's the content of the image?\nASSISTANT:";
const LLAVA_IDS = [1, 3148, 1001, 29901, 29871, 32000, 29871, 13, 5618, 29915, 29879, 278, 2793, 310, 278, 1967, 29973, 13, 22933, 9047, 13566, 29901];

describe('llamaTokenizer (LLaMA-2 / LLaVA-1.5)', () => {
  test('vocabulary and special tokens', () => {
    const plain = llamaTokenizer();
    expect(plain).toMatchObject({ id: 'llama-2', vocabSize: 32000, bosId: 1, eosId: 2, padId: 0 });
    const llava = llamaTokenizer({ imageTokenId: 32000 });
    expect(llava).toMatchObject({ id: 'llama-2+image:32000', vocabSize: 32001 });
    expect(() => llamaTokenizer({ imageTokenId: 5 })).toThrow('imageTokenId must be an integer ≥ 32000');
  });

  test('known encodings', () => {
    const tok = llamaTokenizer({ imageTokenId: 32000 });
    // transformers' LLaMA docs: "Hello world" → [1, 15043, 3186].
    expect(tok.encode('Hello world')).toEqual([1, 15043, 3186]);
    expect(tok.encode('Hello world', { addBos: false })).toEqual([15043, 3186]);
    expect(tok.encode('')).toEqual([1]);
    expect(tok.encode(LLAVA_PROMPT)).toEqual(LLAVA_IDS);
    expect(tok.decode(LLAVA_IDS)).toBe(LLAVA_PROMPT);
    // Without an image token, "<image>" is ordinary text.
    expect(llamaTokenizer().encode(IMAGE_TOKEN)).not.toContain(32000);
    // Byte fallback: 🦙 is not in the vocabulary, so it becomes its four UTF-8 bytes (<0xF0> = id 243 …).
    expect(tok.encode('🦙', { addBos: false })).toEqual([29871, 243, 162, 169, 156]);
  });

  test('decode(encode(x)) is x for titles with accents, CJK, emoji and odd spacing; specials are dropped', () => {
    const tok = llamaTokenizer({ imageTokenId: 32000 });
    for (const title of TITLES) expect(tok.decode(tok.encode(title)), title).toBe(title);
    expect(tok.decode([1, 15043, 3186, 2, 0, 0])).toBe('Hello world');
    expect(tok.decode([15043, 32000, 3186])).toBe('Hello<image>world');
    expect(() => tok.decode([32001])).toThrow('token id 32001 is outside the vocabulary');
  });
});

/**
 * LLaVA-1.5's tokenizer.json, rebuilt from llama-tokenizer-js's vocabulary and merge ranks in the shape
 * transformers saves for a LLaMA fast tokenizer (llava-hf adds <image> 32000 and <pad> 32001).
 */
function llavaTokenizerJson(): Record<string, unknown> {
  const core = new LlamaTokenizer();
  const vocab: Record<string, number> = {};
  core.vocabById.forEach((token, id) => (vocab[token] = id));
  const merges = [...core.merges.entries()].sort((a, b) => a[1] - b[1]).map(([pair]) => pair);
  const added = (id: number, content: string): Record<string, unknown> => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [added(0, '<unk>'), added(1, '<s>'), added(2, '</s>'), added(32000, '<image>'), added(32001, '<pad>')],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } }
    },
    decoder: {
      type: 'Sequence',
      decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }]
    },
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, vocab, merges }
  };
}

describe('loadTokenizer (a checkpoint folder’s tokenizer.json)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tok-'));
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(llavaTokenizerJson()));
    writeFileSync(
      join(dir, 'tokenizer_config.json'),
      JSON.stringify({ tokenizer_class: 'LlamaTokenizer', bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', pad_token: '<pad>', add_bos_token: true, legacy: true })
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('agrees with llamaTokenizer on every encoding, including <image> as an added token', () => {
    const tok = loadTokenizer(dir);
    expect(tok).toMatchObject({ vocabSize: 32002, bosId: 1, eosId: 2, padId: 32001 });
    expect(tok.id).toMatch(/^tokenizer\.json:[0-9a-f]{16}$/);
    const reference = llamaTokenizer({ imageTokenId: 32000 });
    expect(tok.encode('Hello world')).toEqual([1, 15043, 3186]);
    expect(tok.encode(LLAVA_PROMPT)).toEqual(LLAVA_IDS);
    for (const title of TITLES) {
      expect(tok.encode(title), title).toEqual(reference.encode(title));
      expect(tok.encode(title, { addBos: false }), title).toEqual(reference.encode(title, { addBos: false }));
      expect(tok.decode(tok.encode(title)), title).toBe(title);
    }
    expect(tok.decode([1, 15043, 3186, 2, 32001])).toBe('Hello world');
  });

  test('works without tokenizer_config.json; missing or corrupt files name the file', () => {
    const bare = mkdtempSync(join(tmpdir(), 'tok-'));
    try {
      expect(() => loadTokenizer(bare)).toThrow(`${join(bare, 'tokenizer.json')}: missing`);
      writeFileSync(join(bare, 'tokenizer.json'), '{"model": ');
      expect(() => loadTokenizer(bare)).toThrow(`${join(bare, 'tokenizer.json')}: not valid JSON`);
      writeFileSync(join(bare, 'tokenizer.json'), JSON.stringify({ model: { type: 'NoSuchModel' } }));
      expect(() => loadTokenizer(bare)).toThrow(`${join(bare, 'tokenizer.json')}: not a usable tokenizer`);
      writeFileSync(join(bare, 'tokenizer.json'), JSON.stringify(llavaTokenizerJson()));
      const tok = loadTokenizer(bare);
      // No config: <s>, </s> looked up by name; padding falls back to <unk>.
      expect(tok).toMatchObject({ bosId: 1, eosId: 2, padId: 0 });
      expect(tok.encode('Hello world')).toEqual([1, 15043, 3186]);
      writeFileSync(join(bare, 'tokenizer_config.json'), '[');
      expect(() => loadTokenizer(bare)).toThrow(`${join(bare, 'tokenizer_config.json')}: not valid JSON`);
    } finally {
      rmSync(bare, { recursive: true, force: true });
    }
  });
});
