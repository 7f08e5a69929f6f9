// Shared by the CLI integration tests: the built `almostrec` bin as a user runs it, on a throwaway catalog.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const root = resolve(__dirname, '..', '..');
const bin = join(root, 'bin', 'almostrec.cjs');

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
