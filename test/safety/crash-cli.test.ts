// kill -9 of `almostrec` (the CLI trains, imports and pretrains in its own process) at known instants: in the
// middle of an epoch, half-way through writing a checkpoint, inside an import's transaction, during
// pretraining. After each: the job shows as interrupted (not "running" for ever), nothing else in the
// catalog changed, `almostrec resume` ends with the figures of an uninterrupted run of the same seed.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bin, createHome, integrityCheck, json, killHard, requireBuild, root, startFrozen, tableChecksums, trainedFigures, writeEventsCsv, type Home } from './crash-helpers';

type Run = Parameters<typeof trainedFigures>[0] & { id: number; error: string | null };

const TRAIN = ['sasrec', '--dataset', 'events', '--epochs', '3', '--seed', '11', '--batch-size', '16', '--max-len', '10'];
let home: Home;
let reference: ReturnType<typeof trainedFigures>;
let stepsPerEpoch: number;

const runOf = (id: number): Run => home.cli('runs', '--json').lines.map((l) => json<Run>(l)).find((r) => r.id === id)!;
/** The id of the run the frozen `train` created (the newest). */
const newestRun = (): Run => json<Run>(home.cli('runs', '--json').lines[0]);
const trainFrozen = (point: string) => startFrozen([bin, 'train', ...TRAIN, '--db', home.db], point);

beforeAll(() => {
  requireBuild();
  home = createHome('almostrec-crash-cli-');
  const csv = join(home.dir, 'events.csv');
  writeEventsCsv(csv);
  const imp = home.cli('import', 'generic', csv, '--name', 'events', '--columns', 'user=user,item=item,timestamp=ts');
  expect(imp.code, imp.stderr).toBe(0);
  // Other work the kills must not touch: a second dataset with a finished run, and the reference run.
  expect(home.cli('import', 'movielens-latest', join(root, 'test', 'fixtures', 'importers', 'ml-latest'), '--name', 'tiny').code).toBe(0);
  expect(home.cli('train', 'popularity', '--dataset', 'tiny').code).toBe(0);
  const ref = home.cli('train', ...TRAIN, '--json');
  expect(ref.code, ref.stderr).toBe(0);
  reference = trainedFigures(json<Run>(ref.lines[0]));
  expect(reference.status).toBe('succeeded');
  stepsPerEpoch = Number(/\[train\] \d+\/(\d+)/.exec(ref.stderr)![1]) / 3;
  expect(stepsPerEpoch).toBeGreaterThanOrEqual(3);
});
afterAll(() => home?.remove());

describe('kill -9 of almostrec train', () => {
  it('in the middle of an epoch: interrupted, catalog otherwise unchanged, resumed to the same metrics', async () => {
    const before = tableChecksums(home.db);
    // Step 2 of epoch 2: epoch 1's checkpoint is on disk, epoch 2 half done.
    const frozen = await trainFrozen(`train-step@${stepsPerEpoch + 2}`);
    const id = newestRun().id;
    // While its process lives, another process leaves the run alone (it is not "interrupted").
    expect(runOf(id)).toMatchObject({ status: 'running', error: null });
    await killHard(frozen);

    const listed = home.cli('runs');
    expect(listed.stderr).toContain(`Run ${id} was interrupted (its process is gone): continue it with "almostrec resume ${id}"`);
    expect(listed.lines.find((l) => l.startsWith(`${id}\t`))).toMatch(/\tinterrupted\t/);
    expect(runOf(id)).toMatchObject({ status: 'failed', error: expect.stringMatching(/^Interrupted: process \d+ on .+ stopped \(killed or crashed\)/) });
    expect(tableChecksums(home.db, { runIds: [id] })).toEqual(before);
    expect(integrityCheck(home.db)).toBe('ok');

    const resumed = home.cli('resume', String(id), '--json');
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(trainedFigures(json<Run>(resumed.lines[0]))).toEqual(reference);
  });

  it('while a checkpoint is being written: the torn file is never used, the previous one is', async () => {
    // The second training checkpoint (epoch 2's) is half written when the process dies.
    const frozen = await trainFrozen('checkpoint-write@2');
    const id = newestRun().id;
    const dir = join(home.dir, 'runs', String(id));
    await killHard(frozen);
    const torn = readdirSync(dir).filter((f) => f.startsWith('checkpoint.safetensors.tmp-'));
    expect(torn).toHaveLength(1);
    expect(existsSync(join(dir, 'checkpoint.safetensors'))).toBe(false);
    expect(existsSync(join(dir, 'checkpoint.prev.safetensors'))).toBe(true);

    const resumed = home.cli('resume', String(id), '--json');
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming from the previous checkpoint .*checkpoint\.prev\.safetensors \(epoch 1\)/);
    expect(trainedFigures(json<Run>(resumed.lines[0]))).toEqual(reference);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('with a corrupt last checkpoint (bit rot, a torn copy): detected by its hash and skipped', async () => {
    const frozen = await trainFrozen(`train-step@${2 * stepsPerEpoch + 1}`);
    const id = newestRun().id;
    await killHard(frozen);
    const ckpt = join(home.dir, 'runs', String(id), 'checkpoint.safetensors');
    // Four bytes of weights flipped in place: the header and size still parse, only the data hash can tell.
    const bytes = readFileSync(ckpt);
    const middle = bytes.length - 64;
    for (let i = 0; i < 4; i++) bytes[middle + i] ^= 0xff;
    writeFileSync(ckpt, bytes);
    const resumed = home.cli('resume', String(id), '--json');
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/skipping a checkpoint that does not read back whole: .*checkpoint\.safetensors: data does not match its data_sha256 \(torn or corrupt file\)/);
    expect(resumed.stderr).toMatch(/resuming from the previous checkpoint .*checkpoint\.prev\.safetensors \(epoch 1\)/);
    expect(trainedFigures(json<Run>(resumed.lines[0]))).toEqual(reference);
  });

  it('refuses to resume a run another live process is training', async () => {
    const frozen = await trainFrozen('train-step@1');
    const id = newestRun().id;
    try {
      const r = home.cli('resume', String(id));
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n').at(-1)).toBe(`almostrec: Run ${id} is running in another process (the app or another CLI); resume it once that has stopped`);
    } finally {
      await killHard(frozen);
    }
    expect(home.cli('resume', String(id)).code).toBe(0);
  });
});

