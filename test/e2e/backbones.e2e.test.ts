// End to end, the Backbones view in browser mode (npm run build) in Debian's Chromium: import the small
// importer fixture through the Datasets form (fast, unlike the embedded dataset's 3,600 posters), pretrain a
// tiny backbone from the form, follow its loss curve to the end, then register the tiny llava-hf fixture and
// see a wrong folder refused with the path named. Saves test-results/backbones.png.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRETRAIN_PARAMS } from '../../src/shared/backbones';

const root = resolve(__dirname, '..', '..');
const resultsDir = join(root, 'test-results');
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const DATASET = join(root, 'test', 'fixtures', 'importers', 'ml-latest');
const HF_FIXTURE = join(root, 'test', 'fixtures', 'hf-llava-tiny', 'model');
/** Form fields (data-testid) of a pretraining that takes seconds. */
const TINY: Record<string, string> = {
  'pretrain-hiddensize': '32',
  'pretrain-numlayers': '1',
  'pretrain-numheads': '2',
  'pretrain-numkvheads': '1',
  'pretrain-intermediatesize': '64',
  'pretrain-maxtokens': '32',
  'pretrain-batchsize': '2',
  'pretrain-stage1steps': '2',
  'pretrain-stage2steps': '2'
};

let server: ChildProcess;
let browser: Browser;
let page: Page;
let home: string;
const pageErrors: string[] = [];

function startServer(): Promise<string> {
  return new Promise((resolveUrl, reject) => {
    server = spawn(process.execPath, [join(root, 'out', 'main', 'browser.js'), '--no-open', '--no-import'], {
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
  home = mkdtempSync(join(tmpdir(), 'almostrec-e2e-backbones-'));
  mkdirSync(resultsDir, { recursive: true });
  const url = await startServer();
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run']
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(url);
});

afterAll(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
  if (home) rmSync(home, { recursive: true, force: true });
});

describe('Backbones view in browser mode', () => {
  it('imports a small dataset from the Datasets form', async () => {
    await page.getByTestId('nav-datasets').click();
    await page.getByTestId('import-format').selectOption('movielens-latest');
    await page.getByTestId('import-path').fill(DATASET);
    await page.getByTestId('import-name').fill('tiny');
    await page.getByTestId('import-start').click();
    await page.getByTestId('datasets-table').getByText('tiny').waitFor({ timeout: 60_000 });
  });

  it('pretrains a tiny backbone from the form and follows its loss curve to the end', async () => {
    await page.getByTestId('nav-backbones').click();
    await expect.poll(() => page.getByTestId('pretrain-name').inputValue()).toBe('compact-tiny');
    await expect.poll(() => page.getByTestId('pretrain-stage1steps').inputValue()).toBe(String(PRETRAIN_PARAMS.find((p) => p.key === 'stage1Steps')!.default)); // catalogue default shown
    for (const [testId, value] of Object.entries(TINY)) await page.getByTestId(testId).fill(value);
    await page.getByTestId('pretrain-start').click();

    const details = page.getByTestId('backbone-details');
    await details.getByRole('heading', { name: /compact-tiny/ }).waitFor({ timeout: 30_000 });
    const status = page.getByTestId('backbone-status');
    await expect.poll(async () => (await status.textContent())?.trim(), { timeout: 600_000, interval: 1000 }).toMatch(/succeeded|failed|cancelled/);
    const error = (await details.getByRole('alert').count()) > 0 ? await details.getByRole('alert').first().textContent() : null;
    expect((await status.textContent())?.trim(), error ?? '').toBe('succeeded');

    // Both stages drawn, one colour each (stage 1 blue, stage 2 orange: BackboneDetails' series).
    const chart = page.getByTestId('pretrain-loss-chart');
    await expect.poll(() => chart.locator('circle').count(), { timeout: 30_000 }).toBeGreaterThanOrEqual(2);
    expect(await chart.locator('circle[fill="#3b6fd8"]').count()).toBeGreaterThan(0);
    expect(await chart.locator('circle[fill="#c2710c"]').count()).toBeGreaterThan(0);

    const table = page.getByTestId('backbones-table');
    await expect.poll(async () => await table.locator('tbody tr').first().textContent(), { timeout: 30_000 }).toMatch(/compact-tiny.*succeeded/);
    await page.screenshot({ path: join(resultsDir, 'backbones.png'), fullPage: true });
  });

  it('registers a llava-hf folder, and names a wrong folder in the error', async () => {
    const wrong = join(home, 'no-such-model');
    await page.getByTestId('register-path').fill(wrong);
    await page.getByTestId('register-name').fill('llava-x');
    await page.getByTestId('register-start').click();
    await expect.poll(() => page.getByRole('alert').filter({ hasText: wrong }).count(), { timeout: 30_000 }).toBe(1);

    await page.getByTestId('register-path').fill(HF_FIXTURE);
    await page.getByTestId('register-name').fill('llava-tiny');
    await page.getByTestId('register-start').click();
    await page.getByTestId('register-result').waitFor({ timeout: 30_000 });
    await expect.poll(() => page.getByTestId('backbones-table').locator('tbody tr').count()).toBe(2);
    expect(await page.getByTestId('backbones-table').textContent()).toContain('Hugging Face');
    expect(pageErrors).toEqual([]);
  });
});
