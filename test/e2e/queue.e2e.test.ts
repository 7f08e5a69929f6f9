// The job queue as the analyst sees it (issue 13, item 3): with a training running, a second one waits in
// the jobs tray as queued with its place in line and a Cancel button; cancelled there, it never starts and
// its run is cancelled. Browser mode of the built app in Chromium; the trainings are started over the API.
// Saves test-results/job-queue.png.
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ApiMethod, ApiOutput } from '../../src/shared/api';
import type { JobInfo } from '../../src/shared/types';
import { resultsDir, useBrowserSession } from './browser-session';

const session = useBrowserSession({ homePrefix: 'almostrec-e2e-queue-' });
let page: Page;

async function call<M extends ApiMethod>(method: M, input: unknown = {}): Promise<ApiOutput<M>> {
  const url = new URL(session.url);
  const res = await fetch(`${url.origin}/api/${method}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${url.searchParams.get('token')}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(input)
  });
  const envelope = (await res.json()) as { ok: true; result: ApiOutput<M> } | { ok: false; error: { message: string } };
  if (!envelope.ok) throw new Error(`${method}: ${envelope.error.message}`);
  return envelope.result;
}

const jobOf = async (jobId: string): Promise<JobInfo | undefined> => (await call('jobs.list')).find((j) => j.jobId === jobId);

beforeAll(async () => {
  page = await session.browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(session.url);
  expect(errors).toEqual([]);
});

describe('job queue in the UI', () => {
  it('shows a queued training with its place in line, and cancels it before it starts', async () => {
    await expect.poll(async () => (await call('app.info')).defaultDataset.imported, { timeout: 180_000, interval: 500 }).toBe(true);
    const datasetId = (await call('app.info')).defaultDataset.datasetId!;
    const first = await call('train.start', { model: 'sasrec', datasetId, config: { epochs: 200 } });
    const second = await call('train.start', { model: 'sasrec', datasetId, config: { epochs: 200 } });
    expect(await jobOf(second.jobId)).toMatchObject({ status: 'queued', queuePosition: 1 });

    const tray = page.getByRole('region', { name: 'Jobs' });
    await tray.getByTestId('jobs-queued').filter({ hasText: '1 queued' }).waitFor({ timeout: 30_000 });
    const card = tray.getByTestId('job-card').filter({ hasText: `(run ${second.runId})` });
    await expect.poll(async () => (await card.getByTestId('job-queue-position').textContent())?.trim(), { timeout: 30_000 }).toBe(
      'Queued · #1 in the training line; starts when a slot frees up'
    );
    // Reloaded, the page reads the queue back from jobs.list.
    await page.reload();
    await card.getByTestId('job-queue-position').waitFor({ timeout: 30_000 });
    await page.screenshot({ path: join(resultsDir, 'job-queue.png') });

    await card.getByRole('button', { name: 'Cancel' }).click();
    await card.getByText('cancelled').waitFor({ timeout: 30_000 });
    expect(await jobOf(second.jobId)).toMatchObject({ status: 'cancelled', startedAt: null });
    expect((await call('runs.get', { runId: second.runId })).status).toBe('cancelled');
    expect(await tray.getByTestId('jobs-queued').count()).toBe(0);
    expect((await jobOf(first.jobId))?.status).toBe('running');

    await call('jobs.cancel', { jobId: first.jobId });
    await expect.poll(async () => (await jobOf(first.jobId))?.status, { timeout: 60_000, interval: 500 }).toBe('cancelled');
  });
});
