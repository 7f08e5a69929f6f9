// Shared by the end-to-end tests: form values, page types and steps more than one test file uses.
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { root } from './browser-session';

/** The importers' small MovieLens fixture (fast to import, unlike the embedded dataset's 3,600 posters). */
export const TINY_DATASET = join(root, 'test', 'fixtures', 'importers', 'ml-latest');

/** Imports TINY_DATASET as "tiny" through the Datasets form and waits until it is listed. */
export async function importTinyDataset(page: Page): Promise<void> {
  await page.getByTestId('nav-datasets').click();
  await page.getByTestId('import-format').selectOption('movielens-latest');
  await page.getByTestId('import-path').fill(TINY_DATASET);
  await page.getByTestId('import-name').fill('tiny');
  await page.getByTestId('import-start').click();
  await page.getByTestId('datasets-table').getByText('tiny').waitFor({ timeout: 60_000 });
}

/** Form fields (data-testid) of a pretraining that takes seconds. */
export const TINY_BACKBONE: Readonly<Record<string, string>> = {
  'pretrain-hiddensize': '32',
  'pretrain-numlayers': '1',
  'pretrain-numheads': '2',
  'pretrain-numkvheads': '1',
  'pretrain-intermediatesize': '64',
  'pretrain-maxtokens': '32',
  'pretrain-batchsize': '2',
  'pretrain-stage0steps': '2',
  'pretrain-stage1steps': '2',
  'pretrain-stage2steps': '2',
  'pretrain-heldoutpercent': '20'
};

/** The two HTMLImageElement fields the tests read (the e2e files compile without the DOM lib). */
export interface DecodedImage {
  complete: boolean;
  naturalWidth: number;
}
