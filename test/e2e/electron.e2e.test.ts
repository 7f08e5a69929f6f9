// Issue 15, item 2: the desktop shell itself, where it exists. Launches the built app (npm run build) in
// Electron with playwright-core's _electron, on a fresh data folder, and drives the same flow as the
// browser-mode e2e (workbench-flow.ts): the embedded dataset imports by itself, two short runs train, the
// case study shows decoded posters; the UI talks to WorkbenchService over IPC here, not HTTP.
// Skipped, with the reason printed, where there is no Electron binary (ELECTRON_PATH, else the electron
// package's dist/: its download is blocked on our machines) or, on Linux, no display (Electron has no
// headless mode: run it under `xvfb-run`). The window's security settings are checked everywhere, from
// the built bundle, by test/safety/transport-electron.test.ts.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { _electron, type ElectronApplication, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resultsDir, root } from './browser-session';
import { expectCaseStudyWithPosters, expectEmbeddedDatasetImported, trainPopularityAndShortSasrec } from './workbench-flow';

/** The executable the electron package's own index.js would name (dist/ + path.txt), or the platform's default. */
function electronBinary(): string {
  if (process.env.ELECTRON_PATH) return process.env.ELECTRON_PATH;
  const pkg = join(root, 'node_modules', 'electron');
  const pathTxt = join(pkg, 'path.txt');
  const fallback = { darwin: 'Electron.app/Contents/MacOS/Electron', win32: 'electron.exe' }[process.platform as string] ?? 'electron';
  return join(pkg, 'dist', existsSync(pathTxt) ? readFileSync(pathTxt, 'utf8').trim() : fallback);
}

function skipReason(binary: string): string | null {
  if (!existsSync(binary)) {
    return `no Electron binary at ${binary} (set ELECTRON_PATH, or let the electron package's installer download it)`;
  }
  if (process.platform === 'linux' && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) {
    return 'no display (DISPLAY/WAYLAND_DISPLAY unset): Electron cannot run headless, run this under xvfb-run';
  }
  return null;
}

const binary = electronBinary();
const reason = skipReason(binary);
if (reason) console.log(`electron.e2e: skipped: ${reason}`);

describe.skipIf(reason !== null)('workbench in Electron', () => {
  let app: ElectronApplication;
  let page: Page;
  let home: string;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(join(root, 'out', 'main', 'index.js'))) throw new Error('The app is not built: run "npm run build" before the end-to-end test');
    home = mkdtempSync(join(tmpdir(), 'almostrec-electron-e2e-'));
    mkdirSync(resultsDir, { recursive: true });
    const env: Record<string, string> = { ...(process.env as Record<string, string>), ALMOSTREC_HOME: home };
    delete env.ELECTRON_RUN_AS_NODE; // would start Electron as plain Node, without a window
    delete env.ELECTRON_RENDERER_URL; // the built renderer, not a dev server
    // Chromium refuses to start as root with its sandbox on (CI containers); the renderer's own sandbox
    // settings are the app's and stay as they are.
    const args = [root, ...(process.getuid?.() === 0 ? ['--no-sandbox'] : [])];
    app = await _electron.launch({ executablePath: binary, args, env, timeout: 120_000 });
    page = await app.firstWindow({ timeout: 120_000 });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.waitForLoadState('domcontentloaded');
  });

  afterAll(async () => {
    await app?.close();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('opens one window on the built renderer, its data in ALMOSTREC_HOME', async () => {
    expect(app.windows()).toHaveLength(1);
    expect(page.url()).toMatch(/^file:.*\/out\/renderer\/index\.html/);
    expect(await app.evaluate(({ app: electronApp }) => electronApp.isPackaged)).toBe(false);
    await expect.poll(() => existsSync(join(home, 'catalog.sqlite')), { timeout: 30_000 }).toBe(true);
  });

  it('imports the embedded dataset on first start, with visible progress', async () => {
    await expectEmbeddedDatasetImported(page);
  });

  it('trains popularity and a short SASRec run from the Train view', async () => {
    await trainPopularityAndShortSasrec(page);
  });

  it('shows a case study with decoded posters and both models side by side', async () => {
    await expectCaseStudyWithPosters(page);
    await page.screenshot({ path: join(resultsDir, 'electron-case-study.png') });
    expect(pageErrors).toEqual([]);
  });
});
