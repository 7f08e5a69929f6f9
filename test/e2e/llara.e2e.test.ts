// End to end, the case study of paper Fig. 4 — SASRec, LLaRA and ALMOSTREC side by side — from the UI alone,
// in browser mode of the built app (npm run build) with Debian's Chromium: import the small importer fixture,
// train SASRec, pretrain a tiny backbone, train LLaRA and ALMOSTREC with both chosen in the Train form's
// pickers, then open the case study: LLaRA's column reads the user's case in a job (its generated text or
// "invalid output", its candidates, the held-out item's rank) and shows the prompt it read; ALMOSTREC's top-10
// gains a Prompt disclosure with its image and ID tokens. Saves test-results/case-study-llara.png.
//
// The fixture's 5-core split keeps 6 users × 6 items and every user has seen all six (almostrec.e2e.test.ts):
// LLaRA's candidates are the held-out item alone (Zeta (1995) for user 1), ranked first under full ranking,
// whatever the weights; what a tiny model writes is not predictable, so either outcome of the answer passes.
// User 1's last 3 history items are Alpha (a poster), Delta and Epsilon (none).
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { resultsDir, useBrowserSession } from './browser-session';
import { importTinyDataset, TINY_BACKBONE } from './fixtures';

const TINY_SEQ = { 'train-epochs': '2', 'train-maxlen': '10', 'train-batchsize': '8' };
const TINY_LLARA = {
  'train-epochs': '1',
  'train-batchsize': '4',
  'train-warmupsteps': '0',
  'train-historylength': '3',
  'train-candidates': '5',
  'train-maxtitletokens': '4',
  'train-samplesperuser': '1',
  'train-curriculumepochs': '0'
};
const TINY_ALMOSTREC = {
  'train-epochs': '1',
  'train-batchsize': '4',
  'train-warmupsteps': '0',
  'train-historylength': '3',
  'train-maxtitletokens': '4',
  'train-samplesperuser': '1'
};

const session = useBrowserSession({ homePrefix: 'almostrec-e2e-llara-', serverArgs: ['--no-import'] });
let page: Page;
const pageErrors: string[] = [];

beforeAll(async () => {
  const context = await session.browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(session.url);
});

const text = async (testId: string) => (await page.getByTestId(testId).textContent())?.trim() ?? '';

/** Starts the Train form as filled and waits for the run to end; it must succeed. */
async function trainFromForm(runNumber: number): Promise<void> {
  await page.getByTestId('train-start').click();
  await page.getByRole('heading', { name: new RegExp(`Run #${runNumber}\\b`) }).waitFor({ timeout: 30_000 });
  await expect.poll(() => text('job-status'), { timeout: 300_000, interval: 500 }).toMatch(/succeeded|failed|cancelled/);
  const error = (await page.locator('.err').count()) > 0 ? await page.locator('.err').first().textContent() : '';
  expect(await text('job-status'), error ?? '').toBe('succeeded');
}

async function fill(fields: Record<string, string>): Promise<void> {
  for (const [testId, value] of Object.entries(fields)) await page.getByTestId(testId).fill(value);
}

