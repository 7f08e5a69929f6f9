import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { JobManager } from '../../src/main/services/job-manager';
import { jobSlotsFromEnv } from '../../src/main/services/job-slots';
import type { JobEvent } from '../../src/shared/api';
import type { JobInfo } from '../../src/shared/types';

const workerPath = join(__dirname, '..', 'fixtures', 'workers', 'fake-job-worker.mjs');

function manager(ended: JobInfo[] = [], cancelGraceMs = 15_000) {
  return new JobManager({ workerPath, dbPath: ':memory:', dataDir: '/tmp', onJobEnded: (j) => ended.push(j), cancelGraceMs });
}

function importRequest(name: string) {
  return { kind: 'import' as const, input: { format: 'generic' as const, path: '/x', name, options: {} } };
}

describe('JobManager', () => {
  it('streams progress and logs, then reports success', async () => {
    const ended: JobInfo[] = [];
    const jm = manager(ended);
    const events: JobEvent[] = [];
    jm.onEvent((e) => events.push(e));
    const job = jm.start('import', 'Importing ok', importRequest('ok'), { datasetId: 1 });
    const final = await jm.wait(job.jobId);
    expect(final.status).toBe('succeeded');
    expect(final.done).toBe(3);
    expect(final.total).toBe(3);
    expect(events.some((e) => e.type === 'log' && e.message === 'hello from worker')).toBe(true);
    expect(events.filter((e) => e.type === 'progress').length).toBeGreaterThanOrEqual(2);
    expect(events.at(-1)).toMatchObject({ type: 'finished', job: { jobId: job.jobId, status: 'succeeded' } });
    expect(ended).toHaveLength(1);
    expect(jm.list()[0].status).toBe('succeeded');
  });

  it('cancels a worker busy in synchronous code through the shared flag', async () => {
    const jm = manager();
    const job = jm.start('import', 'slow', importRequest('slow'));
    await new Promise((r) => setTimeout(r, 100));
    expect(jm.cancel(job.jobId)).toBe(true);
    expect((await jm.wait(job.jobId)).status).toBe('cancelled');
    expect(jm.cancel(job.jobId)).toBe(false);
  });

  it('terminates a worker that ignores cancellation after the grace period', async () => {
    const jm = manager([], 200);
    const job = jm.start('import', 'stuck', importRequest('stuck'));
    await new Promise((r) => setTimeout(r, 100));
    jm.cancel(job.jobId);
    expect((await jm.wait(job.jobId)).status).toBe('cancelled');
  });

  it('reports a job error with its code and message', async () => {
    const jm = manager();
    const job = jm.start('import', 'fail', importRequest('fail'));
    const final = await jm.wait(job.jobId);
    expect(final.status).toBe('failed');
    expect(final.error).toEqual({ code: 'import_error', message: 'ratings.csv line 3: bad rating' });
  });

  it('turns a crashed worker into a failed job', async () => {
    const jm = manager();
    const job = jm.start('import', 'crash', importRequest('crash'));
    const final = await jm.wait(job.jobId);
    expect(final.status).toBe('failed');
    expect(final.error?.message).toMatch(/exited unexpectedly \(code 3\)/);
  });
});

