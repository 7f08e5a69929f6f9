// The analyst's first session, shared by the browser-mode e2e (workbench.e2e.test.ts) and the Electron one
// (electron.e2e.test.ts), so both shells are held to the same flow: the embedded dataset imports by itself
// on a fresh data folder, two short runs train from the Train view, the case study shows decoded posters.
import type { Page } from 'playwright-core';
import { expect } from 'vitest';
import type { DecodedImage } from './fixtures';

/** Waits until the embedded dataset is listed, its import banner gone and its posters shown. */
export async function expectEmbeddedDatasetImported(page: Page): Promise<void> {
  await page.getByTestId('nav-datasets').click();
  await page.getByTestId('datasets-table').getByText('ml-latest-small').waitFor({ timeout: 120_000 });
  await expect.poll(() => page.getByTestId('import-banner').count(), { timeout: 60_000 }).toBe(0);
  await expect.poll(() => page.locator('[data-testid="item-grid"] img.poster').count(), { timeout: 30_000 }).toBeGreaterThan(0);
}

async function trainFromUi(page: Page, model: 'popularity' | 'sasrec', runNumber: number, fields: Record<string, string> = {}): Promise<void> {
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

/** Trains popularity (run #1) and a 3-epoch SASRec (run #2) from the Train view; both listed as succeeded. */
export async function trainPopularityAndShortSasrec(page: Page): Promise<void> {
  await trainFromUi(page, 'popularity', 1);
  await trainFromUi(page, 'sasrec', 2, { 'train-epochs': '3', 'train-maxlen': '50', 'train-evalevery': '1' });
  await page.getByTestId('nav-runs').click();
  const table = page.getByTestId('runs-table');
  await table.waitFor();
  await expect.poll(() => table.locator('tbody tr').count()).toBe(2);
  expect(await table.textContent()).toContain('succeeded');
}

/** Opens user 1's case study and checks both models' columns and that every poster decoded. */
export async function expectCaseStudyWithPosters(page: Page): Promise<void> {
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
}
