// The tokenizer of a backbone folder: a llava-hf checkpoint's own tokenizer.json, or, for the compact
// backbone (saved without one: its vocabulary is LLaMA-2's plus <image>), the built-in LLaMA-2 tokenizer
// named by tokenizer_config.json's `almostrec_tokenizer` field.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readJsonObject } from './json-file';
import { llamaTokenizer, loadTokenizer, type TextTokenizer } from './tokenizer';

export function backboneTokenizer(dir: string): TextTokenizer {
  if (existsSync(join(dir, 'tokenizer.json'))) return loadTokenizer(dir);
  const configPath = join(dir, 'tokenizer_config.json');
  if (existsSync(configPath)) {
    const cfg = readJsonObject(configPath);
    const named = cfg.almostrec_tokenizer;
    if (named === 'llama-2') return llamaTokenizer();
    const m = typeof named === 'string' ? /^llama-2\+image:(\d+)$/.exec(named) : null;
    if (m) return llamaTokenizer({ imageTokenId: Number(m[1]) });
  }
  throw new Error(`${dir}: no tokenizer.json (text prompts need the checkpoint's tokenizer; copy it from the model repository)`);
}

/** Whether the folder carries a tokenizer backboneTokenizer can load (registration only warns without one). */
export function hasTokenizer(dir: string): boolean {
  try {
    backboneTokenizer(dir);
    return true;
  } catch {
    return false;
  }
}
