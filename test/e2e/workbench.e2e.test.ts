// End to end, as an analyst would use it: browser mode of the built app (npm run build) in Debian's
// Chromium. A fresh data folder, so the embedded dataset imports by itself; then two short training runs
// from the Train view and the case-study view with decoded posters (workbench-flow.ts, shared with the
// Electron e2e). Saves test-results/case-study*.png and the README's screenshots of the Datasets and Case study
// views (docs/screenshots/).
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { resultsDir, saveReadmeShot, useBrowserSession } from './browser-session';
import { expectCaseStudyWithPosters, expectEmbeddedDatasetImported, trainPopularityAndShortSasrec } from './workbench-flow';

const session = useBrowserSession({ homePrefix: 'almostrec-e2e-' });
let page: Page;

beforeAll(async () => {
  page = await session.browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(session.url);
  expect(errors).toEqual([]);
});

describe('workbench in browser mode', () => {
  it('imports the embedded dataset on first start, with visible progress', async () => {
    await expectEmbeddedDatasetImported(page);
    await saveReadmeShot(page, 'datasets');
  });

  it('trains popularity and a short SASRec run from the Train view', async () => {
    await trainPopularityAndShortSasrec(page);
  });

  it('shows a case study with decoded posters and both models side by side', async () => {
    await expectCaseStudyWithPosters(page);
    await page.screenshot({ path: join(resultsDir, 'case-study.png') });
    // The README's: the history strip at the top, the models' top-10 columns under it.
    await page.getByTestId('case-history').evaluate((el) => (el as unknown as { scrollIntoView(o: object): void }).scrollIntoView({ block: 'start' }));
    await saveReadmeShot(page, 'case-study');
    await page.getByTestId('case-column').first().scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(resultsDir, 'case-study-columns.png') });
  });
});
