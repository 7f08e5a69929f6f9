// `almostrec ablation` on a tiny catalog: the study the app's ablation.start creates, trained by the app's
// ablation job in the CLI process (one line per variant, Figure 3's order), Ctrl-C leaving every unfinished
// variant cancelled, and `--resume` finishing them. Tiny everything: the importer fixture, 1 epoch, the
// llava-hf test checkpoint as the backbone (registered, not pretrained), L = 4.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { bin, createCliCatalog, json, root, tinyLlavaFolder, type CliCatalog } from './cli-catalog';

const TINY = ['historyLength=4', 'batchSize=4', 'warmupSteps=0', 'maxTitleTokens=4'].flatMap((p) => ['--param', p]);

let catalog: CliCatalog;
let sasrec: number;
let gru4rec: number;
const cli = (...args: string[]) => catalog.cli(...args);
const lastError = (stderr: string) => stderr.trim().split('\n').at(-1);

beforeAll(() => {
  catalog = createCliCatalog('almostrec-cli-ablation-', 300_000);
  const imp = cli('import', 'movielens-latest', join(root, 'test', 'fixtures', 'importers', 'ml-latest'), '--name', 'tiny');
  if (imp.code !== 0) throw new Error(imp.stderr);
  const seq = (model: string) => {
    const r = cli('train', model, '--dataset', 'tiny', '--epochs', '1', '--max-len', '10', '--json');
    if (r.code !== 0) throw new Error(r.stderr);
    return Number(json(r.lines.at(-1)!).id);
  };
  sasrec = seq('sasrec');
  gru4rec = seq('gru4rec');
  const reg = cli('backbone', 'register', tinyLlavaFolder(catalog.dir), '--name', 'llava-tiny');
  if (reg.code !== 0) throw new Error(reg.stderr);
}, 300_000);
afterAll(() => catalog?.remove());

