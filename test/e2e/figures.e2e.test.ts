// The figure exports in Chromium (browser mode of the built app): the case study as SVG, PNG and CSV, a run's
// recommendations as CSV from the Runs view, and the ablation chart as SVG/PNG — each a real download
// (Playwright's download event), its file checked: the SVG parses, the PNG decodes in the browser at
// 2100 px across with a 300-dpi pHYs chunk. Saves test-results/case-study-export.png. The ablation study is a stand-in answer to ablation.list (its
// runs are this file's real runs): training seven ALMOSTREC variants is almostrec.e2e.test.ts's work.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import type { Download, Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import type { AblationStudy } from '../../src/shared/ablation';
import { pngDimensions, pngDpi } from '../../src/shared/figures/png-dpi';
import type { RunSummary } from '../../src/shared/types';
import { resultsDir, useBrowserSession } from './browser-session';
import { importTinyDataset } from './fixtures';

const session = useBrowserSession({ homePrefix: 'almostrec-e2e-figures-', serverArgs: ['--no-import'] });
let page: Page;
let base: string;
let token: string;
const pageErrors: string[] = [];

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

async function train(model: string, config: Record<string, number>): Promise<number> {
  const { runId } = await call<{ runId: number }>('train.start', { model, datasetId: 1, config });
  // A plain loop: expect.poll works inside tests only, and this runs in beforeAll.
  for (const until = Date.now() + 120_000; Date.now() < until; await new Promise((r) => setTimeout(r, 500))) {
    const { status, error } = await call<RunSummary>('runs.get', { runId });
    if (status === 'succeeded') return runId;
    if (status === 'failed' || status === 'cancelled') throw new Error(`Run ${runId} (${model}) ${status}: ${error}`);
  }
  throw new Error(`Run ${runId} (${model}) did not finish within 120 s`);
}

/** Clicks `testid` and returns the download it starts, with its bytes. */
async function download(testid: string): Promise<{ name: string; bytes: Buffer }> {
  const [d] = await Promise.all([page.waitForEvent('download', { timeout: 30_000 }), page.getByTestId(testid).click()]);
  const path = await (d as Download).path();
  return { name: d.suggestedFilename(), bytes: readFileSync(path) };
}

/** The DOM the page function below uses (the e2e files compile without the DOM lib). */
interface PageDom {
  Image: new () => { src: string; naturalWidth: number; naturalHeight: number; decode(): Promise<void> };
  document: {
    createElement(tag: 'canvas'): {
      width: number;
      height: number;
      getContext(kind: '2d'): { drawImage(img: unknown, x: number, y: number): void; getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } };
    };
  };
}

/** The PNG decoded by Chromium: its size and whether any pixel is not white (something was drawn). */
async function decodeInBrowser(png: Buffer): Promise<{ width: number; height: number; inked: boolean }> {
  return page.evaluate(async (b64) => {
    const dom = globalThis as unknown as PageDom;
    const img = new dom.Image();
    img.src = `data:image/png;base64,${b64}`;
    await img.decode();
    const canvas = dom.document.createElement('canvas');
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    let inked = false;
    for (let i = 0; i < px.length && !inked; i += 4) inked = px[i] < 200 || px[i + 1] < 200 || px[i + 2] < 200;
    return { width: img.naturalWidth, height: img.naturalHeight, inked };
  }, png.toString('base64'));
}

async function expectPublicationPng(png: Buffer): Promise<void> {
  const size = pngDimensions(png);
  expect(size.width).toBe(2100);
  expect(pngDpi(png)).toBe(300);
  expect(await decodeInBrowser(png)).toEqual({ ...size, inked: true });
}

let runs: number[];

beforeAll(async () => {
  base = new URL(session.url).origin;
  token = new URL(session.url).searchParams.get('token')!;
  const context = await session.browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(session.url);
  await importTinyDataset(page);
  runs = [await train('popularity', {}), await train('sasrec', { epochs: 1, maxLen: 10 })];
});

describe('figure exports in Chromium', () => {
  it('downloads the case study as SVG, 300-dpi PNG and CSV', async () => {
    await page.getByTestId('nav-case-study').click();
    await page.getByTestId('case-user-search').fill('1');
    await page.getByTestId('case-user-option').first().click();
    await expect.poll(() => page.getByTestId('case-column').count(), { timeout: 30_000 }).toBe(2);
    await page.screenshot({ path: join(resultsDir, 'case-study-export.png') });

    const svg = await download('case-export-svg');
    expect(svg.name).toBe('case-study-tiny-user-1.svg');
    const text = svg.bytes.toString('utf8');
    expect(() => new Resvg(text)).not.toThrow();
    expect(text).toMatch(/^<\?xml[^]*<svg [^>]*width="504pt"/);
    expect(text.match(/<g class="model-row"/g)).toHaveLength(2);
    expect(text).toContain('data-hit="true"');
    expect(text).toContain('href="data:image/'); // posters embedded

    const png = await download('case-export-png');
    expect(png.name).toBe('case-study-tiny-user-1.png');
    await expectPublicationPng(png.bytes);

    const csv = await download('case-export-csv');
    const lines = csv.bytes.toString('utf8').trimEnd().split('\r\n');
    expect(lines[0]).toBe('run,model,user,rank,item_id,title,score,hit');
    expect(lines.length).toBeGreaterThan(1);
    expect(lines.slice(1).every((l) => l.includes(',1,'))).toBe(true); // user 1, rank 1 (one unseen item each)
  });

  it("downloads a run's recommendations as CSV from the Runs view", async () => {
    await page.getByTestId('nav-runs').click();
    await page.getByTestId(`run-row-${runs[1]}`).click();
    const csv = await download('run-recommendations-csv');
    expect(csv.name).toBe(`recommendations-tiny-run-${runs[1]}-sasrec.csv`);
    const lines = csv.bytes.toString('utf8').trimEnd().split('\r\n');
    expect(lines[0]).toBe('user,rank,item_id,title,score,hit');
    expect(lines).toHaveLength(1 + 6);
  });

  it('downloads the ablation chart as SVG and PNG', async () => {
    const [full, other] = await Promise.all(runs.map((runId) => call<RunSummary>('runs.get', { runId })));
    const study: AblationStudy = {
      id: full.id,
      datasetId: 1,
      datasetName: 'tiny',
      jobId: null,
      status: 'succeeded',
      variants: [
        { variant: 'full', label: 'ALMOSTREC', run: full },
        { variant: 'no-images', label: 'w/o images', run: other }
      ]
    };
    await page.route('**/api/ablation.list', (route) => route.fulfill({ json: { ok: true, result: [study] } }));
    await page.getByTestId('nav-ablation').click();
    await page.getByTestId('ablation-study').waitFor({ timeout: 30_000 });

    const svg = await download('ablation-figure-svg');
    expect(svg.name).toBe(`ablation-tiny-study-${full.id}.svg`);
    const text = svg.bytes.toString('utf8');
    expect(() => new Resvg(text)).not.toThrow();
    expect(text.match(/<g class="panel">/g)).toHaveLength(2);
    expect(text.match(/<rect class="bar"/g)).toHaveLength(2 * 2 * 2);
    expect(text).toContain('>w/o images</text>');

    await expectPublicationPng((await download('ablation-figure-png')).bytes);
    await page.unroute('**/api/ablation.list');
    expect(pageErrors).toEqual([]);
  });
});
