// End to end, as an analyst would use it: browser mode of the built app (npm run build) in Debian's
// Chromium. A fresh data folder, so the embedded dataset imports by itself; then two short training runs
// from the Train view and the case-study view with decoded posters. Saves test-results/case-study*.png.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = resolve(__dirname, '..', '..');
const resultsDir = join(root, 'test-results');
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** The two HTMLImageElement fields we read (this file compiles without the DOM lib). */
interface DecodedImage {
  complete: boolean;
  naturalWidth: number;
}

let server: ChildProcess;
let browser: Browser;
let page: Page;
let home: string;

function startServer(): Promise<string> {
  return new Promise((resolveUrl, reject) => {
    server = spawn(process.execPath, [join(root, 'out', 'main', 'browser.js'), '--no-open'], {
      env: { ...process.env, ALMOSTREC_HOME: home },
      stdio: ['ignore', 'pipe', 'pipe']
    });
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

beforeAll(async () => {
  if (!existsSync(join(root, 'out', 'main', 'browser.js')) || !existsSync(join(root, 'out', 'renderer', 'index.html'))) {
    throw new Error('The app is not built: run "npm run build" before the end-to-end test');
  }
  if (!existsSync(chromiumPath)) throw new Error(`Chromium not found at ${chromiumPath} (apt-get install chromium, or set CHROMIUM_PATH)`);
  home = mkdtempSync(join(tmpdir(), 'almostrec-e2e-'));
  mkdirSync(resultsDir, { recursive: true });
  const url = await startServer();
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run']
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  expect(errors).toEqual([]);
});

afterAll(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
  if (home) rmSync(home, { recursive: true, force: true });
});

async function trainFromUi(model: 'popularity' | 'sasrec', runNumber: number, fields: Record<string, string> = {}): Promise<void> {
  await page.getByTestId('nav-train').click();
  await page.getByTestId('train-model').selectOption(model);
  for (const [testId, value] of Object.entries(fields)) await page.getByTestId(testId).fill(value);
  await page.getByTestId('train-start').click();
  await page.getByRole('heading', { name: new RegExp(`Run #${runNumber}\\b`) }).waitFor({ timeout: 30_000 });
  await expect
    .poll(async () => (await page.getByTestId('job-status').textContent())?.trim(), { timeout: 600_000, interval: 1000 })
    .toMatch(/succeeded|failed|cancelled/);
  expect((await page.getByTestId('job-status').textContent())?.trim()).toBe('succeeded');
}

describe('workbench in browser mode', () => {
  it('imports the embedded dataset on first start, with visible progress', async () => {
    await page.getByTestId('nav-datasets').click();
    await page.getByTestId('datasets-table').getByText('ml-latest-small').waitFor({ timeout: 120_000 });
    await expect.poll(() => page.getByTestId('import-banner').count(), { timeout: 60_000 }).toBe(0);
    await expect.poll(() => page.locator('[data-testid="item-grid"] img.poster').count(), { timeout: 30_000 }).toBeGreaterThan(0);
  });

  it('trains popularity and a short SASRec run from the Train view', async () => {
    await trainFromUi('popularity', 1);
    await trainFromUi('sasrec', 2, { 'train-epochs': '3', 'train-maxlen': '50', 'train-evalevery': '1' });
    await page.getByTestId('nav-runs').click();
    const table = page.getByTestId('runs-table');
    await table.waitFor();
    await expect.poll(() => table.locator('tbody tr').count()).toBe(2);
    expect(await table.textContent()).toContain('succeeded');
  });

  it('shows a case study with decoded posters and both models side by side', async () => {
    await page.getByTestId('nav-case-study').click();
    await page.getByTestId('case-user-search').fill('1');
    await page.getByTestId('case-user-option').first().click();
    await page.getByTestId('case-history').waitFor({ timeout: 30_000 });
    await page.getByTestId('case-heldout').waitFor();
    await expect.poll(() => page.getByTestId('case-column').count(), { timeout: 30_000 }).toBe(2);
    const posters = page.locator('img.poster');
    await expect.poll(() => posters.count()).toBeGreaterThan(5);
    // Images actually decoded: every rendered poster has a natural width.
    await expect
      .poll(() => posters.evaluateAll((imgs) => (imgs as unknown as DecodedImage[]).filter((i) => i.complete && i.naturalWidth > 0).length))
      .toBeGreaterThan(5);
    const broken = await posters.evaluateAll((imgs) => (imgs as unknown as DecodedImage[]).filter((i) => i.complete && i.naturalWidth === 0).length);
    expect(broken).toBe(0);
    await page.screenshot({ path: join(resultsDir, 'case-study.png') });
    await page.getByTestId('case-column').first().scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(resultsDir, 'case-study-columns.png') });
  });
});
