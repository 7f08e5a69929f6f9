// Job threads run at a lower CPU priority than the main thread, so the API (and Electron's window) answers
// at once while a training keeps every core busy. On Linux the nice value belongs to each thread, and the
// threads a job starts afterwards (its training replica, onnxruntime's pool) inherit it. Node offers only
// os.setPriority(pid): on Linux a thread id works there too, read from /proc/thread-self.
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/** The nice value of job threads (0 is normal, 19 the lowest priority). */
export const JOB_THREAD_NICE = 10;

/** This thread's kernel id (Linux), or null where there is none to read. */
export function currentThreadId(): number | null {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    return Number.isInteger(tid) && tid > 0 ? tid : null;
  } catch {
    return null;
  }
}

/**
 * Lowers the calling thread's priority to JOB_THREAD_NICE (never raises it: that needs privileges). Returns
 * the nice value now in force, or null where threads cannot be niced alone (not Linux): the job then runs at
 * normal priority, as before.
 */
export function lowerThisThreadPriority(nice: number = JOB_THREAD_NICE): number | null {
  if (process.platform !== 'linux') return null;
  const tid = currentThreadId();
  if (tid === null) return null;
  try {
    const target = Math.max(getPriority(tid), nice);
    setPriority(tid, target);
    return getPriority(tid);
  } catch {
    return null;
  }
}
