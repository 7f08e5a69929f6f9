// End to end, the Backbones view in browser mode (npm run build) in Debian's Chromium: import the small
// importer fixture through the Datasets form (fast, unlike the embedded dataset's 3,600 posters), pretrain a
// tiny backbone from the form, follow its loss curve to the end, then register the tiny llava-hf fixture and
// see a wrong folder refused with the path named. Saves test-results/backbones.png.
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { PRETRAIN_PARAMS } from '../../src/shared/backbones';
import { resultsDir, root, useBrowserSession } from './browser-session';
import { importTinyDataset, TINY_BACKBONE } from './fixtures';

const HF_FIXTURE = join(root, 'test', 'fixtures', 'hf-llava-tiny', 'model');

const session = useBrowserSession({ homePrefix: 'almostrec-e2e-backbones-', serverArgs: ['--no-import'] });
let page: Page;
const pageErrors: string[] = [];

beforeAll(async () => {
  page = await session.browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(session.url);
});

describe('Backbones view in browser mode', () => {
  it('imports a small dataset from the Datasets form', async () => {
    await importTinyDataset(page);
  });

  it('pretrains a tiny backbone from the form and follows its loss curve to the end', async () => {
    await page.getByTestId('nav-backbones').click();
    await expect.poll(() => page.getByTestId('pretrain-name').inputValue()).toBe('compact-tiny');
    await expect.poll(() => page.getByTestId('pretrain-stage1steps').inputValue()).toBe(String(PRETRAIN_PARAMS.find((p) => p.key === 'stage1Steps')!.default)); // catalogue default shown
    for (const [testId, value] of Object.entries(TINY_BACKBONE)) await page.getByTestId(testId).fill(value);
    await page.getByTestId('pretrain-start').click();

    const details = page.getByTestId('backbone-details');
    await details.getByRole('heading', { name: /compact-tiny/ }).waitFor({ timeout: 30_000 });
    const status = page.getByTestId('backbone-status');
    await expect.poll(async () => (await status.textContent())?.trim(), { timeout: 600_000, interval: 1000 }).toMatch(/succeeded|failed|cancelled/);
    const error = (await details.getByRole('alert').count()) > 0 ? await details.getByRole('alert').first().textContent() : null;
    expect((await status.textContent())?.trim(), error ?? '').toBe('succeeded');

    // The three stages drawn, one colour each (stage 0 green, stage 1 blue, stage 2 orange: BackboneDetails' series).
    const chart = page.getByTestId('pretrain-loss-chart');
    await expect.poll(() => chart.locator('circle').count(), { timeout: 30_000 }).toBeGreaterThanOrEqual(3);
    expect(await chart.locator('circle[fill="#1f8a4c"]').count()).toBeGreaterThan(0);
    expect(await chart.locator('circle[fill="#3b6fd8"]').count()).toBeGreaterThan(0);
    expect(await chart.locator('circle[fill="#c2710c"]').count()).toBeGreaterThan(0);
    // Under it, the held-out caption loss: at the start and after each stage.
    await expect.poll(() => page.getByTestId('held-out-loss').locator('tbody tr').count(), { timeout: 30_000 }).toBe(4);

    const table = page.getByTestId('backbones-table');
    await expect.poll(async () => await table.locator('tbody tr').first().textContent(), { timeout: 30_000 }).toMatch(/compact-tiny.*succeeded/);
    await page.screenshot({ path: join(resultsDir, 'backbones.png'), fullPage: true });
  });

  it('registers a llava-hf folder, and names a wrong folder in the error', async () => {
    const wrong = join(session.home, 'no-such-model');
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
