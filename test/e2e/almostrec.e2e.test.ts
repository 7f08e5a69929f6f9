// End to end, ALMOSTREC from the UI alone, in browser mode of the built app (npm run build) with Debian's
// Chromium: import the small importer fixture, train SASRec from the Train view, pretrain a tiny backbone
// from the Backbones view, train ALMOSTREC with both chosen in the Train form's pickers, read it in Table 2
// and the case study, then run an ablation study (GRU4Rec trained first and the interleaved layout chosen,
// so all seven variants) and wait for its chart. Saves test-results/case-study-almostrec.png and test-results/ablation.png,
// and the README's screenshots of the Train, Runs, Backbones, Table 2 and Ablation views (docs/screenshots/).
//
// The fixture's 5-core split keeps 6 users × 6 items and every user has seen all six: each test ranking has
// one candidate, the held-out item (Zeta (1995), no poster). That makes the case study deterministic
// whatever the weights (rank 1, a hit), and every variant's test HR@10 = NDCG@10 = 1.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { resultsDir, saveReadmeShot, useBrowserSession } from './browser-session';
import { importTinyDataset, TINY_BACKBONE, type DecodedImage } from './fixtures';

const TINY_SEQ = { 'train-epochs': '2', 'train-maxlen': '10', 'train-batchsize': '8' };
const TINY_ALMOSTREC = {
  'train-epochs': '1',
  'train-batchsize': '4',
  'train-warmupsteps': '0',
  'train-historylength': '4',
  'train-maxtitletokens': '4',
  'train-samplesperuser': '1'
};

const session = useBrowserSession({ homePrefix: 'almostrec-e2e-almostrec-', serverArgs: ['--no-import'] });
let page: Page;
/** Written by the Adapters test, imported back by the last test (after the ablation study, whose run numbers it would shift). */
let exportedBundle = '';
const pageErrors: string[] = [];

