// Table 2 and the Train form for every catalogued model, in browser mode of the built app (npm run build)
// with Debian's Chromium. Trains only popularity (seconds); `train.start` from the form is intercepted so
// every model's request can be checked without training it. A mocked ALMOSTREC run (runs.list is patched
// in the page, nothing is written) shows the Improv. row. Saves test-results/table2*.png.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { MODEL_CATALOG, defaultConfig } from '../../src/shared/models';
import { resultsDir, useBrowserSession } from './browser-session';

const session = useBrowserSession({ homePrefix: 'almostrec-e2e-t2-' });
let page: Page;
let base: string;
let token: string;

async function call<T>(method: string, input: unknown): Promise<T> {
  const res = await fetch(`${base}/api/${method}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    body: JSON.stringify(input)
  });
  const body = (await res.json()) as { ok: boolean; result: T; error?: { message: string } };
  if (!body.ok) throw new Error(`${method}: ${body.error?.message}`);
  return body.result;
}

beforeAll(async () => {
  base = new URL(session.url).origin;
  token = new URL(session.url).searchParams.get('token')!;
  const context = await session.browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  page = await context.newPage();
  await page.goto(session.url);
});

describe('Table 2 and the catalogue in the UI', () => {
  it('offers every catalogued model in Train, with its form, defaults and only its own keys', async () => {
    await page.getByTestId('nav-datasets').click();
    await page.getByTestId('datasets-table').getByText('ml-latest-small').waitFor({ timeout: 120_000 });
    await expect.poll(() => page.getByTestId('import-banner').count(), { timeout: 60_000 }).toBe(0);

    const sent: { model: string; config: Record<string, number> }[] = [];
    await page.route('**/api/train.start', async (route) => {
      sent.push(JSON.parse(route.request().postData() ?? '{}') as { model: string; config: Record<string, number> });
      await route.fulfill({ json: { ok: false, error: { code: 'invalid_input', message: 'intercepted by the test' } } });
    });
    await page.getByTestId('nav-train').click();
    const select = page.getByTestId('train-model');
    // Grouped by family.
    expect(await select.locator('optgroup').count()).toBe(new Set(MODEL_CATALOG.map((m) => m.family)).size);
    expect(await select.locator('option').count()).toBe(MODEL_CATALOG.length);

    let requests = 0;
    for (const m of MODEL_CATALOG) {
      await select.selectOption(m.kind);
      const info = page.getByTestId('train-model-info');
      await expect.poll(() => info.textContent()).toContain(m.description);
      expect(await info.textContent()).toContain(m.reference);
      expect(await page.getByTestId('train-visual-note').count()).toBe(m.usesImages ? 1 : 0);
      for (const p of m.params) {
        const field = page.getByTestId(`train-${p.key.toLowerCase()}`);
        if (p.toggle) expect(await field.isChecked()).toBe(p.default === 1);
        else if (p.bits) {
          // A bitmask: one checkbox per bit, ticked where the default has it.
          const ticked = await Promise.all(p.bits.map((b) => field.getByTestId(`train-${p.key.toLowerCase()}-${b}`).isChecked()));
          expect(ticked, p.key).toEqual(p.bits.map((_, i) => (p.default & (1 << i)) !== 0));
        } else expect(await field.inputValue()).toBe(String(p.default));
      }
      if (m.params.some((p) => p.refersTo)) {
        // Its backbone and sequential run are still to be chosen (nothing to choose from here): no request.
        // almostrec.e2e.test.ts picks them and trains.
        expect(await page.getByTestId('train-start').isDisabled()).toBe(true);
        continue;
      }
      await page.getByTestId('train-start').click();
      await expect.poll(() => sent.length).toBe(++requests);
      expect(sent.at(-1)).toMatchObject({ model: m.kind, datasetId: 1 });
      expect(sent.at(-1)!.config).toEqual(defaultConfig(m.kind));
    }

    // Edits stay with their model; switching shows the other model's defaults, never stale keys.
    await select.selectOption('sasrec');
    await page.getByTestId('train-maxlen').fill('77');
    await select.selectOption('gru4rec');
    expect(await page.getByTestId('train-maxlen').inputValue()).toBe(String(defaultConfig('gru4rec').maxLen));
    expect(await page.getByTestId('train-numblocks').count()).toBe(0); // a SASRec field
    await select.selectOption('sasrec');
    expect(await page.getByTestId('train-maxlen').inputValue()).toBe('77');
    await page.getByTestId('train-start').click();
    await expect.poll(() => sent.length).toBe(requests + 1);
    expect(sent.at(-1)!.config).toEqual({ ...defaultConfig('sasrec'), maxLen: 77 });
    await page.unroute('**/api/train.start');
  });

  it('shows succeeded runs as Table 2, exports CSV and LaTeX', async () => {
    const { runId } = await call<{ runId: number }>('train.start', { model: 'popularity', datasetId: 1, config: {} });
    await expect
      .poll(async () => (await call<{ status: string }>('runs.get', { runId })).status, { timeout: 120_000, interval: 500 })
      .toBe('succeeded');

    await page.getByTestId('nav-table2').click();
    const table = page.getByTestId('table2');
    await expect.poll(() => table.locator('[data-testid="table2-row"]').count(), { timeout: 30_000 }).toBe(1);
    expect(await table.textContent()).toContain('Popularity');
    expect(await table.textContent()).toContain('Non-sequential');
    expect(await page.getByTestId('table2-improv').count()).toBe(0);
    expect(await table.locator('td.best').count()).toBe(5);

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('table2-csv').click()]);
    expect(download.suggestedFilename()).toMatch(/^table2-ml-latest-small-best-per-model\.csv$/);
    const csv = readFileSync((await download.path())!, 'utf8');
    expect(csv.split('\r\n')[0]).toBe('Family,Model,Kind,Run,HR@10,HR@20,NDCG@10,NDCG@20,MRR,Valid NDCG@10');
    expect(csv).toMatch(/\r\nNon-sequential,Popularity,popularity,\d+,0\.\d{4},/);

    await page.getByTestId('table2-latex').click();
    const pre = page.getByTestId('table2-latex-text');
    await pre.waitFor();
    const tex = (await pre.textContent()) ?? '';
    expect(tex).toContain('\\begin{tabular}{llccccc}');
    expect(tex).toContain('\\toprule');
    expect(tex).toContain('\\textbf{');
    // This file compiles without the DOM lib: reach the page's clipboard through globalThis.
    const clipboard = () => (globalThis as unknown as { navigator: { clipboard: { readText(): Promise<string> } } }).navigator.clipboard.readText();
    expect(await page.evaluate(clipboard)).toBe(tex);
    await page.screenshot({ path: join(resultsDir, 'table2.png') });
  });

  it('adds the Improv. row when ALMOSTREC runs exist (mocked run list)', async () => {
    await page.route('**/api/runs.list', async (route) => {
      const response = await route.fetch();
      const body = (await response.json()) as { ok: boolean; result: { id: number; model: string; valid: Record<string, number>; test: Record<string, number> }[] };
      const pop = body.result.find((r) => r.model === 'popularity')!;
      const scale = (m: Record<string, number>, f: number) => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, v * f]));
      body.result.push({ ...pop, id: 900, model: 'almostrec', valid: scale(pop.valid, 1.5), test: scale(pop.test, 1.25) });
      await route.fulfill({ response, json: body });
    });
    await page.getByTestId('nav-runs').click();
    await page.getByTestId('nav-table2').click();
    const improv = page.getByTestId('table2-improv');
    await improv.waitFor({ timeout: 10_000 });
    expect(await improv.textContent()).toContain('25.00%');
    expect(await page.getByTestId('table2').locator('td.second').count()).toBe(5);
    await page.screenshot({ path: join(resultsDir, 'table2-improv-mocked.png') });
    await page.unroute('**/api/runs.list');
  });
});
