// `almostrec train almostrec --dataset D --seq-run R --backbone B` as the issue words it: B a backbone's
// name, or a llava-hf folder that is registered on first use; the run records both references.
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createCliCatalog, json, root, tinyLlavaFolder, type CliCatalog } from './cli-catalog';

const TINY = ['hiddenSize=32', 'numLayers=1', 'numHeads=2', 'numKvHeads=1', 'intermediateSize=64', 'maxTokens=32', 'batchSize=2', 'stage0Steps=2', 'stage1Steps=2', 'stage2Steps=2'];
let catalog: CliCatalog;
const cli = (...args: string[]) => catalog.cli(...args);

beforeAll(() => {
  catalog = createCliCatalog('almostrec-cli-ar-', 300_000);
  const imp = cli('import', 'movielens-latest', join(root, 'test', 'fixtures', 'importers', 'ml-latest'), '--name', 'tiny');
  if (imp.code !== 0) throw new Error(imp.stderr);
});
afterAll(() => catalog?.remove());

it('trains ALMOSTREC and E4SRec from --seq-run and --backbone (a name, then a llava-hf folder)', () => {
  const sasrec = cli('train', 'sasrec', '--dataset', 'tiny', '--epochs', '2', '--json');
  expect(sasrec.code, sasrec.stderr).toBe(0);
  const seqRun = Number(json(sasrec.lines.at(-1)!).id);
  const pre = cli('pretrain', '--dataset', 'tiny', '--name', 'bb', ...TINY.flatMap((p) => ['--param', p]), '--json');
  expect(pre.code, pre.stderr).toBe(0);

  const byName = cli('train', 'almostrec', '--dataset', 'tiny', '--seq-run', String(seqRun), '--backbone', 'bb', '--epochs', '1', '--param', 'historyLength=5', '--json');
  expect(byName.code, byName.stderr).toBe(0);
  const run = json(byName.lines.at(-1)!);
  expect(run.status).toBe('succeeded');
  expect(run.config).toMatchObject({ seqRunId: seqRun, backboneId: Number(json(pre.lines.at(-1)!).id) });

  const folder = tinyLlavaFolder(catalog.dir);
  const byFolder = cli('train', 'almostrec', '--dataset', 'tiny', '--seq-run', String(seqRun), '--backbone', folder, '--epochs', '1', '--param', 'historyLength=5', '--json');
  expect(byFolder.stderr).toContain(`Registered ${folder} as backbone "llava-tiny"`);
  expect(byFolder.code, byFolder.stderr).toBe(0);
  expect(json(byFolder.lines.at(-1)!).status).toBe('succeeded');

  const wrong = cli('train', 'sasrec', '--dataset', 'tiny', '--seq-run', String(seqRun));
  expect(wrong.code).toBe(1);
  expect(wrong.stderr.trim().split('\n').at(-1)).toBe('almostrec: --seq-run and --backbone apply to the models on a backbone only (tallrec, llara, e4srec, vip5, almostrec)');

  // E4SRec reads the same references (`almostrec train e4srec`), and its errors name it.
  const e4 = cli('train', 'e4srec', '--dataset', 'tiny', '--seq-run', String(seqRun), '--backbone', 'bb', '--epochs', '1', '--param', 'historyLength=5', '--json');
  expect(e4.code, e4.stderr).toBe(0);
  expect(json(e4.lines.at(-1)!)).toMatchObject({ model: 'e4srec', status: 'succeeded', config: { seqRunId: seqRun } });
  const e4missing = cli('train', 'e4srec', '--dataset', 'tiny', '--seq-run', '99999', '--backbone', 'bb');
  expect(e4missing.stderr.trim().split('\n').at(-1)).toBe('almostrec: E4SRec: run 99999 not found');

  // An unusable reference is refused before a run row exists (as the app's train.start does).
  const runsBefore = cli('runs', '--dataset', 'tiny', '--json').lines.length;
  const missing = cli('train', 'almostrec', '--dataset', 'tiny', '--seq-run', '99999', '--backbone', 'bb');
  expect(missing.code).toBe(1);
  expect(missing.stderr.trim().split('\n').at(-1)).toBe('almostrec: ALMOSTREC: run 99999 not found');
  expect(cli('runs', '--dataset', 'tiny', '--json').lines.length).toBe(runsBefore);
});
