// The CLI's exports for papers: `almostrec recommendations` (every test user's stored top-k as CSV) and
// `almostrec figure case-study` (the case study as SVG or 300-dpi PNG), built by the same modules as the
// app's buttons (src/shared/figures) and rasterised with resvg instead of a canvas.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import type { Catalog } from '../core/catalog';
import { CaseStudyError, readCaseStudy } from '../core/catalog/case-study';
import { figureToPng } from '../core/figures/rasterize';
import { caseStudyFigure } from '../shared/figures/case-study-svg';
import { recommendationsCsv } from '../shared/figures/recommendations-csv';
import { PNG_DPI, pngSize } from '../shared/figures/svg';

export interface FigureFlags {
  out?: string;
  k?: number;
  user?: string;
  runs?: string;
  /** PNG resolution; 300 by default. */
  dpi?: number;
}

/** A refusal the CLI prints as its one-line error. */
export class FigureCliError extends Error {}

/**
 * Writes `data` to `path` atomically: a temp file beside it, fsynced, then renamed over it, so a crash or a
 * full disk never leaves a half-written file under the name (an existing file is replaced whole or kept).
 */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const target = resolve(path);
  const temp = join(dirname(target), `.${basename(target)}.${process.pid}.tmp`);
  try {
    const fd = openSync(temp, 'w', 0o644);
    try {
      writeSync(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, target);
  } catch (err) {
    rmSync(temp, { force: true });
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'its folder does not exist' : e.code === 'EACCES' || e.code === 'EPERM' ? 'permission denied' : e.code === 'ENOSPC' ? 'no space left on the device' : e.code === 'EISDIR' ? 'it is a folder' : e.message;
    throw new FigureCliError(`Cannot write ${target}: ${why}`);
  }
}

function finishedRun(catalog: Catalog, id: number) {
  const run = catalog.getRun(id);
  if (!run) throw new FigureCliError(`Run ${id} not found`);
  if (run.status !== 'succeeded') throw new FigureCliError(`Run ${id} is ${run.status}; only finished runs have recommendations`);
  return run;
}

/** `almostrec recommendations <run> [--k K] [--out FILE]`: CSV to FILE, or to stdout. Returns what it wrote. */
export function recommendationsCommand(catalog: Catalog, runId: number, flags: FigureFlags): { rows: number; users: number; path: string | null } {
  const run = finishedRun(catalog, runId);
  const k = flags.k ?? 20;
  if (!Number.isInteger(k) || k < 1 || k > 100) throw new FigureCliError('--k must be an integer between 1 and 100');
  const rows = catalog.listRecommendationRows(run.id, k);
  const csv = recommendationsCsv(rows);
  const users = new Set(rows.map((r) => r.user)).size;
  if (!flags.out) {
    process.stdout.write(csv);
    return { rows: rows.length, users, path: null };
  }
  writeFileAtomic(flags.out, csv);
  return { rows: rows.length, users, path: resolve(flags.out) };
}

/**
 * `almostrec figure case-study --runs R1,R2 --user U [--k K] [--dpi D] --out FILE.svg|FILE.png`: the runs' rows in the
 * order given, all of one dataset; the format follows the file's extension.
 */
export function caseStudyFigureCommand(
  catalog: Catalog,
  flags: FigureFlags
): { path: string; widthPt: number; heightPt: number; dpi: number; pixels: { width: number; height: number } | null } {
  if (!flags.out) throw new FigureCliError('--out FILE.svg or FILE.png is required');
  const format = extname(flags.out).toLowerCase();
  if (format !== '.svg' && format !== '.png') throw new FigureCliError(`--out must end in .svg or .png (got "${flags.out}")`);
  const ids = (flags.runs ?? '').split(',').filter((s) => s.trim() !== '').map(Number);
  if (ids.length === 0 || ids.some((id) => !Number.isInteger(id) || id < 1)) throw new FigureCliError('--runs expects run ids separated by commas, e.g. --runs 2,5');
  if (ids.length > 8) throw new FigureCliError('--runs takes at most 8 runs');
  const runs = ids.map((id) => finishedRun(catalog, id));
  const datasetId = runs[0].datasetId;
  if (!flags.user) throw new FigureCliError('--user is required (the user id of the dataset\'s files)');
  const user = catalog.searchUsers(datasetId, flags.user, 500).users.find((u) => u.externalId === flags.user);
  if (!user) throw new FigureCliError(`User "${flags.user}" not found in dataset ${runs[0].datasetName}`);
  const k = flags.k ?? 10;
  if (!Number.isInteger(k) || k < 1 || k > 20) throw new FigureCliError('--k must be an integer between 1 and 20 (the stored top-20)');
  const dpi = flags.dpi ?? PNG_DPI;
  if (!Number.isInteger(dpi) || dpi < 72 || dpi > 1200) throw new FigureCliError('--dpi must be an integer between 72 and 1200');
  let figure;
  try {
    figure = caseStudyFigure(readCaseStudy(catalog, datasetId, user.id, ids, k), { k });
  } catch (err) {
    if (err instanceof CaseStudyError) throw new FigureCliError(err.message);
    throw err;
  }
  writeFileAtomic(flags.out, format === '.svg' ? figure.svg : figureToPng(figure, dpi));
  return { path: resolve(flags.out), widthPt: figure.widthPt, heightPt: figure.heightPt, dpi, pixels: format === '.png' ? pngSize(figure, dpi) : null };
}
