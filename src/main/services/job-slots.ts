// How many jobs of each lane (shared/jobs.ts) may run at once. The default is one heavy job (a training
// already uses both cores through its replica thread) and one light job beside it.
import type { JobLane } from '../../shared/types';

export type JobSlots = Readonly<Record<JobLane, number>>;

export const DEFAULT_JOB_SLOTS: JobSlots = { heavy: 1, light: 1 };

/** The environment variables that override the defaults, per lane. */
export const JOB_SLOT_ENV: Readonly<Record<JobLane, string>> = { heavy: 'ALMOSTREC_HEAVY_JOBS', light: 'ALMOSTREC_LIGHT_JOBS' };

/** Slots from ALMOSTREC_HEAVY_JOBS / ALMOSTREC_LIGHT_JOBS (positive integers), else the defaults. */
export function jobSlotsFromEnv(env: NodeJS.ProcessEnv = process.env): JobSlots {
  const read = (lane: JobLane): number => {
    const name = JOB_SLOT_ENV[lane];
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') return DEFAULT_JOB_SLOTS[lane];
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer (jobs of that kind run at once), got "${raw}"`);
    return n;
  };
  return { heavy: read('heavy'), light: read('light') };
}
