// Shared by the CLI integration tests: the built `almostrec` bin as a user runs it, on a throwaway catalog.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const root = resolve(__dirname, '..', '..');
export const bin = join(root, 'bin', 'almostrec.cjs');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The non-empty stdout lines (one JSON object each with --json). */
  lines: string[];
}

export interface CliCatalog {
  /** The throwaway folder holding the catalog; remove() deletes it. */
  dir: string;
  /** Runs `almostrec <args> --db <the catalog>`. */
  cli(...args: string[]): CliResult;
  remove(): void;
}

/** Builds the app when out/ lacks the CLI, then opens an empty catalog in a fresh folder named prefix…; each command may take timeoutMs. */
export function createCliCatalog(prefix: string, timeoutMs: number): CliCatalog {
  if (!existsSync(join(root, 'out', 'main', 'cli.js'))) execFileSync('npx', ['electron-vite', 'build'], { cwd: root, stdio: 'ignore' });
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const db = join(dir, 'catalog.sqlite');
  return {
    dir,
    cli(...args) {
      const r = spawnSync(process.execPath, [bin, ...args, '--db', db], { encoding: 'utf8', timeout: timeoutMs });
      return { code: r.status, stdout: r.stdout, stderr: r.stderr, lines: r.stdout.split('\n').filter(Boolean) };
    },
    remove: () => rmSync(dir, { recursive: true, force: true })
  };
}

export const json = (line: string) => JSON.parse(line) as Record<string, unknown>;

/**
 * The tiny llava-hf test checkpoint copied into `dir` with a word-level tokenizer over its 256-token vocabulary
 * (the fixture ships none; ids ≥ 3 for words): a backbone to register in a second, no pretraining needed.
 */
export function tinyLlavaFolder(dir: string): string {
  const folder = join(dir, 'llava-tiny');
  cpSync(join(root, 'test', 'fixtures', 'hf-llava-tiny', 'model'), folder, { recursive: true });
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  const words = 'given the items a user interacted with in order predict next one history ; toy story heat casino babe'.split(' ');
  words.forEach((w, i) => (vocab[w] ??= 3 + i));
  writeFileSync(
    join(folder, 'tokenizer.json'),
    JSON.stringify({
      version: '1.0',
      added_tokens: [0, 1, 2].map((id) => ({ id, content: Object.keys(vocab)[id], single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
      normalizer: { type: 'Lowercase' },
      pre_tokenizer: { type: 'Whitespace' },
      post_processor: null,
      decoder: null,
      model: { type: 'WordLevel', vocab, unk_token: '<unk>' }
    })
  );
  writeFileSync(join(folder, 'tokenizer_config.json'), JSON.stringify({ bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', add_bos_token: true }));
  return folder;
}