describe('LLaRA in the case study', () => {
  it('trains SASRec, pretrains a tiny backbone, and trains LLaRA and ALMOSTREC with both chosen in the pickers', async () => {
    await importTinyDataset(page);
    await page.getByTestId('nav-train').click();
    await page.getByTestId('train-model').selectOption('sasrec');
    await fill(TINY_SEQ);
    await trainFromForm(1);

    await page.getByTestId('nav-backbones').click();
    await expect.poll(() => page.getByTestId('pretrain-name').inputValue()).toBe('compact-tiny');
    await fill(TINY_BACKBONE);
    await page.getByTestId('pretrain-start').click();
    await page.getByTestId('backbone-details').getByRole('heading', { name: /compact-tiny/ }).waitFor({ timeout: 30_000 });
    await expect.poll(() => text('backbone-status'), { timeout: 300_000, interval: 500 }).toMatch(/succeeded|failed|cancelled/);
    expect(await text('backbone-status')).toBe('succeeded');

    await page.getByTestId('nav-train').click();
    await page.getByTestId('train-model').selectOption('llara');
    const backbone = page.getByTestId('train-backboneid');
    const seqRun = page.getByTestId('train-seqrunid');
    await expect.poll(() => backbone.locator('option').allTextContents()).toEqual(['— choose —', expect.stringMatching(/^compact-tiny · /)]);
    await expect.poll(() => seqRun.locator('option').allTextContents()).toEqual(['— choose —', expect.stringMatching(/^#1 SASRec · /)]);
    await backbone.selectOption({ index: 1 });
    await seqRun.selectOption({ index: 1 });
    await fill(TINY_LLARA);
    await trainFromForm(2);

    await page.getByTestId('train-model').selectOption('almostrec');
    await expect.poll(() => backbone.locator('option').count()).toBe(2);
    await backbone.selectOption({ index: 1 });
    await seqRun.selectOption({ index: 1 });
    await fill(TINY_ALMOSTREC);
    await trainFromForm(3);
  });

  it('shows LLaRA beside SASRec and ALMOSTREC: its answer or "invalid output", its candidates, the rank and the prompt it read', async () => {
    await page.getByTestId('nav-case-study').click();
    await page.getByTestId('case-user-search').fill('1');
    await page.getByTestId('case-user-option').first().click();
    await page.getByTestId('case-heldout').waitFor({ timeout: 30_000 });
    const columns = page.getByTestId('case-column');
    await expect.poll(() => columns.count(), { timeout: 30_000 }).toBe(3);
    expect(await columns.locator('.label').allTextContents()).toEqual([expect.stringMatching(/^SASRec/), expect.stringMatching(/^LLaRA/), expect.stringMatching(/^ALMOSTREC/)]);
    // SASRec's column is its top-10 as before, with no prompt.
    const sasrec = columns.filter({ hasText: 'SASRec' });
    expect(await sasrec.locator('li').count()).toBe(1);
    expect(await sasrec.getByTestId('case-prompt').count()).toBe(0);

    // LLaRA's column reads the case in a job as soon as it shows.
    const llara = columns.filter({ hasText: 'LLaRA' });
    await llara.getByTestId('case-llara-generated').waitFor({ timeout: 120_000 });
    const outcome = llara.getByTestId('case-llara-matched').or(llara.getByTestId('case-llara-invalid'));
    expect(await outcome.count()).toBe(1);
    if ((await llara.getByTestId('case-llara-invalid').count()) === 1) {
      expect(await llara.getByTestId('case-llara-invalid').textContent()).toContain('invalid output');
    } else {
      expect(await llara.getByTestId('case-llara-matched').locator('.title').textContent()).toBe('Zeta (1995)');
    }
    expect((await llara.getByTestId('case-llara-rank').textContent())?.trim()).toBe('held-out item rank 1 under full ranking');

    const candidates = llara.getByTestId('case-llara-candidates');
    expect(await candidates.locator('summary').textContent()).toBe('Candidates (1)');
    await candidates.locator('summary').click();
    const listed = candidates.getByTestId('case-llara-candidate');
    expect(await listed.allTextContents()).toEqual([expect.stringMatching(/^Zeta \(1995\)\s*ID 6 · held out/)]);

    // The prompt: <s>, the last 3 history items and the one candidate, each title followed by its ID token.
    await llara.getByTestId('case-prompt').locator('summary').click();
    const prompt = llara.getByTestId('case-prompt-text');
    await prompt.waitFor({ timeout: 30_000 });
    expect(await prompt.textContent()).toMatch(/^<s> /);
    const ids = await prompt.getByTestId('case-prompt-id').allTextContents();
    expect(ids).toHaveLength(4);
    expect(ids.at(-1)).toBe('ID · Zeta (1995)');
    expect(await prompt.getByTestId('case-prompt-image').count()).toBe(0);

    // ALMOSTREC keeps its top-10 and reads its prompt on demand: Alpha's poster, then each item's ID token.
    const ours = columns.filter({ hasText: 'ALMOSTREC' });
    expect(await ours.getByTestId('case-hit').count()).toBe(1);
    await ours.getByTestId('case-prompt').locator('summary').click();
    const oursPrompt = ours.getByTestId('case-prompt-text');
    await oursPrompt.waitFor({ timeout: 120_000 });
    expect(await oursPrompt.getByTestId('case-prompt-image').allTextContents()).toEqual(['image×1 · Alpha (1990)']);
    expect(await oursPrompt.getByTestId('case-prompt-id').allTextContents()).toEqual(['ID · Alpha (1990)', 'ID · Delta (1993)', 'ID · Epsilon (1994)']);
    await oursPrompt.scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(resultsDir, 'case-study-llara.png'), fullPage: true });

    // Esc closes the disclosure that holds the focus, and the focus stays on its summary.
    const disclosure = ours.getByTestId('case-prompt');
    await disclosure.locator('summary').focus();
    await page.keyboard.press('Escape');
    await expect.poll(() => disclosure.evaluate((d) => (d as unknown as { open: boolean }).open)).toBe(false);
    expect(await disclosure.locator('summary').evaluate((s) => s === (s as unknown as { ownerDocument: { activeElement: unknown } }).ownerDocument.activeElement)).toBe(true);
    expect(pageErrors).toEqual([]);
  });
});