it('trains every variant one after another and prints one line per variant', () => {
  const r = cli('ablation', '--dataset', 'tiny', '--backbone', 'llava-tiny', '--seq-run', String(sasrec), '--gru4rec-run', String(gru4rec), '--epochs', '1', ...TINY, '--param', 'layout=1', '--json');
  expect(r.code, r.stderr).toBe(0);
  const lines = r.lines.map(json);
  expect(lines.map((l) => l.variant)).toEqual(['full', 'no-images', 'no-text', 'no-pretrained-ids', 'gru4rec', 'no-lora', 'concat']);
  const studyId = lines[0].runId;
  for (const l of lines) {
    expect(l).toMatchObject({ studyId, status: 'succeeded', error: null });
    expect(l.valid).toMatchObject({ ndcg10: expect.any(Number) });
    expect(l.test).toMatchObject({ hr10: expect.any(Number), ndcg10: expect.any(Number), hr20: expect.any(Number), ndcg20: expect.any(Number), mrr: expect.any(Number) });
  }
  expect(r.stderr).toContain(`Ablation study ${studyId} on tiny: 7 variants (full, no-images, no-text, no-pretrained-ids, gru4rec, no-lora, concat), one after another`);
  expect(r.stderr).toMatch(/\[7\/7 concat layout \(eq\. 1\) \(run \d+\) · /); // progress on stderr, as train prints it

  // The runs are the app's: tagged with the study and variant, each changing one thing.
  const runs = new Map(cli('runs', '--dataset', 'tiny', '--json').lines.map(json).map((run) => [run.id, run.config as Record<string, unknown>]));
  const config = (variant: string) => runs.get(lines.find((l) => l.variant === variant)!.runId)!;
  expect(config('full')).toMatchObject({ ablationStudy: studyId, ablationVariant: 'full', seqRunId: sasrec, layout: 1, epochs: 1, historyLength: 4 });
  expect(config('gru4rec')).toMatchObject({ ablationStudy: studyId, seqRunId: gru4rec, layout: 1 });
  expect(config('concat')).toMatchObject({ ablationStudy: studyId, seqRunId: sasrec, layout: 0 });
}, 300_000);

it('refuses an unusable reference before any run exists', () => {
  const before = cli('runs', '--json').lines.length;
  const missing = cli('ablation', '--dataset', 'tiny', '--backbone', 'llava-tiny', '--seq-run', '99999');
  expect(missing.code).toBe(1);
  expect(lastError(missing.stderr)).toBe('almostrec: ALMOSTREC: run 99999 not found');
  const notGru = cli('ablation', '--dataset', 'tiny', '--backbone', 'llava-tiny', '--seq-run', String(sasrec), '--gru4rec-run', String(sasrec));
  expect(lastError(notGru.stderr)).toBe(`almostrec: Ablation: run ${sasrec} is a sasrec run, not GRU4Rec`);
  expect(cli('runs', '--json').lines.length).toBe(before);
  expect(lastError(cli('ablation', '--resume', '99999').stderr)).toBe('almostrec: No ablation study 99999 (a study\'s id is its full-model run\'s id)');
});

it('cancels on Ctrl-C, leaving the unfinished variants cancelled, and --resume finishes them', async () => {
  // useImages 0, useText 0 and the concat layout: three variants left out, four to train.
  const args = ['ablation', '--dataset', 'tiny', '--backbone', 'llava-tiny', '--seq-run', String(sasrec), '--epochs', '1', ...TINY];
  const child = spawn(process.execPath, [bin, ...args, '--param', 'useImages=0', '--param', 'useText=0', '--param', 'layout=0', '--db', join(catalog.dir, 'catalog.sqlite'), '--json'], {
    stdio: ['ignore', 'pipe', 'pipe']
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (stderr.includes('training 1/4') && !child.killed) child.kill('SIGINT');
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  expect(stderr).toContain('Left out w/o images: the full model already has useImages = 0');
  expect(stderr).toContain('Left out concat layout (eq. 1): the full model already has layout = 0');
  expect(stderr).toContain('Cancelling…');
  expect(code).toBe(1);
  const cancelled = stdout.split('\n').filter(Boolean).map(json);
  expect(cancelled.map((l) => l.variant)).toEqual(['full', 'no-pretrained-ids', 'gru4rec', 'no-lora']);
  const studyId = Number(cancelled[0].studyId);
  expect(lastError(stderr)).toBe(`almostrec: Ablation study ${studyId}: Cancelled (continue with "almostrec ablation --resume ${studyId}")`);
  // Nothing is left looking pending; the last variant never started.
  expect(cancelled.every((l) => l.status === 'succeeded' || l.status === 'cancelled')).toBe(true);
  expect(cancelled.at(-1)!.status).toBe('cancelled');

  expect(lastError(cli('ablation', '--resume', String(studyId), '--epochs', '2').stderr)).toBe(
    'almostrec: --resume continues a study with the settings it was created with; --epochs does not apply'
  );
  const resumed = cli('ablation', '--resume', String(studyId));
  expect(resumed.code, resumed.stderr).toBe(0);
  expect(resumed.stderr).toMatch(new RegExp(`^Ablation study ${studyId} on tiny: resuming [1-4] of 4 variants$`, 'm'));
  // The human table: variant, label, run, status, validation NDCG@10, test metrics.
  expect(resumed.lines).toHaveLength(4);
  resumed.lines.forEach((line, i) =>
    expect(line).toMatch(new RegExp(`^${cancelled[i].variant}\\t[^\\t]+\\trun ${cancelled[i].runId}\\tsucceeded\\tvalid NDCG@10 \\d\\.\\d{4}\\ttest HR@10 \\d\\.\\d{4} NDCG@10 `))
  );
  expect(lastError(cli('ablation', '--resume', String(studyId)).stderr)).toBe(`almostrec: Every variant of ablation study ${studyId} has finished`);
}, 300_000);
