// Display helpers shared by every view; one place decides how numbers, dates and durations read.
import type { JobInfo } from '../../../shared/types';

export function metric(v: number | null | undefined): string {
  return v == null || Number.isNaN(v) ? '—' : v.toFixed(4);
}

export function count(v: number | null | undefined): string {
  return v == null ? '—' : v.toLocaleString('en-US');
}

export function percent(part: number, whole: number): string {
  return whole > 0 ? `${((100 * part) / whole).toFixed(0)}%` : '—';
}

/** Dataset timestamps are Unix seconds (MovieLens) but some sources use milliseconds; values below
 *  1e11 cannot be milliseconds after 1973, so treat them as seconds. */
function toDate(ts: number): Date {
  return new Date(ts < 1e11 ? ts * 1000 : ts);
}

export function day(ts: number | null | undefined): string {
  return ts == null ? '—' : toDate(ts).toISOString().slice(0, 10);
}

export function dateTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toISOString().slice(0, 10)} ${d.toTimeString().slice(0, 5)}`;
}

/** Month-day and time, for dense tables where the year is rarely in doubt (full value in a tooltip). */
export function shortDateTime(iso: string | null | undefined): string {
  const full = dateTime(iso);
  return full.length === 16 ? full.slice(5) : full;
}

export function duration(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds) || seconds < 0) return '—';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

export function elapsed(startIso: string | null, endIso: string | null): string {
  if (!startIso) return '—';
  const end = endIso ? new Date(endIso).getTime() : Date.now();
  return duration((end - new Date(startIso).getTime()) / 1000);
}

export function fraction(done: number, total: number): number {
  return total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
}

/** A queued job's place: heavy jobs (training-like) and light ones (imports, evaluations) wait in separate lines. */
export function queuedText(job: Pick<JobInfo, 'queuePosition' | 'lane'>): string {
  const line = job.lane === 'heavy' ? 'training' : 'import/evaluation';
  return `Queued · #${job.queuePosition ?? '…'} in the ${line} line; starts when a slot frees up`;
}

/** Parameter counts as people say them: 940, 12.3K, 4.1M, 7.0B (the exact count goes in a tooltip). */
export function paramCount(n: number | null | undefined): string {
  if (n == null || !Number.isFinite(n)) return '—';
  if (n < 1e3) return String(n);
  if (n < 1e6) return `${(n / 1e3).toFixed(1)}K`;
  if (n < 1e9) return `${(n / 1e6).toFixed(1)}M`;
  return `${(n / 1e9).toFixed(1)}B`;
}
