// Issue 13, item 1: the malformed-input corpus. Every case (corpus/cases.ts, generated here, nothing
// committed but code) is imported the way the app imports — the job worker's path (executeJob in a worker
// thread, built from src) with its own connection to a real catalog file that already holds a good
// dataset of every format — and must
// end in a clear error naming the file and line (the catalog unchanged, to the byte of every table), or
// import exactly what the file says (a skipped poster as a warning naming it). A worker that throws
// outside the importer, dies or hangs past the time limit is a crash. PRAGMA integrity_check after each.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/core/catalog';
import { buildCorpus, controls, type CorpusCase } from './corpus/cases';
import { integrityCheck, tableChecksums } from './corpus/catalog-checksum';
import { buildImportWorker } from './corpus/import-worker-bundle';
import { ImportRunner, type JobOutcome } from './corpus/run-import-job';
import { datasetView, interaction, type DatasetView } from './corpus/view';
import { ITEMS, USERS, poster, rating, timestamp, title, type Format, type Source, type Tree } from './corpus/world';

/** Far above any case here (the 10 MB lines take about a second); a hang ends at this. */
const CASE_TIMEOUT_MS = 30_000;
/** Cases run in this many lanes at once, each with its own catalog file (so a lane's checksums see only its own imports). */
const LANES = Math.max(1, Math.min(4, os.availableParallelism()));

interface Lane {
  runner: ImportRunner;
  dbPath: string;
  catalog: Catalog;
  controls: Record<Format, DatasetView>;
}

let tmp: string;
let workerPath: string;
const lanes: Lane[] = [];

function writeTree(dir: string, tree: Tree): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const [rel, bytes] of Object.entries(tree)) {
    const file = path.join(dir, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, bytes);
  }
}

function importSource(lane: Lane, dir: string, source: Source, name: string): Promise<JobOutcome> {
  const input = { format: source.format, path: path.join(dir, source.path), name, options: source.options };
  return lane.runner.run({ dbPath: lane.dbPath, input }, CASE_TIMEOUT_MS);
}

/** A catalog file that already holds a good dataset of each format (the controls accepted cases are compared with). */
async function openLane(n: number): Promise<Lane> {
  const dbPath = path.join(tmp, `catalog-${n}.sqlite`);
  const lane: Lane = { runner: new ImportRunner(workerPath), dbPath, catalog: Catalog.open(dbPath), controls: {} as Record<Format, DatasetView> };
  for (const [format, source] of Object.entries(controls()) as [Format, Source][]) {
    const dir = path.join(tmp, `lane-${n}-control-${format}`);
    writeTree(dir, source.tree);
    const outcome = await importSource(lane, dir, source, `control-${format}`);
    if (outcome.kind !== 'done') throw new Error(`control ${format} did not import: ${JSON.stringify(outcome)}`);
    expect(outcome.warnings).toEqual([]);
    lane.controls[format] = datasetView(lane.catalog.db, outcome.datasetId);
  }
  return lane;
}

/** What world.ts says each control holds, written out independently of any importer. */
function expectedControl(format: Format): DatasetView {
  const userId = (u: number): string => (format === 'generic' ? `u${u}` : String(u));
  const posters = format !== 'microlens';
  const genres = (i: number): string[] =>
    format === 'microlens' ? [] : format === 'movielens-100k' ? [["unknown", 'Action', 'Adventure', 'Animation', "Children's", 'Comedy', 'Crime'][i]] : ['Action', 'Drama'];
  const text = (i: number): string | null => (format === 'movielens-latest' ? `Plot of film ${i}.` : format === 'movielens-100k' ? `Plot ${i}.` : null);
  return {
    users: USERS.map(userId).sort(),
    items: Object.fromEntries(
      ITEMS.map((i) => [
        String(i),
        { title: title(i), genres: genres(i), text: text(i), mime: posters ? (poster(i).endsWith('.jpg') ? 'image/jpeg' : 'image/png') : null }
      ])
    ),
    interactions: USERS.flatMap((u) =>
      ITEMS.map((i) => (format === 'microlens' ? interaction(u, i, null, null) : interaction(userId(u), i, timestamp(u, i), rating(u, i))))
    ).sort()
  };
}

beforeAll(async () => {
  workerPath = await buildImportWorker();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'almostrec-corpus-'));
  lanes.push(...(await Promise.all(Array.from({ length: LANES }, (_, n) => openLane(n)))));
});

