// The case study's reading of an LLM run (core/jobs/llm-case.ts) on a throwaway catalog: a generic dataset
// of 10 titled items (two with a poster) where each of 10 users walks 6 items in order, a SASRec run for M,
// the tiny llava-hf checkpoint registered as the backbone, and one tiny run of each LLM kind. For a user's
// held-out test item: the prompt with its [ID:title] and <image×k:title> marks, LLaRA's answer among its
// candidates, and the held-out item's rank — the run's stored one, or computed when the catalog has none.
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelKind } from '../../src/shared/types';
import { Catalog } from '../../src/core/catalog';
import { splitInput } from '../../src/core/data/types';
import { importDataset } from '../../src/core/importers';
import { registerHfBackbone } from '../../src/core/jobs/backbone-jobs';
import { computeLlmCase, runLlmCaseJob } from '../../src/core/jobs/llm-case';
import { runTrainingJob } from '../../src/core/jobs/run-jobs';
import { CancelledError } from '../../src/core/progress';
import { initBackend } from '../../src/core/tensor/backend';
import { root, tinyLlavaFolder } from './cli-catalog';

// Words of the tiny checkpoint's vocabulary (cli-catalog.ts), so titles are real tokens, not <unk>.
const TITLES = ['Toy Story (1995)', 'Heat (1995)', 'Casino (1995)', 'Babe (1995)', 'Toy Heat (1996)', 'Story Casino (1996)', 'Babe Heat (1997)', 'Casino Toy (1997)', 'Heat Story (1998)', 'Babe Casino (1998)'];
const POSTERS: Record<number, string> = { 1: '1.jpg', 2: '2.png' };
const USERS = 10;
const WALK = 6;
const item = (u: number, j: number): number => ((u + j) % TITLES.length) + 1;

const dir = mkdtempSync(join(tmpdir(), 'almostrec-llm-case-'));
let catalog: Catalog;
let datasetId: number;
let seqRunId: number;
let backboneId: number;
const ctx = { dataDir: join(dir, 'data'), onProgress: () => {}, onLog: () => {}, signal: { aborted: false } };

beforeAll(async () => {
  await initBackend();
  // Posters must lie inside the dataset's folder (the importers refuse paths that leave it): copied there.
  mkdirSync(join(dir, 'posters'));
  for (const file of Object.values(POSTERS)) copyFileSync(join(root, 'test', 'fixtures', 'importers', 'ml-latest', 'posters', file), join(dir, 'posters', file));
  writeFileSync(join(dir, 'items.csv'), ['item_id,title,poster', ...TITLES.map((t, i) => `m${i + 1},${t},${POSTERS[i + 1] ? join(dir, 'posters', POSTERS[i + 1]) : ''}`)].join('\n'));
  const events = ['user_id,item_id,timestamp'];
  for (let u = 0; u < USERS; u++) for (let j = 0; j < WALK; j++) events.push(`u${u + 1},m${item(u, j)},${1000 + 10 * j + u}`);
  writeFileSync(join(dir, 'events.csv'), events.join('\n'));
  catalog = Catalog.open(join(dir, 'catalog.sqlite'));
  ({ datasetId } = await importDataset(catalog, { format: 'generic', path: join(dir, 'events.csv'), name: 'walks', options: { itemsCsv: 'items.csv' } }));
  seqRunId = await train('sasrec', { epochs: 2, batchSize: 8, maxLen: 6, hiddenSize: 8, numBlocks: 1, seed: 3 });
  backboneId = registerHfBackbone(catalog, tinyLlavaFolder(dir), 'llava-tiny');
}, 120_000);