describe('kill -9 of almostrec import', () => {
  it('inside the write transaction: no dataset, the catalog byte-for-byte as before', async () => {
    const before = tableChecksums(home.db);
    const frozen = await startFrozen([bin, 'import', 'generic', join(home.dir, 'events.csv'), '--name', 'half', '--columns', 'user=user,item=item,timestamp=ts', '--db', home.db], 'import-write');
    await killHard(frozen);
    expect(tableChecksums(home.db)).toEqual(before);
    expect(integrityCheck(home.db)).toBe('ok');
    expect(home.cli('datasets', '--json').lines.map((l) => json(l).name)).not.toContain('half');
    // Nothing half-written blocks the same import afterwards.
    expect(home.cli('import', 'generic', join(home.dir, 'events.csv'), '--name', 'half', '--columns', 'user=user,item=item,timestamp=ts').code).toBe(0);
  });
});

describe('kill -9 of almostrec pretrain', () => {
  const TINY = ['hiddenSize=32', 'numLayers=1', 'numHeads=2', 'numKvHeads=1', 'intermediateSize=64', 'maxTokens=32', 'batchSize=2', 'stage0Steps=2', 'stage1Steps=2', 'stage2Steps=2'].flatMap((p) => ['--param', p]);
  type Backbone = { id: number; status: string; error: string | null };
  const backboneOf = (id: number) => home.cli('backbone', 'list', '--json').lines.map((l) => json<Backbone>(l)).find((b) => b.id === id);
  /** Every step's loss and learning rate (the loss chart): what a resume must reproduce. */
  const history = (id: number) => {
    const db = new Database(home.db, { readonly: true });
    try {
      return db.prepare('SELECT step, stage, loss, learning_rate FROM backbone_history WHERE backbone_id = ? ORDER BY step').all(id);
    } finally {
      db.close();
    }
  };

  it('interrupted, then resumed from its last state file to a finished backbone', async () => {
    const ref = home.cli('pretrain', '--dataset', 'tiny', '--name', 'reference', ...TINY, '--json');
    expect(ref.code, ref.stderr).toBe(0);
    const before = tableChecksums(home.db, { tables: ['vision_features'] });
    // Step 4 of 6: stage 1's second step, after stage 0's end-of-stage state file.
    const frozen = await startFrozen([bin, 'pretrain', '--dataset', 'tiny', '--name', 'killed', ...TINY, '--db', home.db], 'pretrain-step@4');
    const id = json<Backbone>(home.cli('backbone', 'list', '--json').lines.find((l) => json(l).name === 'killed')!).id;
    expect(backboneOf(id)).toMatchObject({ status: 'running' });
    await killHard(frozen);
    const listed = home.cli('backbone', 'list', '--json');
    expect(listed.stderr).toContain(`Backbone ${id} was interrupted`);
    expect(backboneOf(id)).toMatchObject({ status: 'failed', error: expect.stringMatching(/^Interrupted: process \d+ .* stopped/) });
    expect(tableChecksums(home.db, { backboneIds: [id], tables: ['vision_features'] })).toEqual(before);
    expect(integrityCheck(home.db)).toBe('ok');

    const resumed = home.cli('backbone', 'resume', String(id), '--json');
    expect(resumed.code, resumed.stderr).toBe(0);
    // Stage 0's end-of-stage state: stage 0 is not redone, stage 1 starts over.
    expect(resumed.stderr).toContain('resuming stage 0 at step 2');
    expect(json<Backbone>(resumed.lines[0])).toMatchObject({ status: 'succeeded' });
    const refId = json<Backbone>(ref.lines[0]).id;
    expect(history(id)).toHaveLength(6);
    expect(history(id)).toEqual(history(refId));
  });

  it('with a corrupt state file: detected by its hash, not loaded; the pretraining restarts from step 0', async () => {
    const frozen = await startFrozen([bin, 'pretrain', '--dataset', 'tiny', '--name', 'corrupt', ...TINY, '--db', home.db], 'pretrain-step@4');
    const id = json<Backbone>(home.cli('backbone', 'list', '--json').lines.find((l) => json(l).name === 'corrupt')!).id;
    await killHard(frozen);
    // Stage 0's end-of-stage state, beside the backbone's folder (pretrainStatePath).
    const path = join(home.dir, 'backbones', `${id}.pretrain-state.safetensors`);
    const bytes = readFileSync(path);
    for (let i = 1; i <= 4; i++) bytes[bytes.length - 64 * i] ^= 0xff;
    writeFileSync(path, bytes);

    const resumed = home.cli('backbone', 'resume', String(id), '--json');
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/skipping a state file that does not read back whole: .*data does not match its data_sha256 \(torn or corrupt file\); pretraining restarts from step 0/);
    expect(resumed.stderr).not.toContain('resuming stage');
    expect(history(id)).toEqual(history(json<Backbone>(home.cli('backbone', 'list', '--json').lines.find((l) => json(l).name === 'reference')!).id));
  });
});
