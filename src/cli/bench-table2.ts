// `npm run bench -- table2 --dataset D [--catalog FILE] [--sasrec-epochs E] [--gru4rec-epochs E]
//  [--almostrec-epochs E] [--param key=value …]`: the paper's Table 2 end to end, the way an analyst gets it
// from the app — import, popularity, SASRec, GRU4Rec, a compact backbone pretrained on the dataset, then
// ALMOSTREC on that backbone with SASRec's item embeddings as M — each step an `almostrec` CLI process on one
// catalog (the same job code the app's workers run). SASRec → GRU4Rec (on one thread) and the backbone's
// pretraining run side by side on the two cores; ALMOSTREC follows once both are done, on both.
// Prints one JSON line per model (popularity, sasrec, gru4rec, almostrec) with "wall_sec", then
// {"table2_wall_sec": …}. Model selection is on validation only; test is read once per run (DESIGN §4).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { RunDetail } from '../shared/types';
import { Catalog } from '../core/catalog';
import { runCli, throttledLog } from './bench-cli';
import { ensureDataset, resolveDataset } from './bench-data';
import { median, roundMetrics } from './bench-stats';

const log = (msg: string) => process.stderr.write(msg + '\n');

export interface Table2Options {
  dataset: string;
  catalog?: string;
  sasrecEpochs: number;
  gru4recEpochs: number;
  /** ALMOSTREC's epochs; undefined: the model catalogue's default. */
  almostrecEpochs?: number;
  /** Extra ALMOSTREC hyper-parameters (key=value). */
  almostrecParams: string[];
  /** Extra pretraining hyper-parameters (key=value). */
  pretrainParams: string[];
}

export interface Child {
  json: Record<string, unknown>;
  seconds: number;
}

/** Runs the built CLI with `args` (JSON mode) and resolves with its last stdout line parsed. */
export async function cli(db: string, label: string, args: string[], env: Record<string, string> = {}): Promise<Child> {
  const r = await runCli(db, args, throttledLog((line) => log(`[${label}] ${line}`)), env);
  if (r.code !== 0) throw new Error(`${label} failed (exit ${r.code}): ${r.lastErr}`);
  const last = r.lines.at(-1) ?? '';
  try {
    return { json: JSON.parse(last) as Record<string, unknown>, seconds: r.seconds };
  } catch {
    throw new Error(`${label}: no JSON result on stdout (${last.slice(0, 200)})`);
  }
}

export function runLine(dataset: string, run: RunDetail, wall: number, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    dataset,
    model: run.model,
    backend: run.backend?.name ?? null,
    epochs: run.history.length,
    sec_per_epoch: Math.round(median(run.history.map((h) => h.seconds)) * 1000) / 1000,
    // Each model trains in its own CLI process; Node reports no child's peak RSS.
    peak_rss_mb: null,
    valid: run.valid && roundMetrics(run.valid),
    test: run.test && roundMetrics(run.test),
    wall_sec: Math.round(wall),
    ...extra
  });
}

const flagsOf = (params: string[]) => params.flatMap((p) => ['--param', p]);

export async function benchTable2(o: Table2Options): Promise<void> {
  const started = performance.now();
  const source = resolveDataset(o.dataset);
  const workDir = mkdtempSync(join(tmpdir(), 'almostrec-bench-table2-'));
  const db = o.catalog ? resolve(o.catalog) : join(workDir, 'catalog.db');
  try {
    const t0 = performance.now();
    const catalog = Catalog.open(db);
    try {
      await ensureDataset(catalog, source);
    } finally {
      catalog.close();
    }
    log(`${source.name}: ready in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    const ds = ['--dataset', source.name];
    const runOf = (c: Child) => Number(c.json.id);
    const pop = await cli(db, 'popularity', ['train', 'popularity', ...ds]);
    const seqSettings = ['--eval-every', '5', '--patience', '3'];
    // One core for SASRec → GRU4Rec; the pretraining beside them takes the rest (its LM head's onnxruntime
    // pool gets both cores, so it speeds up once they are done). Two-thread runs on both sides would
    // oversubscribe the cores, and onnxruntime's spinning pool threads then starve the other process.
    const oneCore = { ALMOSTREC_THREADS: '1' };
    const sequential = (async () => {
      const sasrec = await cli(db, 'sasrec', ['train', 'sasrec', ...ds, '--epochs', String(o.sasrecEpochs), ...seqSettings], oneCore);
      const gru4rec = await cli(db, 'gru4rec', ['train', 'gru4rec', ...ds, '--epochs', String(o.gru4recEpochs), ...seqSettings], oneCore);
      return { sasrec, gru4rec };
    })();
    const name = `bench-compact-${Date.now()}`;
    const backbone = cli(db, 'pretrain', ['pretrain', ...ds, '--name', name, ...flagsOf(o.pretrainParams)]);
    const [{ sasrec, gru4rec }, pre] = await Promise.all([sequential, backbone]);
    const backboneId = Number(pre.json.id);
    const almostrec = await cli(db, 'almostrec', [
      'train',
      'almostrec',
      ...ds,
      ...(o.almostrecEpochs === undefined ? [] : ['--epochs', String(o.almostrecEpochs)]),
      '--param',
      `backboneId=${backboneId}`,
      '--param',
      `seqRunId=${runOf(sasrec)}`,
      ...flagsOf(o.almostrecParams)
    ]);
    const catalog2 = Catalog.open(db);
    try {
      const get = (c: Child) => {
        const run = catalog2.getRun(runOf(c));
        if (!run) throw new Error(`run ${runOf(c)} is not in the catalog`);
        if (run.status !== 'succeeded') throw new Error(`run ${run.id} (${run.model}) ended ${run.status}: ${run.error ?? ''}`);
        return run;
      };
      const b = catalog2.getBackbone(backboneId)!;
      const lastLoss = b.history.length ? b.history[b.history.length - 1].loss : null;
      console.log(runLine(source.name, get(pop), pop.seconds));
      console.log(runLine(source.name, get(sasrec), sasrec.seconds));
      console.log(runLine(source.name, get(gru4rec), gru4rec.seconds));
      console.log(
        runLine(source.name, get(almostrec), almostrec.seconds, {
          backbone: { id: backboneId, architecture: b.architecture, pretrain_wall_sec: Math.round(pre.seconds), steps: b.history.length, final_loss: lastLoss },
          seq_run: runOf(sasrec)
        })
      );
    } finally {
      catalog2.close();
    }
    console.log(JSON.stringify({ table2_wall_sec: Math.round((performance.now() - started) / 1000) }));
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}
