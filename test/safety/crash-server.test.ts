// kill -9 of the whole browser-mode server (out/main/browser.js) while its job worker trains, at known
// instants; and the app opening while the CLI trains. On restart the app shows the run interrupted (and
// only that run: a live process's run is left alone), resumes it to the figures of an uninterrupted run of
// the same seed, and nothing else in the catalog changed.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bin, createHome, integrityCheck, json, killHard, requireBuild, startFrozen, startServer, stopServer, tableChecksums, trainedFigures, writeEventsCsv, type Home } from './crash-helpers';

type Run = Parameters<typeof trainedFigures>[0] & { id: number; error: string | null };

const CONFIG = { epochs: 3, seed: 11, batchSize: 16, maxLen: 10 };
let home: Home;
let datasetId: number;
let reference: ReturnType<typeof trainedFigures>;
let stepsPerEpoch: number;

beforeAll(() => {
  requireBuild();
  home = createHome('almostrec-crash-server-');
  const csv = join(home.dir, 'events.csv');
  writeEventsCsv(csv);
  const imp = home.cli('import', 'generic', csv, '--name', 'events', '--columns', 'user=user,item=item,timestamp=ts', '--json');
  expect(imp.code, imp.stderr).toBe(0);
  datasetId = json<{ dataset: { id: number } }>(imp.lines[0]).dataset.id;
  const ref = home.cli('train', 'sasrec', '--dataset', 'events', '--epochs', '3', '--seed', '11', '--batch-size', '16', '--max-len', '10', '--json');
  expect(ref.code, ref.stderr).toBe(0);
  reference = trainedFigures(json<Run>(ref.lines[0]));
  stepsPerEpoch = Number(/\[train\] \d+\/(\d+)/.exec(ref.stderr)![1]) / 3;
});
afterAll(() => home?.remove());

type Api = <T>(m: string, i?: unknown) => Promise<T>;

/** Resumes a run through the app's API and waits for its job to end; the run as it ended. */
async function resumeAndWait(api: Api, runId: number): Promise<Run> {
  const { jobId } = await api<{ jobId: string }>('train.resume', { runId });
  for (const start = Date.now(); Date.now() - start < 120_000; await new Promise((r) => setTimeout(r, 200))) {
    const job = (await api<{ jobId: string; status: string }[]>('jobs.list')).find((j) => j.jobId === jobId);
    if (job && job.status !== 'running' && job.status !== 'queued') return api<Run>('runs.get', { runId });
  }
  throw new Error(`the job resuming run ${runId} did not end`);
}

describe('the app opening while the CLI trains', () => {
  it('leaves the live CLI run running, shows it interrupted once the CLI is killed, and resumes it', async () => {
    const cli = await startFrozen([bin, 'train', 'sasrec', '--dataset', 'events', '--epochs', '3', '--seed', '11', '--batch-size', '16', '--max-len', '10', '--db', home.db], 'train-step@2');
    const runId = json<Run>(home.cli('runs', '--json').lines[0]).id;
    const app = await startServer(home.dir);
    try {
      expect(await app.api<Run>('runs.get', { runId })).toMatchObject({ status: 'running', error: null });
      await killHard(cli);
      // The open app notices within its sweep interval (2 s), without a restart.
      let seen: Run | undefined;
      for (const start = Date.now(); Date.now() - start < 10_000 && seen?.status !== 'failed'; await new Promise((r) => setTimeout(r, 250))) {
        seen = await app.api<Run>('runs.get', { runId });
      }
      expect(seen).toMatchObject({ status: 'failed', error: expect.stringMatching(/^Interrupted: process \d+ on .+ stopped \(killed or crashed\)/) });
      expect(home.cli('runs').lines.find((l) => l.startsWith(`${runId}\t`))).toMatch(/\tinterrupted\t/);
      // The app resumes a run the CLI left, to the figures of an uninterrupted run.
      expect(trainedFigures(await resumeAndWait(app.api, runId))).toEqual(reference);
    } finally {
      await stopServer(app);
    }
  });
});

describe('the training worker dying while the server goes on', () => {
  it('mid-epoch: the run shows interrupted at once, the server keeps serving, resume ends with the same metrics', async () => {
    const before = tableChecksums(home.db);
    // The job worker is a thread of the server process: it cannot be SIGKILLed alone, so it exits abruptly
    // at the crash point (process.exit in a worker thread ends that thread only, reporting nothing).
    // Step 2 of epoch 3: the resumed job (a new worker, counting hits afresh) trains one epoch, never reaching it.
    const server = await startServer(home.dir, `train-step@${2 * stepsPerEpoch + 2}`, { ALMOSTREC_TEST_CRASH_MODE: 'exit' });
    try {
      const { runId, jobId } = await server.api<{ runId: number; jobId: string }>('train.start', { datasetId, model: 'sasrec', config: CONFIG });
      await server.frozen();
      let job: { jobId: string; status: string; error: { message: string } | null } | undefined;
      for (const start = Date.now(); Date.now() - start < 30_000 && job?.status !== 'failed'; await new Promise((r) => setTimeout(r, 100))) {
        job = (await server.api<NonNullable<typeof job>[]>('jobs.list')).find((j) => j.jobId === jobId);
      }
      expect(job).toMatchObject({ status: 'failed', error: { message: 'Job worker exited unexpectedly (code 70)' } });
      expect(await server.api<Run>('runs.get', { runId })).toMatchObject({
        status: 'failed',
        error: 'Interrupted: Job worker exited unexpectedly (code 70). Resume it to continue from its last checkpoint.'
      });
      expect(tableChecksums(home.db, { runIds: [runId] })).toEqual(before);
      // The same server resumes it, from epoch 2's checkpoint.
      const resumed = await resumeAndWait(server.api, runId);
      expect(trainedFigures(resumed)).toEqual(reference);
    } finally {
      await stopServer(server);
    }
  });
});

describe('kill -9 of the browser-mode server while its worker trains', () => {
  const points = () => [`train-step@${stepsPerEpoch + 2}`, 'checkpoint-write@2'];
  for (const which of [0, 1]) {
    it(`${which === 0 ? 'in the middle of an epoch' : 'while a checkpoint is being written'}: interrupted on restart, resumed to the same metrics`, async () => {
      const before = tableChecksums(home.db);
      const server = await startServer(home.dir, points()[which]);
      const { runId } = await server.api<{ runId: number }>('train.start', { datasetId, model: 'sasrec', config: CONFIG });
      await server.frozen();
      // Alive, the server's run is not another process's to sweep.
      expect(json<Run>(home.cli('runs', '--json').lines[0])).toMatchObject({ id: runId, status: 'running' });
      await killHard(server);

      const app = await startServer(home.dir);
      try {
        const run = await app.api<Run>('runs.get', { runId });
        expect(run).toMatchObject({ status: 'failed', error: expect.stringMatching(/^Interrupted: process \d+ on .+ stopped \(killed or crashed\) while this run was running\. Resume it/) });
        expect(tableChecksums(home.db, { runIds: [runId] })).toEqual(before);
        expect(integrityCheck(home.db)).toBe('ok');
        expect(trainedFigures(await resumeAndWait(app.api, runId))).toEqual(reference);
      } finally {
        await stopServer(app);
      }
    });
  }
});