afterAll(() => {
  catalog?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function train(model: ModelKind, config: Record<string, number>): Promise<number> {
  const runId = catalog.createRun({ datasetId, model, config, backend: null });
  await runTrainingJob(catalog, runId, { ...ctx, resume: false });
  const run = catalog.getRun(runId)!;
  expect(run.status, run.error ?? '').toBe('succeeded');
  return runId;
}

const TINY_LLM = { epochs: 1, batchSize: 4, warmupSteps: 0, historyLength: 3, loraRank: 2, seed: 5 };

/** The catalog user of external id `u1`… and the items of its test split: history (everything before) and held-out. */
function userCase(external: string): { userId: number; history: string[]; heldOut: string } {
  const user = catalog.searchUsers(datasetId, external, 10).users.find((u) => u.externalId === external)!;
  const data = catalog.loadSequences(datasetId);
  const seq = data.users.find((s) => s.userId === user.id)!;
  const { history, target } = splitInput(seq, 'test');
  const title = (i: number) => catalog.getItems([data.itemIds[i]]).get(data.itemIds[i])!.title;
  return { userId: user.id, history: Array.from(history, title), heldOut: title(target) };
}

const idMarks = (prompt: string): string[] => [...prompt.matchAll(/\[ID:([^\]]*)\]/g)].map((m) => m[1]);

describe('the LLM case of a user', () => {
  it('LLaRA: the hybrid prompt over the last L items and the candidates, the answer read against them, the stored rank', async () => {
    const runId = await train('llara', { ...TINY_LLM, backboneId, seqRunId, candidates: 4, maxTitleTokens: 3, curriculumEpochs: 0 });
    const u = userCase('u3');
    const phases: string[] = [];
    const c = await runLlmCaseJob(catalog, runId, u.userId, { ...ctx, onProgress: (p) => phases.push(p.phase) });
    expect(phases).toEqual(expect.arrayContaining(['loading the model', 'generating the answer', 'done']));
    expect(c).toMatchObject({ runId, userId: u.userId, model: 'llara', rankSource: 'stored', heldOut: { title: u.heldOut, hasImage: false } });
    expect(c.targetRank).toBe(catalog.getUserRank(runId, 'test', u.userId));
    const answer = c.llara!;
    expect(answer.candidates).toHaveLength(4);
    expect(answer.candidates.map((x) => x.title)).toContain(u.heldOut);
    // Every candidate is outside the history, and the prompt names the last 3 history items, then the candidates.
    for (const x of answer.candidates) if (x.title !== u.heldOut) expect(u.history).not.toContain(x.title);
    expect(idMarks(c.prompt)).toEqual([...u.history.slice(-3), ...answer.candidates.map((x) => x.title)]);
    expect(c.prompt.startsWith('<s> ')).toBe(true);
    expect(typeof answer.generated).toBe('string');
    if (answer.matched === null) expect(answer.hit).toBe(false);
    else {
      expect(answer.candidates).toContainEqual(answer.matched);
      expect(answer.hit).toBe(answer.matched.title === u.heldOut);
    }
    expect(catalog.getLlmCase(runId, u.userId)).toEqual(c);

    // Without stored ranks the job scores the user itself, and finds the rank evaluation stored.
    catalog.db.prepare('DELETE FROM run_user_ranks WHERE run_id = ?').run(runId);
    const computed = await computeLlmCase(catalog, runId, u.userId, ctx);
    expect(computed).toMatchObject({ rankSource: 'computed', targetRank: c.targetRank, prompt: c.prompt, llara: c.llara });
  }, 180_000);

  it('ALMOSTREC and E4SRec: ID tokens (and, for ALMOSTREC, posters as image marks) of the last L history items; TALLRec: titles only', async () => {
    const almostrec = await train('almostrec', { ...TINY_LLM, backboneId, seqRunId, maxTitleTokens: 3, layout: 1 });
    const e4srec = await train('e4srec', { ...TINY_LLM, backboneId, seqRunId });
    const tallrec = await train('tallrec', { ...TINY_LLM, backboneId, maxTitleTokens: 3 });
    // u10 walks m10, m1, …, m5: its last 3 history items are Heat (m2, with a poster), Casino and Babe.
    const u = userCase('u10');
    const last3 = u.history.slice(-3);

    const a = await computeLlmCase(catalog, almostrec, u.userId, ctx);
    expect(idMarks(a.prompt)).toEqual(last3);
    const images = [...a.prompt.matchAll(/<image×(\d+):([^>]*)>/g)].map((m) => `${m[1]}:${m[2]}`);
    expect(images).toEqual(last3.filter((t) => t === 'Toy Story (1995)' || t === 'Heat (1995)').map((t) => `1:${t}`));
    expect(a).toMatchObject({ model: 'almostrec', llara: null, rankSource: 'stored', targetRank: catalog.getUserRank(almostrec, 'test', u.userId) });

    const e = await computeLlmCase(catalog, e4srec, u.userId, ctx);
    expect(idMarks(e.prompt)).toEqual(last3);
    expect(e.prompt).not.toContain('<image');

    const t = await computeLlmCase(catalog, tallrec, u.userId, ctx);
    expect(t.prompt.startsWith('<s> ')).toBe(true);
    expect(t.prompt).not.toMatch(/\[ID:|<image/);
    // The titles of the last 3 items, lower-cased by the word-level tokenizer, without the year.
    expect(t.prompt).toContain(last3.map((x) => x.replace(/ \(\d{4}\)$/, '').toLowerCase()).join(' ; '));
  }, 240_000);

  it('refuses a run that is not an LLM and stops when cancelled, storing nothing', async () => {
    const u = userCase('u1');
    await expect(computeLlmCase(catalog, seqRunId, u.userId, ctx)).rejects.toThrow(`Run ${seqRunId} is a sasrec run; only LLM runs read a prompt`);
    const llara = catalog.listRuns(datasetId).find((r) => r.model === 'llara')!.id;
    await expect(runLlmCaseJob(catalog, llara, u.userId, { ...ctx, signal: { aborted: true } })).rejects.toBeInstanceOf(CancelledError);
    expect(catalog.getLlmCase(llara, u.userId)).toBeNull();
  }, 60_000);
});
