// End to end without a mouse, in the system's dark mode: browser mode of the built app (npm run build) in
// Debian's Chromium with prefers-color-scheme: dark. Import the small importer fixture, then only the
// keyboard: Tab to the Train view's link, Enter; Tab to Start, Enter (a visible focus ring on the way);
// Enter in a field starts one too; Tab to a run's row in the Runs view, Enter opens its details. Saves the
// README's dark-mode screenshot (docs/screenshots/train-dark.png) and every view in dark (test-results/dark-*.png).
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { resultsDir, saveReadmeShot, useBrowserSession } from './browser-session';
import { importTinyDataset } from './fixtures';

const session = useBrowserSession({ homePrefix: 'almostrec-e2e-keyboard-', serverArgs: ['--no-import'] });
let page: Page;
const pageErrors: string[] = [];

beforeAll(async () => {
  const context = await session.browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'dark' });
  page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(session.url);
});

/** What has the focus: its data-testid (or tag), and the outline a sighted keyboard user sees on it. */
interface Focused {
  testid: string;
  outlineStyle: string;
  outlineWidth: string;
}

// Evaluated in the page; the e2e files compile without the DOM lib, hence the local shapes.
function focused(): Promise<Focused> {
  return page.evaluate(() => {
    const doc = (globalThis as unknown as { document: { activeElement: { tagName: string; getAttribute(n: string): string | null } | null } }).document;
    const el = doc.activeElement;
    const style = el ? (globalThis as unknown as { getComputedStyle(e: unknown): { outlineStyle: string; outlineWidth: string } }).getComputedStyle(el) : null;
    return { testid: el?.getAttribute('data-testid') ?? el?.tagName.toLowerCase() ?? '', outlineStyle: style?.outlineStyle ?? '', outlineWidth: style?.outlineWidth ?? '' };
  });
}

/** Presses Tab until `testid` has the focus (in document order, at most `max` times); returns what was passed. */
async function tabTo(testid: string, max = 60): Promise<string[]> {
  const passed: string[] = [];
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    const f = await focused();
    passed.push(f.testid);
    if (f.testid === testid) {
      // The focus ring: a real outline, not the browser's nothing-on-click.
      expect(f.outlineStyle, `focus ring of ${testid}`).toBe('solid');
      expect(parseFloat(f.outlineWidth)).toBeGreaterThanOrEqual(2);
      return passed;
    }
  }
  throw new Error(`Tab never reached ${testid}; passed: ${passed.join(', ')}`);
}

describe('the workbench by keyboard, in dark mode', () => {
  it('follows the system dark mode', async () => {
    await importTinyDataset(page);
    const colours = await page.evaluate(() => {
      const g = globalThis as unknown as {
        document: { body: unknown; documentElement: unknown };
        getComputedStyle(e: unknown): { backgroundColor: string; color: string; getPropertyValue(p: string): string };
      };
      const root = g.getComputedStyle(g.document.documentElement);
      return { bg: root.getPropertyValue('--bg').trim(), surface: root.getPropertyValue('--surface').trim(), text: root.color };
    });
    // Dark surfaces, light text (the light scheme's are #f6f7f9, #ffffff and #1d2330).
    const luminance = (hex: string) => parseInt(hex.slice(1, 3), 16) + parseInt(hex.slice(3, 5), 16) + parseInt(hex.slice(5, 7), 16);
    expect(luminance(colours.bg)).toBeLessThan(200);
    expect(luminance(colours.surface)).toBeLessThan(200);
    const [r, g, b] = colours.text.match(/\d+/g)!.map(Number);
    expect(r + g + b).toBeGreaterThan(500);
  });

  it('opens the Train view and starts a run with Tab and Enter only', async () => {
    // A fresh page: the focus starts at the top of the document.
    await page.reload();
    await page.getByTestId('dataset-picker').waitFor();
    // From the top of the page: the top bar's dataset picker, then the navigation in its order.
    expect(await tabTo('nav-train')).toEqual(['dataset-picker', 'nav-datasets', 'nav-train']);
    await page.keyboard.press('Enter');
    await page.getByTestId('train-model').waitFor();
    expect(await page.getByTestId('train-model').inputValue()).toBe('popularity'); // the catalogue's first model
    // Through the form in order: dataset, model, then Start.
    const order = await tabTo('train-start');
    expect(order.indexOf('train-model')).toBeGreaterThanOrEqual(0);
    expect(order.indexOf('train-model')).toBeLessThan(order.indexOf('train-start'));
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: /Run #1\b/ }).waitFor({ timeout: 30_000 });
    await expect.poll(async () => (await page.getByTestId('job-status').textContent())?.trim(), { timeout: 120_000, interval: 500 }).toBe('succeeded');
  });

  it('Enter in a field starts a run too', async () => {
    await page.getByTestId('train-model').focus();
    await page.getByTestId('train-model').selectOption('sasrec'); // a select changes with the arrow keys; this sets it directly
    await page.getByTestId('train-epochs').fill('1');
    await page.getByTestId('train-maxlen').fill('10');
    await page.getByTestId('train-epochs').press('Enter');
    await page.getByRole('heading', { name: /Run #2\b/ }).waitFor({ timeout: 30_000 });
    await expect.poll(async () => (await page.getByTestId('job-status').textContent())?.trim(), { timeout: 300_000, interval: 500 }).toBe('succeeded');
    await saveReadmeShot(page, 'train-dark');
  });

  it('selects a run in the Runs table with Tab and Enter', async () => {
    await page.getByTestId('nav-train').focus();
    await tabTo('nav-runs', 10);
    await page.keyboard.press('Enter');
    await page.getByTestId('runs-table').waitFor();
    await tabTo('run-row-1');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.getByTestId('run-details').getByRole('heading', { name: /Run #1\b/ }).count(), { timeout: 10_000 }).toBe(1);
    // The heading shows at once; the details (with the config table) once the run is loaded.
    await expect.poll(() => page.getByTestId('run-details').getByTestId('config-table').count(), { timeout: 10_000 }).toBe(1);
  });

  it('renders every view in the dark scheme', async () => {
    // For a look at each (test-results/dark-<view>.png); no page error on the way.
    for (const view of ['datasets', 'train', 'runs', 'backbones', 'table2', 'ablation', 'case-study']) {
      await page.getByTestId(`nav-${view}`).press('Enter');
      await page.getByRole('heading', { level: 1 }).first().waitFor();
      await page.screenshot({ path: join(resultsDir, `dark-${view}.png`) });
    }
    expect(pageErrors).toEqual([]);
  });
});
