// `npm run bench -- <sasrec|popularity> --dataset <name|path> [--epochs E] [--eval-every K] [--patience P]
//  [--max-len L] [--seed S] [--backend B]`
// Imports the dataset into a temporary catalog, trains with the DESIGN §8 hyper-parameters, selects the
// model on validation NDCG@10, evaluates the test split once, and prints as its LAST stdout line one JSON
// object with the figures (a timing breakdown line precedes it). Progress goes to stderr.
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { ImportFormat, Metrics } from '../shared/types';
import type { SequenceData } from '../core/data/types';
import { Catalog } from '../core/catalog';
import { importDataset, resolveEmbeddedDatasetDir } from '../core/importers';
import { evaluate } from '../core/eval';
import { fitPopularity } from '../core/models/popularity';
import { initBackend, type BackendPreference } from '../core/tensor/backend';
import { loadSasrecScorer, trainSasrec } from '../core/train';

const USAGE = 'Usage: bench <sasrec|popularity> --dataset <ml-latest-small|movielens-100k-mm|microlens-50k|PATH> [--epochs E] [--eval-every K] [--patience P] [--max-len L] [--seed S] [--backend auto|tensorflow-gpu|tensorflow|wasm|cpu]';

interface DatasetSource {
  name: string;
  format: ImportFormat;
  path: string;
}

/** Shared datasets live next to the repository (never inside it, for licence reasons). */
function sharedDataset(sub: string): string {
  const candidates = [resolve(process.cwd(), '..', 'shared', 'datasets', sub), resolve(process.cwd(), 'shared', 'datasets', sub)];
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new Error(`dataset folder not found: tried ${candidates.join(', ')}`);
  return found;
}

function detectLayout(dir: string): ImportFormat {
  if (!existsSync(dir)) throw new Error(`dataset path not found: ${dir}`);
  if (statSync(dir).isFile()) return 'generic';
  const files = readdirSync(dir);
  if (files.includes('ratings.csv') && files.includes('movies.csv')) return 'movielens-latest';
  if (files.includes('u.data')) return 'movielens-100k';
  if (files.some((f) => /_pairs\.(tsv|csv)$/i.test(f))) return 'microlens';
  throw new Error(`cannot tell the layout of ${dir} (expected ratings.csv + movies.csv, u.data, or *_pairs.tsv); pass a CSV file for the generic importer`);
}

function resolveDataset(arg: string): DatasetSource {
  if (arg === 'ml-latest-small') {
    let path: string;
    try {
      path = resolveEmbeddedDatasetDir();
    } catch {
      path = sharedDataset('ml-latest-small');
    }
    return { name: arg, format: 'movielens-latest', path };
  }
  if (arg === 'movielens-100k-mm') return { name: arg, format: 'movielens-100k', path: join(sharedDataset('movielens-100k-mm'), 'ml-100k') };
  if (arg === 'microlens-50k') return { name: arg, format: 'microlens', path: sharedDataset('microlens-50k') };
  let path = resolve(arg);
  if (existsSync(join(path, 'ml-100k', 'u.data'))) path = join(path, 'ml-100k');
  return { name: arg, format: detectLayout(path), path };
}

