// Shared by the end-to-end tests: browser mode of the built app (npm run build) on a fresh data folder, and
// Debian's Chromium (or CHROMIUM_PATH) to drive it, for the whole test file. Each file opens its own page
// (viewport, context options) in a beforeAll of its own, registered after useBrowserSession().
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';

export const root = resolve(__dirname, '..', '..');
/** Where the tests save their screenshots. */
export const resultsDir = join(root, 'test-results');
/** The README's screenshots of every view (committed; each e2e run regenerates them). */
export const readmeShotsDir = join(root, 'docs', 'screenshots');
const README_SHOT = { width: 1280, height: 800 };

/**
 * Saves docs/screenshots/<name>.png: the window as a reader would see it, at 1280×800 whatever the test's
 * own viewport (restored afterwards), so the README's set stays one size and small.
 */
export async function saveReadmeShot(page: Page, name: string): Promise<void> {
  mkdirSync(readmeShotsDir, { recursive: true });
  const viewport = page.viewportSize();
  await page.setViewportSize(README_SHOT);
  try {
    await page.screenshot({ path: join(readmeShotsDir, `${name}.png`), animations: 'disabled' });
  } finally {
    if (viewport) await page.setViewportSize(viewport);
  }
}
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const browserMain = join(root, 'out', 'main', 'browser.js');

export interface BrowserSession {
  /** The app's address, with its token (`http://127.0.0.1:<port>/?token=...`). */
  readonly url: string;
  readonly browser: Browser;
  /** The server's data folder (ALMOSTREC_HOME), removed after the file's tests. */
  readonly home: string;
}

interface StartedSession extends BrowserSession {
  close(): Promise<void>;
}

export interface BrowserSessionOptions {
  /** Prefix of the temporary data folder's name. */
  homePrefix: string;
  /** Extra arguments for browser mode after --no-open (e.g. --no-import). */
  serverArgs?: string[];
}

/** Resolves with the address browser mode prints ("Open: ..."); rejects if it exits first. */
function printedUrl(server: ChildProcess): Promise<string> {
  return new Promise((resolveUrl, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const m = /Open: (http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]+)/.exec(output);
      if (m) resolveUrl(m[1]);
    };
    server.stdout!.on('data', onData);
    server.stderr!.on('data', onData);
    server.on('exit', (code) => reject(new Error(`browser mode exited with ${code}: ${output}`)));
  });
}

/** Starts the built app in browser mode on a fresh data folder and launches Chromium; close() undoes both. */
async function startBrowserSession(options: BrowserSessionOptions): Promise<StartedSession> {
  if (!existsSync(browserMain) || !existsSync(join(root, 'out', 'renderer', 'index.html'))) {
    throw new Error('The app is not built: run "npm run build" before the end-to-end test');
  }
  if (!existsSync(chromiumPath)) throw new Error(`Chromium not found at ${chromiumPath} (apt-get install chromium, or set CHROMIUM_PATH)`);
  const home = mkdtempSync(join(tmpdir(), options.homePrefix));
  mkdirSync(resultsDir, { recursive: true });
  const server = spawn(process.execPath, [browserMain, '--no-open', ...(options.serverArgs ?? [])], {
    env: { ...process.env, ALMOSTREC_HOME: home },
    stdio: ['ignore', 'pipe', 'pipe']
  });
  let browser: Browser | undefined;
  const close = async () => {
    await browser?.close();
    server.kill('SIGTERM');
    rmSync(home, { recursive: true, force: true });
  };
  try {
    const url = await printedUrl(server);
    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run']
    });
    return { url, browser, home, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/**
 * Registers this test file's beforeAll (start browser mode and Chromium) and afterAll (stop both, remove the
 * data folder). The returned session's fields are there once that beforeAll has run.
 */
export function useBrowserSession(options: BrowserSessionOptions): BrowserSession {
  let started: StartedSession | undefined;
  beforeAll(async () => {
    started = await startBrowserSession(options);
  });
  afterAll(async () => {
    await started?.close();
  });
  const get = (): StartedSession => {
    if (!started) throw new Error('The browser session starts in beforeAll');
    return started;
  };
  return {
    get url() {
      return get().url;
    },
    get browser() {
      return get().browser;
    },
    get home() {
      return get().home;
    }
  };
}
