// End to end, as an analyst would use it: browser mode of the built app (npm run build) in Debian's
// Chromium. A fresh data folder, so the embedded dataset imports by itself; then two short training runs
// from the Train view and the case-study view with decoded posters. Saves test-results/case-study*.png and the
// README's screenshots of the Datasets and Case study views (docs/screenshots/).
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { resultsDir, saveReadmeShot, useBrowserSession } from './browser-session';
import type { DecodedImage } from './fixtures';

const session = useBrowserSession({ homePrefix: 'almostrec-e2e-' });
let page: Page;

beforeAll(async () => {
  page = await session.browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(session.url);
  expect(errors).toEqual([]);
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
    await saveReadmeShot(page, 'datasets');
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
    // The README's: the history strip at the top, the models' top-10 columns under it.
    await page.getByTestId('case-history').evaluate((el) => (el as unknown as { scrollIntoView(o: object): void }).scrollIntoView({ block: 'start' }));
    await saveReadmeShot(page, 'case-study');
    await page.getByTestId('case-column').first().scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(resultsDir, 'case-study-columns.png') });
  });
});
