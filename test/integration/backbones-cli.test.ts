// `almostrec pretrain` and `almostrec backbone …` as a user runs them: the built bin, a throwaway catalog,
// JSON lines on stdout, one-line errors with a non-zero exit.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCliCatalog, json, root, type CliCatalog } from './cli-catalog';

const HF_FIXTURE = join(root, 'test', 'fixtures', 'hf-llava-tiny', 'model');
const TINY = ['hiddenSize=32', 'numLayers=1', 'numHeads=2', 'numKvHeads=1', 'intermediateSize=64', 'maxTokens=32', 'batchSize=2', 'stage0Steps=2', 'stage1Steps=2', 'stage2Steps=2'];
let catalog: CliCatalog;
const cli = (...args: string[]) => catalog.cli(...args);
/** The error is the last stderr line, alone (progress lines may precede it). */
const lastError = (stderr: string) => stderr.trim().split('\n').at(-1)!;

beforeAll(() => {
  catalog = createCliCatalog('almostrec-cli-bb-', 300_000);
  const imp = cli('import', 'movielens-latest', join(root, 'test', 'fixtures', 'importers', 'ml-latest'), '--name', 'tiny');
  if (imp.code !== 0) throw new Error(imp.stderr);
});
afterAll(() => catalog?.remove());

describe('almostrec backbone commands', () => {
  it('documents them in --help', () => {
    const help = cli('--help');
    expect(help.code).toBe(0);
    for (const cmd of ['pretrain --dataset', 'backbone list', 'backbone register <path> --name', 'backbone features --backbone', 'backbone delete', 'backbone resume']) {
      expect(help.stdout).toContain(cmd);
    }
  });

  it('refuses bad input with one clear line and exit code 1', () => {
    const cases: [string[], RegExp][] = [
      [['pretrain', '--dataset', 'tiny', '--param', 'hiddenSize=30'], /^almostrec: hiddenSize: Too small: expected number to be >=32$/],
      [['pretrain', '--dataset', 'tiny', '--param', 'numHeads=3', '--param', 'numKvHeads=1'], /^almostrec: numHeads: hiddenSize 256 must be a multiple of numHeads 3$/],
      [['pretrain', '--dataset', 'tiny', '--param', 'depth=3'], /^almostrec: input: Unrecognized key: "depth"$/],
      [['pretrain', '--dataset', 'tiny', '--param', 'seed'], /^almostrec: --param expects key=number/],
      [['pretrain', '--dataset', 'nope'], /^almostrec: No dataset named or numbered "nope"/],
      [['backbone', 'register', join(catalog.dir, 'nowhere'), '--name', 'x'], new RegExp(`^almostrec: Folder ${join(catalog.dir, 'nowhere')} not found$`)],
      [['backbone', 'register', HF_FIXTURE], /^almostrec: Usage: almostrec backbone register <path> --name B$/],
      [['backbone', 'features', '--backbone', '9', '--dataset', 'tiny'], /^almostrec: No backbone named or numbered "9"/],
      [['backbone', 'delete', 'ghost'], /^almostrec: No backbone named or numbered "ghost"/],
      [['backbone', 'frobnicate'], /^almostrec: Usage: almostrec backbone <list \| register \| features \| resume \| delete>/]
    ];
    for (const [args, message] of cases) {
      const r = cli(...args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr.trim(), args.join(' ')).toMatch(message);
    }
    expect(cli('backbone', 'list', '--json').lines).toEqual([]); // nothing half-created
  });

  it('registers the tiny llava-hf fixture, lists it, checks k, and deletes it without touching the folder', () => {
    const reg = cli('backbone', 'register', HF_FIXTURE, '--name', 'llava-tiny', '--json');
    expect(reg.code, reg.stderr).toBe(0);
    expect(json(reg.lines[0])).toMatchObject({ name: 'llava-tiny', source: 'huggingface', status: 'succeeded', path: HF_FIXTURE });
    expect(lastError(cli('backbone', 'register', HF_FIXTURE, '--name', 'llava-tiny').stderr)).toBe('almostrec: A backbone named "llava-tiny" already exists');
    expect(cli('backbone', 'list', '--json').lines.map((l) => json(l).name)).toEqual(['llava-tiny']);
    expect(lastError(cli('backbone', 'features', '--backbone', 'llava-tiny', '--dataset', 'tiny', '--k', '3').stderr)).toBe(
      'almostrec: --k must be one of 1, 4, 9, all (got "3")'
    );
    const del = cli('backbone', 'delete', 'llava-tiny', '--json');
    expect(del.code, del.stderr).toBe(0);
    expect(json(del.lines[0])).toMatchObject({ deleted: true, removedFolder: null });
    expect(existsSync(join(HF_FIXTURE, 'config.json'))).toBe(true);
  });

  it('pretrains a tiny backbone under the default name, caches its visual tokens, and deletes its folder', () => {
    const pre = cli('pretrain', '--dataset', 'tiny', ...TINY.flatMap((p) => ['--param', p]), '--json');
    expect(pre.code, pre.stderr).toBe(0);
    const b = json(pre.lines[0]) as { id: number; name: string; status: string; path: string; config: Record<string, number> };
    expect(b).toMatchObject({ name: 'compact-tiny', status: 'succeeded', path: join(catalog.dir, 'backbones', String(b.id)) });
    expect(b.config).toMatchObject({ hiddenSize: 32, stage2Steps: 2, seed: 42 });
    expect(existsSync(b.path)).toBe(true);

    const feats = cli('backbone', 'features', '--backbone', String(b.id), '--dataset', 'tiny', '--k', '4', '--json');
    expect(feats.code, feats.stderr).toBe(0);
    expect(json(feats.lines[0])).toMatchObject({ backboneId: b.id, k: 4 });

    const del = cli('backbone', 'delete', 'compact-tiny', '--json');
    expect(json(del.lines[0])).toMatchObject({ deleted: true, removedFolder: b.path });
    expect(existsSync(b.path)).toBe(false);
  }, 330_000);
});
