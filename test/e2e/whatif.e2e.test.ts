// What-if in the case study (issue 14 §5), as an analyst uses it: on the importers' small dataset a short
// SASRec run from the Train view, then in the case study the user's history is edited (an item removed,
// one moved with the keyboard and one by dragging, one added by title search) and the column re-ranks
// live through the inference worker, with each item's rank change against the stored list; Reset brings
// the stored list back. Saves test-results/case-study-whatif.png.
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { resultsDir, useBrowserSession } from './browser-session';
import { importTinyDataset } from './fixtures';

const session = useBrowserSession({ homePrefix: 'almostrec-e2e-whatif-', serverArgs: ['--no-import'] });
let page: Page;
const pageErrors: string[] = [];

beforeAll(async () => {
  page = await session.browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(session.url);
});

const text = async (testId: string) => (await page.getByTestId(testId).textContent())?.trim() ?? '';
const columnTitles = () => page.getByTestId('case-column').first().locator('li .title').allTextContents();
const historyTitles = () => page.getByTestId('whatif-history').locator('.title').allTextContents();

describe('what-if histories in the case study', () => {
  it('trains a short SASRec run on the small dataset', async () => {
    await importTinyDataset(page);
    await page.getByTestId('nav-train').click();
    await page.getByTestId('train-model').selectOption('sasrec');
    for (const [testId, value] of Object.entries({ 'train-epochs': '2', 'train-maxlen': '10', 'train-batchsize': '8' })) await page.getByTestId(testId).fill(value);
    await page.getByTestId('train-start').click();
    await page.getByRole('heading', { name: /Run #1\b/ }).waitFor({ timeout: 30_000 });
    await expect.poll(() => text('job-status'), { timeout: 300_000, interval: 500 }).toMatch(/succeeded|failed|cancelled/);
    expect(await text('job-status')).toBe('succeeded');
  });

  it('re-ranks the column live as the history is edited, with rank changes, and resets', async () => {
    await page.getByTestId('nav-case-study').click();
    await page.getByTestId('case-user-search').fill('1');
    await page.getByTestId('case-user-option').first().click();
    await page.getByTestId('case-history').waitFor({ timeout: 30_000 });
    await expect.poll(() => page.getByTestId('case-column').count(), { timeout: 30_000 }).toBe(1);
    const stored = await columnTitles();

    await page.getByTestId('whatif-start').click();
    const original = await historyTitles();
    expect(original.length).toBeGreaterThan(1);
    expect(await page.getByTestId('case-live').count()).toBe(0);

    // Removing an item: it is no longer masked, so it enters the live list as "new".
    await page.getByTestId('whatif-remove').first().click();
    await page.getByTestId('case-live').waitFor({ timeout: 30_000 });
    await expect.poll(columnTitles, { timeout: 30_000 }).toContain(original[0]);
    expect(await columnTitles()).not.toEqual(stored);
    expect(await page.getByTestId('case-rank-change').allTextContents()).toContain('new');

    // Moving one later (keyboard: focus the button, press Enter) changes the order the model reads.
    await page.getByRole('button', { name: `Move ${original[1]} later` }).focus();
    await page.keyboard.press('Enter');
    expect((await historyTitles()).slice(0, 2)).toEqual([original[2], original[1]]);

    // Dragging does the same: the first card dropped on the second swaps them back.
    const cards = page.getByTestId('whatif-history').locator('li');
    await cards.nth(0).dragTo(cards.nth(1));
    expect((await historyTitles()).slice(0, 2)).toEqual([original[1], original[2]]);

    // Adding the removed item back by title search masks it again.
    await page.getByTestId('whatif-search').fill(original[0].slice(0, 4));
    await page.getByRole('button', { name: `Add ${original[0]} at the end` }).click();
    expect((await historyTitles()).at(-1)).toBe(original[0]);
    await expect.poll(columnTitles, { timeout: 30_000 }).not.toContain(original[0]);

    await page.getByTestId('whatif-search').fill('');
    await page.getByTestId('case-column').first().scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(resultsDir, 'case-study-whatif.png') });

    await page.getByTestId('whatif-reset').click();
    expect(await historyTitles()).toEqual(original);
    await expect.poll(() => page.getByTestId('case-live').count(), { timeout: 10_000 }).toBe(0);
    expect(await columnTitles()).toEqual(stored);
    expect(pageErrors).toEqual([]);
  });
});