describe('JobManager queue', () => {
  /** Events per job id, in order, and the jobs whose worker started. */
  function recorder(jm: JobManager) {
    const events: JobEvent[] = [];
    jm.onEvent((e) => events.push(e));
    const started = () => events.flatMap((e) => (e.type === 'started' ? [e.job.title] : []));
    const positions = (title: string) => events.flatMap((e) => (e.type === 'queued' && e.job.title === title ? [e.job.queuePosition] : []));
    return { events, started, positions };
  }
  const until = async (cond: () => boolean, ms = 5000) => {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  it('runs one heavy job at a time by default, in submission order, with each waiting job told its place', async () => {
    const jm = manager();
    const rec = recorder(jm);
    const a = jm.start('train', 'a', importRequest('ok'));
    const b = jm.start('pretrain', 'b', importRequest('ok'));
    const c = jm.start('ablation', 'c', importRequest('ok'));
    expect([a.status, b.status, c.status]).toEqual(['running', 'queued', 'queued']);
    expect([b.queuePosition, c.queuePosition]).toEqual([1, 2]);
    expect(b.startedAt).toBeNull();
    expect(jm.list().filter((j) => j.status === 'running')).toHaveLength(1);
    await Promise.all([a, b, c].map((j) => jm.wait(j.jobId)));
    expect(rec.started()).toEqual(['a', 'b', 'c']);
    // Each started only after the one before it had finished.
    const order = rec.events.flatMap((e) => (e.type === 'started' || e.type === 'finished' ? [`${e.type}:${e.job.title}`] : []));
    expect(order).toEqual(['started:a', 'finished:a', 'started:b', 'finished:b', 'started:c', 'finished:c']);
    expect(rec.positions('c')).toEqual([2, 1]);
    expect(jm.list().map((j) => j.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    expect(jm.get(c.jobId)?.startedAt).not.toBeNull();
  });

  it('gives imports and evaluations their own slot beside a training', async () => {
    const jm = manager();
    const train = jm.start('train', 'train', importRequest('slow'));
    const imp = jm.start('import', 'import', importRequest('ok'));
    const evaluate = jm.start('evaluate', 'evaluate', importRequest('ok'));
    expect([train.status, imp.status, evaluate.status]).toEqual(['running', 'running', 'queued']);
    expect(evaluate.queuePosition).toBe(1);
    // A heavy job waits behind the training even while the light lane moves on.
    const second = jm.start('llm-case', 'second', importRequest('ok'));
    expect(second).toMatchObject({ status: 'queued', queuePosition: 1 });
    expect((await jm.wait(imp.jobId)).status).toBe('succeeded');
    expect((await jm.wait(evaluate.jobId)).status).toBe('succeeded');
    expect(jm.get(second.jobId)?.status).toBe('queued');
    jm.cancel(train.jobId);
    expect((await jm.wait(second.jobId)).status).toBe('succeeded');
  });

  it('cancels a queued job without ever starting it, and moves the ones behind it up', async () => {
    const ended: JobInfo[] = [];
    const jm = manager(ended);
    const rec = recorder(jm);
    const holder = jm.start('train', 'holder', importRequest('slow'));
    const doomed = jm.start('train', 'doomed', importRequest('crash'));
    const next = jm.start('train', 'next', importRequest('ok'));
    expect(jm.get(next.jobId)?.queuePosition).toBe(2);
    expect(jm.cancel(doomed.jobId)).toBe(true);
    const final = await jm.wait(doomed.jobId);
    expect(final).toMatchObject({ status: 'cancelled', startedAt: null, queuePosition: null, error: null });
    expect(ended.map((j) => j.title)).toEqual(['doomed']); // onJobEnded fixes up its run like any other end
    expect(jm.get(next.jobId)?.queuePosition).toBe(1);
    expect(rec.positions('next')).toEqual([2, 1]);
    expect(jm.cancel(doomed.jobId)).toBe(false);
    jm.cancel(holder.jobId);
    expect((await jm.wait(next.jobId)).status).toBe('succeeded');
    // 'doomed' would have crashed its worker: it never got one.
    expect(rec.started()).toEqual(['holder', 'next']);
  });

  it('frees the slot of a job that fails or whose worker crashes', async () => {
    const jm = manager();
    const failing = jm.start('train', 'fail', importRequest('fail'));
    const crashing = jm.start('train', 'crash', importRequest('crash'));
    const after = jm.start('train', 'after', importRequest('ok'));
    expect((await jm.wait(failing.jobId)).status).toBe('failed');
    expect((await jm.wait(crashing.jobId)).status).toBe('failed');
    expect((await jm.wait(after.jobId)).status).toBe('succeeded');
  });

  it('frees the slot of a job whose worker cannot be loaded', async () => {
    const jm = new JobManager({ workerPath: join(__dirname, 'no-such-worker.mjs'), dbPath: ':memory:', dataDir: '/tmp' });
    const a = jm.start('train', 'a', importRequest('ok'));
    const b = jm.start('train', 'b', importRequest('ok'));
    expect((await jm.wait(a.jobId)).status).toBe('failed');
    expect((await jm.wait(b.jobId)).status).toBe('failed');
  });

  it('runs as many heavy jobs at once as it has slots', async () => {
    const jm = new JobManager({ workerPath, dbPath: ':memory:', dataDir: '/tmp', slots: { heavy: 2, light: 1 } });
    const jobs = ['a', 'b', 'c'].map((t) => jm.start('train', t, importRequest('slow')));
    expect(jobs.map((j) => j.status)).toEqual(['running', 'running', 'queued']);
    jm.cancel(jobs[1].jobId);
    await until(() => jm.get(jobs[2].jobId)?.status === 'running');
    expect(jm.list().filter((j) => j.status === 'running').map((j) => j.title).sort()).toEqual(['a', 'c']);
    await jm.shutdown();
  });

  it('drops queued jobs on shutdown instead of starting them', async () => {
    const jm = manager();
    const rec = recorder(jm);
    const running = jm.start('train', 'running', importRequest('slow'));
    const queued = jm.start('train', 'queued', importRequest('ok'));
    await new Promise((r) => setTimeout(r, 50));
    await jm.shutdown();
    expect(jm.get(running.jobId)?.status).toBe('cancelled');
    expect(jm.get(queued.jobId)).toMatchObject({ status: 'cancelled', startedAt: null });
    expect(rec.started()).toEqual(['running']);
  });
});

describe('jobSlotsFromEnv', () => {
  it('reads ALMOSTREC_HEAVY_JOBS and ALMOSTREC_LIGHT_JOBS, defaulting to one of each', () => {
    expect(jobSlotsFromEnv({})).toEqual({ heavy: 1, light: 1 });
    expect(jobSlotsFromEnv({ ALMOSTREC_HEAVY_JOBS: '2', ALMOSTREC_LIGHT_JOBS: ' 3 ' })).toEqual({ heavy: 2, light: 3 });
    expect(() => jobSlotsFromEnv({ ALMOSTREC_HEAVY_JOBS: '0' })).toThrow('ALMOSTREC_HEAVY_JOBS must be a positive integer (jobs of that kind run at once), got "0"');
    expect(() => jobSlotsFromEnv({ ALMOSTREC_LIGHT_JOBS: '1.5' })).toThrow(/ALMOSTREC_LIGHT_JOBS/);
  });
});
