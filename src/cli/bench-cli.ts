// The built `almostrec` CLI as a child process, the way the end-to-end benchmarks (table2, ablation) run each
// step: the same job code the app's workers run, in its own process, on one catalog.
import { spawn } from 'node:child_process';
import { join } from 'node:path';

export interface CliResult {
  /** Non-empty stdout lines (JSON mode: one object per line). */
  lines: string[];
  code: number | null;
  /** The last stderr line (the error message when the command failed). */
  lastErr: string;
  seconds: number;
}

/** Runs `almostrec <args> --db db --json` to its end; every stderr line goes to `onLine` (progress); `env` adds variables. */
export function runCli(db: string, args: string[], onLine: (line: string) => void, env: Record<string, string> = {}): Promise<CliResult> {
  const t0 = performance.now();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [join(__dirname, 'cli.js'), ...args, '--db', db, '--json'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let lastErr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      for (const line of d.toString().trim().split('\n').filter(Boolean)) {
        lastErr = line;
        onLine(line);
      }
    });
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ lines: stdout.split('\n').filter(Boolean), code, lastErr, seconds: (performance.now() - t0) / 1000 }));
  });
}

/** An onLine that logs at most one line every `ms`, plus every line `always` matches. */
export function throttledLog(log: (line: string) => void, ms = 15000, always?: RegExp): (line: string) => void {
  let last = 0;
  return (line) => {
    const milestone = always?.test(line) ?? false;
    if (milestone || performance.now() - last > ms) {
      if (!milestone) last = performance.now();
      log(line);
    }
  };
}
