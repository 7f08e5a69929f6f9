import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { JobManager } from '../../src/main/services/job-manager';
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
