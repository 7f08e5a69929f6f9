// `almostrec recommendations` and `almostrec figure case-study` as a user runs them: the built bin on a
// throwaway catalog (the tiny MovieLens fixture, popularity and a 1-epoch SASRec), files checked by content.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pngDimensions, pngDpi } from '../../src/shared/figures/png-dpi';
import { createCliCatalog, json, root, type CliCatalog } from './cli-catalog';

let catalog: CliCatalog;
const cli = (...args: string[]) => catalog.cli(...args);

beforeAll(() => {
  catalog = createCliCatalog('almostrec-figures-cli-', 120_000);
  expect(cli('import', 'movielens-latest', join(root, 'test', 'fixtures', 'importers', 'ml-latest'), '--name', 'tiny').code).toBe(0);
  expect(cli('train', 'popularity', '--dataset', 'tiny').code).toBe(0); // run 1
  expect(cli('train', 'sasrec', '--dataset', 'tiny', '--epochs', '1', '--max-len', '10').code).toBe(0); // run 2
}, 240_000);
afterAll(() => catalog?.remove());

describe('almostrec recommendations', () => {
  it('writes every test user\'s top-k as CSV, to stdout or atomically to a file', () => {
    const toStdout = cli('recommendations', '1');
    expect(toStdout.code, toStdout.stderr).toBe(0);
    const lines = toStdout.stdout.trimEnd().split('\r\n');
    expect(lines[0]).toBe('user,rank,item_id,title,score,hit');
    expect(lines).toHaveLength(1 + 6); // 6 users, one unseen item each: the held-out one, a hit
    for (const l of lines.slice(1)) expect(l).toMatch(/^\d+,1,\d+,.+,-?[\d.e-]+,1$/);

    const file = join(catalog.dir, 'recs.csv');
    const res = cli('recommendations', '1', '--out', file, '--json');
    expect(res.code, res.stderr).toBe(0);
    expect(json(res.lines[0])).toEqual({ rows: 6, users: 6, path: file });
    expect(readFileSync(file, 'utf8')).toBe(toStdout.stdout);
    expect(readdirSync(catalog.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('fails clearly: unknown run, wrong folder, bad k', () => {
    expect(cli('recommendations', '9')).toMatchObject({ code: 1, stderr: 'almostrec: Run 9 not found\n' });
    const missing = join(catalog.dir, 'no', 'such', 'r.csv');
    expect(cli('recommendations', '1', '--out', missing)).toMatchObject({ code: 1, stderr: `almostrec: Cannot write ${missing}: its folder does not exist\n` });
    expect(cli('recommendations', '1', '--out', catalog.dir).stderr).toBe(`almostrec: Cannot write ${catalog.dir}: it is a folder\n`);
    expect(cli('recommendations', '1', '--k', '0').stderr).toBe('almostrec: --k must be an integer between 1 and 100\n');
  });
});

describe('almostrec figure case-study', () => {
  it('writes the SVG and the 300-dpi PNG of the same figure', () => {
    const svgPath = join(catalog.dir, 'case.svg');
    const svg = cli('figure', 'case-study', '--runs', '2,1', '--user', '1', '--out', svgPath, '--json');
    expect(svg.code, svg.stderr).toBe(0);
    const info = json(svg.lines[0]) as { widthPt: number; heightPt: number };
    expect(info.widthPt).toBe(504);
    const text = readFileSync(svgPath, 'utf8');
    expect(() => new Resvg(text)).not.toThrow();
    expect([...text.matchAll(/<g class="model-row" data-run="(\d+)" data-model="(\w+)">/g)].map((m) => m[2])).toEqual(['sasrec', 'popularity']);
    expect(text.match(/data-hit="true"/g)).toHaveLength(2);

    const pngPath = join(catalog.dir, 'case.png');
    const png = cli('figure', 'case-study', '--runs', '2,1', '--user', '1', '--out', pngPath);
    expect(png.code, png.stderr).toBe(0);
    const bytes = new Uint8Array(readFileSync(pngPath));
    expect(pngDimensions(bytes)).toEqual({ width: 2100, height: (info.heightPt / 72) * 300 });
    expect(pngDpi(bytes)).toBe(300);
    expect(png.lines[0]).toBe(`Case study → ${pngPath} (2100 × ${(info.heightPt / 72) * 300} px at 300 dpi)`);
    // A screen-size copy: 7 in at 96 dpi.
    expect(cli('figure', 'case-study', '--runs', '2', '--user', '1', '--out', pngPath, '--dpi', '96').code).toBe(0);
    const small = new Uint8Array(readFileSync(pngPath));
    expect(pngDimensions(small).width).toBe(672);
    expect(pngDpi(small)).toBe(96);
  });

  it('refuses what it cannot draw, writing nothing', () => {
    const out = join(catalog.dir, 'x.svg');
    expect(cli('figure', 'case-study', '--runs', '2', '--user', '1', '--out', join(catalog.dir, 'x.pdf')).stderr).toMatch(/--out must end in \.svg or \.png/);
    expect(cli('figure', 'case-study', '--runs', '2', '--user', '404', '--out', out).stderr).toBe('almostrec: User "404" not found in dataset tiny\n');
    expect(cli('figure', 'case-study', '--runs', 'x', '--user', '1', '--out', out).stderr).toMatch(/--runs expects run ids/);
    expect(cli('figure', 'ablation').stderr).toMatch(/Usage: almostrec figure case-study/);
    expect(cli('figure', 'case-study', '--runs', '2', '--user', '1', '--out', out, '--dpi', '5000').stderr).toBe('almostrec: --dpi must be an integer between 72 and 1200\n');
    expect(existsSync(out)).toBe(false);
  });
});
