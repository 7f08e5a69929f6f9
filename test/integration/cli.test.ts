// The `almostrec` CLI as a user runs it: the built bin, a throwaway catalog, JSON lines on stdout,
// one-line errors with a non-zero exit.
import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCliCatalog, json, root, type CliCatalog } from './cli-catalog';

const fixture = join(root, 'test', 'fixtures', 'importers', 'ml-latest');
let catalog: CliCatalog;
const cli = (...args: string[]) => catalog.cli(...args);

beforeAll(() => {
  catalog = createCliCatalog('almostrec-cli-', 120_000);
});
afterAll(() => catalog?.remove());

describe('almostrec CLI', () => {
  it('imports, lists, trains, evaluates and recommends with --json', () => {
    const imp = cli('import', 'movielens-latest', fixture, '--name', 'tiny', '--json');
    expect(imp.code, imp.stderr).toBe(0);
    const ds = json(imp.lines[0]).dataset as { id: number; name: string };
    expect(ds.name).toBe('tiny');

    const list = cli('datasets', '--json');
    expect(list.lines.map((l) => json(l).name)).toEqual(['tiny']);

    const pop = cli('train', 'popularity', '--dataset', 'tiny', '--json');
    expect(pop.code, pop.stderr).toBe(0);
    const popRun = json(pop.lines[0]);
    expect(popRun.status).toBe('succeeded');
    expect((popRun.test as { hr10: number }).hr10).toBeGreaterThanOrEqual(0);

    const sas = cli('train', 'sasrec', '--dataset', String(ds.id), '--epochs', '2', '--max-len', '10', '--seed', '7', '--json');
    expect(sas.code, sas.stderr).toBe(0);
    const sasRun = json(sas.lines[0]) as { id: number; status: string; history: unknown[]; config: { seed: number } };
    expect(sasRun.status).toBe('succeeded');
    expect(sasRun.history).toHaveLength(2);
    expect(sasRun.config.seed).toBe(7);
    expect(sas.stderr).toMatch(/\[train\]/);

    const ev = cli('eval', String(sasRun.id), '--json');
    expect(ev.code, ev.stderr).toBe(0);
    expect(json(ev.lines[0]).test).toEqual((json(cli('runs', '--json').lines[0]) as { test: unknown }).test);

    const runs = cli('runs', '--dataset', 'tiny', '--json');
    expect(runs.lines).toHaveLength(2);

    // The tiny fixture's users have seen almost every item: nothing left to recommend is said, not hidden.
    const none = cli('recommend', String(popRun.id), '--user', '1', '--k', '3');
    expect(none.code).toBe(0);
    expect(none.stderr).toMatch(/no unseen items/i);
  });

  it('recommends unseen items from a generic CSV import', () => {
    // 12 users × 8 of 12 items: every item has 8 interactions (survives the 5-core), each user has 4 unseen.
    const rows = ['user;item;ts'];
    for (let u = 0; u < 12; u++) for (let j = 0; j < 8; j++) rows.push(`u${u};i${(u + j) % 12};${1000 + j}`);
    const csv = join(catalog.dir, 'events.csv');
    writeFileSync(csv, rows.join('\n') + '\n');
    const imp = cli('import', 'generic', csv, '--name', 'events', '--delimiter', ';', '--columns', 'user=user,item=item,timestamp=ts', '--json');
    expect(imp.code, imp.stderr).toBe(0);
    const pop = json(cli('train', 'popularity', '--dataset', 'events', '--json').lines[0]);
    const rec = cli('recommend', String(pop.id), '--user', 'u0', '--k', '3', '--json');
    expect(rec.code, rec.stderr).toBe(0);
    const recs = rec.lines.map(json);
    expect(recs.map((r) => r.rank)).toEqual([0, 1, 2]);
    expect(recs[0].score as number).toBeGreaterThanOrEqual(recs[2].score as number);
    const seen = rows.filter((r) => r.startsWith('u0;')).map((r) => r.split(';')[1]);
    for (const r of recs) expect(seen).not.toContain(r.externalId);
  });

  it('fails with a one-line message naming the file and line on malformed input', () => {
    const bad = join(catalog.dir, 'bad');
    cpSync(fixture, bad, { recursive: true });
    writeFileSync(join(bad, 'ratings.csv'), 'userId,movieId,rating,timestamp\n1,1,5,100\n1,2,oops,101\n');
    const r = cli('import', 'movielens-latest', bad, '--name', 'bad');
    expect(r.code).toBe(1);
    // Progress lines may precede it; the error itself is the last line, alone.
    const last = r.stderr.trim().split('\n').at(-1)!;
    expect(last).toMatch(/^almostrec: .*ratings\.csv.*line 3/);
    expect(cli('datasets', '--json').lines.map((l) => json(l).name)).not.toContain('bad');
  });

  it('rejects unknown commands, models and options with exit code 1', () => {
    for (const args of [['frobnicate'], ['train', 'bert4rec', '--dataset', 'tiny'], ['train', 'sasrec', '--dataset', 'nope'], ['datasets', '--bogus'], ['eval', 'x']]) {
      const r = cli(...args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toMatch(/^almostrec: /);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});