beforeAll(async () => {
  const context = await session.browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
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

describe('ALMOSTREC from the UI', () => {
  it('imports the small dataset, and the ALMOSTREC form says what is missing', async () => {
    await importTinyDataset(page);

    await page.getByTestId('nav-train').click();
    await page.getByTestId('train-model').selectOption('almostrec');
    await expect.poll(() => text('train-backboneid-hint')).toBe('No finished backbone yet: pretrain or register a backbone in Backbones.');
    expect(await text('train-seqrunid-hint')).toBe('No finished SASRec or GRU4Rec run on this dataset: train SASRec first.');
    expect(await page.getByTestId('train-start').isDisabled()).toBe(true);
    expect(await page.getByTestId('ablation-start').isDisabled()).toBe(true);
    // Switches are checkboxes, layout and k selects.
    expect(await page.getByTestId('train-useimages').isChecked()).toBe(true);
    expect(await page.getByTestId('train-layout').locator('option').allTextContents()).toEqual(['concat V, T, S (0)', 'interleaved, every position (1)']);
  });

  it('trains SASRec from the Train view and pretrains a tiny backbone from the Backbones view', async () => {
    await page.getByTestId('train-model').selectOption('sasrec');
    await fill(TINY_SEQ);
    await trainFromForm(1);

    await page.getByTestId('nav-backbones').click();
    await expect.poll(() => page.getByTestId('pretrain-name').inputValue()).toBe('compact-tiny');
    await fill(TINY_BACKBONE);
    await page.getByTestId('pretrain-start').click();
    const details = page.getByTestId('backbone-details');
    await details.getByRole('heading', { name: /compact-tiny/ }).waitFor({ timeout: 30_000 });
    // The form is below the fold: the new backbone's progress is scrolled into view.
    await expect.poll(() => details.evaluate((el) => (el as unknown as { getBoundingClientRect(): { top: number } }).getBoundingClientRect().top), { timeout: 10_000 }).toBeLessThan(200);
    await expect.poll(() => text('backbone-status'), { timeout: 300_000, interval: 500 }).toMatch(/succeeded|failed|cancelled/);
    expect(await text('backbone-status')).toBe('succeeded');
    // Its configuration as a labelled table with the pretraining form's labels.
    expect(await details.getByTestId('config-table').textContent()).toContain('Stage 1 steps');
    await saveReadmeShot(page, 'backbones');
  });

  it('trains ALMOSTREC with the newest finished backbone and SASRec run, which the pickers start on', async () => {
    await page.getByTestId('nav-train').click();
    await page.getByTestId('train-model').selectOption('almostrec');
    const backbone = page.getByTestId('train-backboneid');
    const seqRun = page.getByTestId('train-seqrunid');
    await expect.poll(() => backbone.locator('option').allTextContents()).toEqual(['— choose —', expect.stringMatching(/^compact-tiny · .+LLaMA/)]);
    // The runs list loads on its own: poll it too (a loaded machine answers the two lists at different times).
    await expect.poll(() => seqRun.locator('option').allTextContents()).toEqual(['— choose —', expect.stringMatching(/^#1 SASRec · valid NDCG@10 \d\.\d{4}$/)]);
    // Nothing to choose by hand: each picker is on its only finished entry and says so.
    await expect.poll(() => backbone.inputValue()).not.toBe('0');
    expect(await backbone.locator('option:checked').textContent()).toMatch(/^compact-tiny · /);
    expect(await text('train-backboneid-newest')).toMatch(/^newest finished: compact-tiny · /);
    await expect.poll(() => seqRun.locator('option:checked').textContent()).toMatch(/^#1 SASRec/);
    expect(await text('train-seqrunid-newest')).toMatch(/^newest finished: #1 SASRec · valid NDCG@10 /);
    // LoRA targets: checkboxes over the bitmask, q and v by default; adding k is bit 2 of the stored config.
    expect(await page.getByTestId('train-loratargets-q').isChecked()).toBe(true);
    expect(await page.getByTestId('train-loratargets-k').isChecked()).toBe(false);
    expect(await page.getByTestId('train-loratargets-v').isChecked()).toBe(true);
    await page.getByTestId('train-loratargets-k').check();
    await fill(TINY_ALMOSTREC);
    expect(await page.getByTestId('train-start').isDisabled()).toBe(false);
    await trainFromForm(2);
    // The top of the view: the finished run beside the form and its pickers.
    await page.getByRole('heading', { name: 'Train', exact: true }).scrollIntoViewIfNeeded();
    await saveReadmeShot(page, 'train');

    // The run's configuration, as a table: the targets ticked above (q 1 + k 2 + v 4).
    await page.getByTestId('nav-runs').click();
    await page.getByTestId('run-row-2').click();
    const config = page.getByTestId('run-details').getByTestId('config-table');
    await expect.poll(() => config.locator('tr').filter({ hasText: 'LoRA targets' }).textContent(), { timeout: 10_000 }).toContain('q, k, v (7)');
    await saveReadmeShot(page, 'runs');
  });

  it('shows ALMOSTREC and its Improv. row in Table 2', async () => {
    await page.getByTestId('nav-table2').click();
    const rows = page.getByTestId('table2-row');
    await expect.poll(() => rows.count(), { timeout: 30_000 }).toBe(2);
    expect(await rows.allTextContents()).toEqual([expect.stringContaining('SASRec'), expect.stringContaining('ALMOSTREC')]);
    await page.getByTestId('table2-improv').waitFor();
    await saveReadmeShot(page, 'table2');
  });

  it('shows both runs as case-study columns, ALMOSTREC with the held-out item as a hit', async () => {
    await page.getByTestId('nav-case-study').click();
    await page.getByTestId('case-user-search').fill('1');
    await page.getByTestId('case-user-option').first().click();
    await page.getByTestId('case-heldout').waitFor({ timeout: 30_000 });
    const columns = page.getByTestId('case-column');
    await expect.poll(() => columns.count(), { timeout: 30_000 }).toBe(2);
    expect(await columns.locator('.label').allTextContents()).toEqual([expect.stringMatching(/^SASRec/), expect.stringMatching(/^ALMOSTREC/)]);

    const ours = columns.filter({ hasText: 'ALMOSTREC' });
    const recs = ours.locator('li');
    expect(await recs.count()).toBe(1); // the only item the user has not seen
    expect(await recs.locator('.title').textContent()).toBe('Zeta (1995)');
    expect(await recs.locator('.score').textContent()).toMatch(/^-?\d+\.\d{4}$/);
    expect(await ours.getByTestId('case-hit').count()).toBe(1);
    expect(await ours.locator('.target').textContent()).toContain('rank 1');
    expect(await recs.locator('.no-image').count()).toBe(1); // Zeta has no poster
    // The history shows the posters the dataset has (Alpha, Beta), decoded.
    const posters = page.getByTestId('case-history').locator('img.poster');
    await expect.poll(() => posters.evaluateAll((imgs) => (imgs as unknown as DecodedImage[]).filter((i) => i.complete && i.naturalWidth > 0).length)).toBe(2);
    await page.screenshot({ path: join(resultsDir, 'case-study-almostrec.png'), fullPage: true });
  });

  it('lists the trained adapter in the Adapters view, renames it and exports a bundle to a typed folder', async () => {
    await page.getByTestId('nav-adapters').click();
    const row = page.getByTestId('adapter-row-2');
    await row.waitFor({ timeout: 30_000 });
    expect(await page.locator('tr.group').allTextContents()).toEqual([expect.stringMatching(/^compact-tiny · /)]);
    expect((await row.locator('td').allTextContents()).slice(0, 4).map((t) => t.trim())).toEqual(['almostrec run 2', 'almostrec', '2', 'M from run 1']);
    await row.getByRole('button', { name: 'Rename' }).click();
    await page.getByTestId('rename-input').fill('tiny adapter');
    await page.getByTestId('rename-input').press('Enter');
    await expect.poll(() => row.locator('.link').textContent()).toBe('tiny adapter');

    await row.getByRole('button', { name: 'Export…' }).click();
    const out = join(mkdtempSync(join(tmpdir(), 'almostrec-e2e-export-')), 'bundle');
    await page.getByTestId('export-format').selectOption('bundle');
    await page.getByTestId('export-out').fill(out);
    await page.getByTestId('export-start').click();
    await expect.poll(() => text('export-result'), { timeout: 30_000 }).toMatch(new RegExp(`^Exported to ${out}: peft/adapter_config.json, peft/adapter_model.safetensors, almostrec.safetensors, almostrec.json, bundle.json`));
    expect(JSON.parse(readFileSync(join(out, 'bundle.json'), 'utf8'))).toMatchObject({ name: 'tiny adapter', model: 'almostrec', backbone: { name: 'compact-tiny' } });
    // A second export to the same folder is refused, naming it.
    await page.getByTestId('export-start').click();
    await expect.poll(() => page.getByTestId('adapter-details').getByRole('alert').textContent()).toContain(`${out}: already exists`);
    exportedBundle = out;
  });

  it('runs an ablation study from the Train view and charts every variant', async () => {
    await page.getByTestId('nav-train').click();
    await page.getByTestId('train-model').selectOption('gru4rec');
    await fill(TINY_SEQ);
    await trainFromForm(3);

    await page.getByTestId('train-model').selectOption('almostrec');
    // Interleaved, so the concat layout of eq. 1 is a variant too (whatever the default layout).
    await page.getByTestId('train-layout').selectOption('1');
    await expect.poll(() => text('ablation-launcher')).toContain('concat layout (eq. 1)');
    // The pickers kept the choices; the launcher offers the GRU4Rec run.
    await expect.poll(() => page.getByTestId('ablation-gru4rec').locator('option').allTextContents()).toEqual([
      'best by validation NDCG@10',
      expect.stringMatching(/^#3 GRU4Rec/)
    ]);
    await page.getByTestId('ablation-start').click();

    const study = page.getByTestId('ablation-study');
    await study.waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('ablation-status').textContent()).toMatch(/running|queued/);
    await expect.poll(() => text('ablation-status'), { timeout: 300_000, interval: 1000 }).toMatch(/succeeded|failed|cancelled/);
    const failures = await study.locator('p.err').allTextContents();
    expect(await text('ablation-status'), failures.join('\n')).toBe('succeeded');

    const rows = page.getByTestId('ablation-row');
    expect(await rows.evaluateAll((trs) => trs.map((tr) => (tr as unknown as { dataset: { variant: string } }).dataset.variant))).toEqual([
      'full',
      'no-images',
      'no-text',
      'no-pretrained-ids',
      'gru4rec',
      'no-lora',
      'concat'
    ]);
    for (const k of [10, 20]) {
      const chart = page.getByTestId(`ablation-chart-k${k}`);
      await expect.poll(() => chart.getByTestId('bar').count(), { timeout: 10_000 }).toBe(14);
      expect(await chart.locator('g.highlight').count()).toBe(1); // the full model
    }
    await page.screenshot({ path: join(resultsDir, 'ablation.png'), fullPage: true });
    await saveReadmeShot(page, 'ablation');

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('ablation-csv').click()]);
    expect(download.suggestedFilename()).toMatch(/^ablation-tiny-study-4\.csv$/);
    const csv = readFileSync((await download.path())!, 'utf8').split('\r\n');
    expect(csv[0]).toBe('Study,Variant,Label,Run,Status,HR@10,NDCG@10,HR@20,NDCG@20,MRR,Valid NDCG@10,NDCG@10 vs full (%)');
    // One candidate per test ranking: every variant hits it (see the header comment).
    const escape = (v: string) => v.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    expect(csv.slice(1, 8)).toEqual(
      [
        'full,ALMOSTREC',
        'no-images,w/o images',
        'no-text,w/o text',
        'no-pretrained-ids,w/o pretrained IDs',
        'gru4rec,GRU4Rec IDs',
        'no-lora,w/o LoRA',
        'concat,concat layout (eq. 1)'
      ].map((v, i) => expect.stringMatching(new RegExp(`^4,${escape(v)},${4 + i},succeeded,1\\.0000,1\\.0000,1\\.0000,1\\.0000,1\\.0000,`)))
    );
    // Ablated variants stay out of Table 2's ALMOSTREC row.
    await page.getByTestId('nav-table2').click();
    await expect.poll(() => page.getByTestId('table2-row').count(), { timeout: 10_000 }).toBe(3);
    expect(pageErrors).toEqual([]);
  });

  it('imports the exported bundle from the Adapters view as a new, evaluated run', async () => {
    await page.getByTestId('nav-adapters').click();
    // A folder that is not a bundle is refused, naming its manifest.
    await page.getByTestId('import-path').fill(tmpdir());
    await page.getByTestId('import-start').click();
    await expect.poll(() => page.locator('section.card').filter({ has: page.getByTestId('adapter-import') }).getByRole('alert').textContent()).toContain(`${join(tmpdir(), 'bundle.json')}: missing`);
    await page.getByTestId('import-path').fill(exportedBundle);
    await page.getByTestId('import-start').click();
    await expect.poll(() => text('import-result'), { timeout: 30_000 }).toMatch(/^Imported as run \d+;/);
    const runId = Number(/run (\d+)/.exec(await text('import-result'))![1]);
    const row = page.getByTestId(`adapter-row-${runId}`);
    await row.waitFor({ timeout: 30_000 });
    expect(await row.textContent()).toContain('imported');
    // Its evaluation job fills the metrics: the same as the exported run's (one candidate per ranking here).
    await expect.poll(() => row.locator('td.num').first().textContent(), { timeout: 120_000, interval: 1000 }).toBe('1.0000');
    await page.screenshot({ path: join(resultsDir, 'adapters.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  });
});