function round(m: Metrics): Metrics {
  const r = (x: number) => Math.round(x * 1e6) / 1e6;
  return { hr10: r(m.hr10), ndcg10: r(m.ndcg10), hr20: r(m.hr20), ndcg20: r(m.ndcg20), mrr: r(m.mrr) };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length === 0 ? 0 : s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

const peakRssMb = () => Math.round(process.resourceUsage().maxRSS / 1024);
const log = (msg: string) => process.stderr.write(msg + '\n');

async function loadData(source: DatasetSource, workDir: string): Promise<SequenceData> {
  const catalog = Catalog.open(join(workDir, 'catalog.db'));
  try {
    const t0 = performance.now();
    const { datasetId, warnings } = await importDataset(catalog, { format: source.format, path: source.path, name: source.name, options: {} });
    const data = catalog.loadSequences(datasetId);
    const interactions = data.users.reduce((a, u) => a + u.items.length, 0);
    log(`imported ${source.path} (${source.format}) in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${data.users.length} users, ${data.numItems} items, ${interactions} interactions, ${warnings.length} warnings`);
    return data;
  } finally {
    catalog.close();
  }
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      dataset: { type: 'string' },
      epochs: { type: 'string' },
      'eval-every': { type: 'string' },
      patience: { type: 'string' },
      'max-len': { type: 'string' },
      seed: { type: 'string' },
      backend: { type: 'string' }
    }
  });
  const model = positionals[0];
  if ((model !== 'sasrec' && model !== 'popularity') || !values.dataset) throw new Error(USAGE);
  const int = (v: string | undefined, name: string): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got "${v}"`);
    return n;
  };
  const source = resolveDataset(values.dataset);
  const backend = await initBackend((values.backend ?? 'auto') as BackendPreference);
  log(`backend: ${backend.name} (${backend.device}, ${backend.threads} thread(s))`);
  const workDir = mkdtempSync(join(tmpdir(), 'almostrec-bench-'));
  try {
    const data = await loadData(source, workDir);
    if (model === 'popularity') {
      const pop = fitPopularity(data);
      const valid = await evaluate(pop, data, 'valid');
      const test = await evaluate(pop, data, 'test');
      console.log(JSON.stringify({ dataset: source.name, model, backend: backend.name, epochs: 0, sec_per_epoch: 0, peak_rss_mb: peakRssMb(), valid: round(valid.metrics), test: round(test.metrics) }));
      return;
    }
    // DESIGN §8 hyper-parameters (the schema's defaults), evaluated every 10 epochs like the reference.
    const config = {
      epochs: int(values.epochs, 'epochs') ?? 200,
      evalEvery: int(values['eval-every'], 'eval-every') ?? 10,
      patience: int(values.patience, 'patience') ?? 5,
      maxLen: int(values['max-len'], 'max-len') ?? 200,
      seed: values.seed === undefined ? 42 : Number(values.seed)
    };
    log(`config: ${JSON.stringify(config)}`);
    let lastLog = 0;
    const result = await trainSasrec(data, config, {
      checkpointDir: join(workDir, 'checkpoints'),
      onProgress: (p) => {
        const now = performance.now();
        if (p.phase === 'train' && now - lastLog > 5000) {
          lastLog = now;
          const m = p.metrics!;
          log(`step ${p.done}/${p.total} epoch ${m.epoch} loss ${m.loss.toFixed(4)} eta ${Math.round(m.etaSeconds)} s`);
        }
      },
      onEpoch: (rec, valid) => log(`epoch ${rec.epoch} loss ${rec.loss.toFixed(4)} ${rec.seconds.toFixed(2)} s${valid ? ` valid ndcg@10 ${valid.ndcg10.toFixed(4)} hr@10 ${valid.hr10.toFixed(4)}` : ''}`)
    });
    const scorer = await loadSasrecScorer(result.checkpointPath, data);
    const test = await evaluate(scorer, data, 'test');
    scorer.dispose();
    const t = result.timing;
    const epochsRun = result.history.length;
    console.log(
      `breakdown (s/epoch): forward ${(t.forward / epochsRun).toFixed(3)} backward ${(t.backward / epochsRun).toFixed(3)} optimizer ${(t.optimizer / epochsRun).toFixed(3)} data ${(t.data / epochsRun).toFixed(3)}; best epoch ${result.bestEpoch}${result.stoppedEarly ? ' (stopped early)' : ''}`
    );
    console.log(
      JSON.stringify({
        dataset: source.name,
        model,
        backend: backend.name,
        epochs: epochsRun,
        sec_per_epoch: Math.round(median(result.history.map((h) => h.seconds)) * 1000) / 1000,
        peak_rss_mb: peakRssMb(),
        valid: round(result.valid),
        test: round(test.metrics)
      })
    );
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