afterAll(async () => {
  for (const lane of lanes) {
    await lane.runner.close();
    lane.catalog.close();
  }
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

interface Tally {
  tried: number;
  errors: number;
  warnings: number;
  accepted: number;
  crashes: number;
  changesOnFailure: number;
}

/** Checks one outcome against its case; returns what is wrong (empty when all is right). */
function judge(lane: Lane, c: CorpusCase, dir: string, outcome: JobOutcome): string[] {
  const problems: string[] = [];
  if (outcome.kind === 'crash') return [`crash: ${outcome.reason}`];
  if ('error' in c.expect) {
    const want = c.expect.error;
    if (outcome.kind !== 'error') return [`imported, but should fail with ${want.detail}`];
    const { code, message, details } = outcome.error;
    const where = details as { file?: string; line?: number | null } | undefined;
    const file = path.join(dir, want.file);
    if (code !== 'import_error') problems.push(`error code ${code}, not import_error: ${message}`);
    if (where?.file !== file) problems.push(`names ${where?.file}, not ${file}`);
    if (where?.line !== want.line) problems.push(`names line ${where?.line}, not ${want.line}`);
    if (!message.startsWith(want.line === null ? `${file}: ` : `${file}, line ${want.line}: `)) problems.push(`message does not start with the file and line: ${message}`);
    if (!want.detail.test(message)) problems.push(`message ${JSON.stringify(message)} does not match ${want.detail}`);
    if (message.length > 600) problems.push(`message of ${message.length} characters`);
    return problems;
  }
  if (outcome.kind !== 'done') return [`refused (${outcome.error.message}), should import`];
  const { warnings, view } = c.expect.accepted;
  if (outcome.warnings.length !== warnings.length || !warnings.every((w, i) => w.test(outcome.warnings[i]))) {
    problems.push(`warnings ${JSON.stringify(outcome.warnings)}, expected ${warnings.map(String).join(', ') || 'none'}`);
  }
  const got = datasetView(lane.catalog.db, outcome.datasetId);
  const want = view(lane.controls[c.source.format]);
  if (!isDeepStrictEqual(got, want)) problems.push(`imported content differs:\n  got  ${JSON.stringify(got)}\n  want ${JSON.stringify(want)}`);
  return problems;
}

describe('malformed-input corpus', () => {
  it('the controls import what world.ts wrote', () => {
    for (const lane of lanes) for (const format of Object.keys(lane.controls) as Format[]) expect(lane.controls[format]).toEqual(expectedControl(format));
  });

  it('every bad input ends in a clear error or a right import, never a crash or a changed catalog', async () => {
    const corpus = buildCorpus();
    const tally: Tally = { tried: 0, errors: 0, warnings: 0, accepted: 0, crashes: 0, changesOnFailure: 0 };
    const failures: string[] = [];
    const names = new Set(corpus.map((c) => c.name));
    expect(names.size, 'case names are unique').toBe(corpus.length);
    const runCase = async (lane: Lane, n: number): Promise<void> => {
      const c = corpus[n];
      const dir = path.join(tmp, `case-${n}`);
      writeTree(dir, c.source.tree);
      c.special?.(dir);
      const before = tableChecksums(lane.catalog.db);
      const outcome = await importSource(lane, dir, c.source, `case-${n}`);
      tally.tried++;
      const problems = judge(lane, c, dir, outcome);
      if (outcome.kind === 'crash') tally.crashes++;
      else if (outcome.kind === 'error') tally.errors++;
      else if (outcome.warnings.length > 0) tally.warnings++;
      else tally.accepted++;
      if (outcome.kind !== 'done' && !isDeepStrictEqual(tableChecksums(lane.catalog.db), before)) {
        tally.changesOnFailure++;
        problems.push('the catalog changed although the import failed');
      }
      const integrity = integrityCheck(lane.catalog.db);
      if (integrity !== 'ok') problems.push(`integrity_check: ${integrity}`);
      // An accepted case is checked above; removing it keeps the lane's catalog as the next case expects it.
      if (outcome.kind === 'done') lane.catalog.deleteDataset(outcome.datasetId);
      if (problems.length > 0) failures.push(`#${n} ${c.name}:\n  ${problems.join('\n  ')}`);
      fs.rmSync(dir, { recursive: true, force: true });
    };
    await Promise.all(
      lanes.map(async (lane, l) => {
        for (let n = l; n < corpus.length; n += lanes.length) await runCase(lane, n);
      })
    );
    console.log(
      `import corpus: ${tally.tried} inputs tried, ${tally.errors} errors, ${tally.warnings} warnings, ${tally.accepted} accepted, ` +
        `crashes = ${tally.crashes}, catalog changes on failure = ${tally.changesOnFailure}`
    );
    expect(failures).toEqual([]);
    expect(tally.tried).toBeGreaterThanOrEqual(200);
    expect(tally.crashes).toBe(0);
    expect(tally.changesOnFailure).toBe(0);
    // Deleting what the accepted cases imported left the controls as they were.
    for (const lane of lanes) {
      for (const format of Object.keys(lane.controls) as Format[]) {
        const id = lane.catalog.findDatasetByName(`control-${format}`)!.id;
        expect(datasetView(lane.catalog.db, id)).toEqual(lane.controls[format]);
      }
    }
  });
});
