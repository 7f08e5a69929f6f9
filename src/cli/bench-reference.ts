// The PyTorch SASRec reference (shared/reference/sasrec_ref.py) run beside our SASRec by `bench sasrec
// --reference`: the same data, hyper-parameters, epochs and seed on the same machine, one after the other
// (never at once: timings), so the speed ratio and the validation curves compare like for like.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { sharedPath } from './bench-data';
import { median, round, roundMetrics } from './bench-stats';

export const INSTALL_HINT = 'apt-get install -y python3-torch libopenblas0-pthread';

/** Threads for PyTorch: both cores of the 2-core benchmark machines, as our training uses (computeThreads). */
export const REFERENCE_THREADS = 2;

export interface RefMetrics {
  hr10: number;
  ndcg10: number;
  hr20: number;
  ndcg20: number;
}

export interface ReferenceResult {
  secPerEpoch: number;
  /** Validation at the epochs the script evaluated (every 10th and the last). */
  validCurve: { epoch: number; metrics: RefMetrics }[];
  bestEpoch: number;
  valid: RefMetrics;
  test: RefMetrics;
}

export interface CurvePoint {
  epoch: number;
  ndcg10: number;
}

// ---- parsing the script's stdout -------------------------------------------------------------------

const NUMBER = String.raw`-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf|-inf`;
const DICT_KEYS: [string, keyof RefMetrics][] = [
  ['HR10', 'hr10'],
  ['NDCG10', 'ndcg10'],
  ['HR20', 'hr20'],
  ['NDCG20', 'ndcg20']
];

/** A Python dict repr such as `{'HR10': 0.0442, 'NDCG10': 0.0222, …}`; every key must be a finite number. */
function parseMetricsDict(text: string, where: string): RefMetrics {
  const found = new Map<string, number>();
  for (const m of text.matchAll(new RegExp(String.raw`'(\w+)':\s*(${NUMBER})`, 'g'))) found.set(m[1], Number(m[2]));
  const out = {} as RefMetrics;
  for (const [py, ours] of DICT_KEYS) {
    const v = found.get(py);
    if (v === undefined || !Number.isFinite(v)) throw new Error(`reference output: ${where} has no finite ${py} (got ${text})`);
    out[ours] = v;
  }
  return out;
}

const EPOCH_LINE = /^epoch (\d+) loss (\S+) sec\/epoch (\S+) valid (\{.*\})$/;
const SEC_LINE = new RegExp(String.raw`^train_sec_per_epoch=(${NUMBER})$`);
const BEST_LINE = /^best_epoch=(\d+) valid=(\{[^}]*\}) test=(\{[^}]*\})$/;

/**
 * sasrec_ref.py's stdout: `epoch E loss … sec/epoch … valid {…}` at each validation (every 10th epoch and
 * the last; it prints nothing for the others), then `train_sec_per_epoch=S` and `best_epoch=E valid={…}
 * test={…}`. Other lines (`users=…`, warnings) are ignored; a missing or malformed figure is an error naming it.
 */
export function parseReferenceOutput(stdout: string): ReferenceResult {
  const validCurve: ReferenceResult['validCurve'] = [];
  let secPerEpoch: number | null = null;
  let best: Pick<ReferenceResult, 'bestEpoch' | 'valid' | 'test'> | null = null;
  for (const raw of stdout.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('epoch ')) {
      const m = EPOCH_LINE.exec(line);
      if (!m) throw new Error(`reference output: malformed epoch line "${line}" (expected "epoch E loss L sec/epoch S valid {…}")`);
      validCurve.push({ epoch: Number(m[1]), metrics: parseMetricsDict(m[4], `epoch ${m[1]} validation`) });
    } else if (line.startsWith('train_sec_per_epoch=')) {
      const m = SEC_LINE.exec(line);
      const v = m ? Number(m[1]) : NaN;
      if (!(v > 0 && Number.isFinite(v))) throw new Error(`reference output: malformed "${line}" (expected a positive number of seconds)`);
      secPerEpoch = v;
    } else if (line.startsWith('best_epoch=')) {
      const m = BEST_LINE.exec(line);
      if (!m) throw new Error(`reference output: malformed "${line}" (expected "best_epoch=E valid={…} test={…}")`);
      best = { bestEpoch: Number(m[1]), valid: parseMetricsDict(m[2], 'best valid'), test: parseMetricsDict(m[3], 'best test') };
    }
  }
  const missing = [secPerEpoch === null && 'train_sec_per_epoch=', best === null && 'best_epoch=', validCurve.length === 0 && 'epoch … valid'].filter(Boolean);
  if (missing.length) throw new Error(`reference output lacks the ${missing.map((s) => `"${s}"`).join(', ')} line(s); did the script finish?`);
  return { secPerEpoch: secPerEpoch!, validCurve, ...best! };
}

// ---- the printed figures ---------------------------------------------------------------------------


/** The reference's JSON line. */
export function referenceJson(r: ReferenceResult): Record<string, unknown> {
  return {
    reference: 'pytorch',
    sec_per_epoch: r.secPerEpoch,
    best_epoch: r.bestEpoch,
    valid_curve: r.validCurve.map((p) => ({ epoch: p.epoch, ndcg10: round(p.metrics.ndcg10, 6) })),
    valid: roundMetrics(r.valid),
    test: roundMetrics(r.test)
  };
}

/** Per epoch, the median over repetitions (a seeded run repeats its curve; this only guards against drift). */
function medianCurve(curves: readonly (readonly CurvePoint[])[]): Map<number, number> {
  const byEpoch = new Map<number, number[]>();
  for (const c of curves) for (const p of c) byEpoch.set(p.epoch, [...(byEpoch.get(p.epoch) ?? []), p.ndcg10]);
  return new Map([...byEpoch].map(([e, v]) => [e, median(v)]));
}

export interface OurRun {
  secPerEpoch: number;
  curve: CurvePoint[];
}

/**
 * The final summary over `repeat` alternating pairs (ours, reference): medians of each side's sec/epoch, the
 * median of the pairs' ratios, and validation NDCG@10 at the epochs where both validated.
 */
export function compareWithReference(model: string, dataset: string, ours: readonly OurRun[], refs: readonly ReferenceResult[]): Record<string, unknown> {
  if (ours.length === 0 || ours.length !== refs.length) throw new Error(`compareWithReference: ${ours.length} runs of ours against ${refs.length} of the reference`);
  const ratios = ours.map((o, i) => o.secPerEpoch / refs[i].secPerEpoch);
  const oursCurve = medianCurve(ours.map((o) => o.curve));
  const refCurve = medianCurve(refs.map((r) => r.validCurve.map((p) => ({ epoch: p.epoch, ndcg10: p.metrics.ndcg10 }))));
  const epochs = [...oursCurve.keys()].filter((e) => refCurve.has(e)).sort((a, b) => a - b);
  return {
    model,
    dataset,
    sec_per_epoch: round(median(ours.map((o) => o.secPerEpoch)), 3),
    reference_sec_per_epoch: round(median(refs.map((r) => r.secPerEpoch)), 4),
    ratio: round(median(ratios), 3),
    repeat: ours.length,
    ratios: ratios.map((r) => round(r, 3)),
    valid_ndcg10_curve: epochs.map((epoch) => {
      const o = oursCurve.get(epoch)!;
      const r = refCurve.get(epoch)!;
      return { epoch, ours: round(o, 6), reference: round(r, 6), rel_diff: r > 0 ? round((o - r) / r, 3) : null };
    })
  };
}

// ---- finding and running the script ----------------------------------------------------------------

export interface ReferenceCommand {
  python: string;
  script: string;
  args: string[];
}

/** Hyper-parameters handed to the script, from our parsed SASRec config (so both train the same model). */
export interface ReferenceSettings {
  epochs: number;
  maxLen: number;
  seed: number;
  hiddenSize: number;
  numBlocks: number;
  numHeads: number;
  dropout: number;
  batchSize: number;
  learningRate: number;
}

/** ALMOSTREC_REFERENCE_PYTHON, else Debian's python3.11 (where python3-torch lives), else python3 on PATH. */
export function referencePython(env: NodeJS.ProcessEnv = process.env, exists: (p: string) => boolean = existsSync): string {
  if (env.ALMOSTREC_REFERENCE_PYTHON) return env.ALMOSTREC_REFERENCE_PYTHON;
  return exists('/usr/bin/python3.11') ? '/usr/bin/python3.11' : 'python3';
}

/** `--reference-script PATH`, else shared/reference next to the repository (like the shared datasets). */
export function referenceScript(given: string | undefined, cwd: string = process.cwd()): string {
  if (given) {
    const p = resolve(cwd, given);
    if (!existsSync(p)) throw new Error(`reference script not found: ${p}`);
    return p;
  }
  return sharedPath(['reference', 'sasrec_ref.py'], cwd, 'reference script sasrec_ref.py', '; pass --reference-script PATH');
}

/** The script's CSV flags for a benchmark dataset (`datasetPath` as resolveDataset found it). */
export function referenceData(datasetName: string, datasetPath: string): string[] {
  let csv: string;
  let cols: [string, string, string];
  if (datasetName === 'ml-latest-small') {
    csv = join(datasetPath, 'ratings.csv');
    cols = ['userId', 'movieId', 'timestamp'];
  } else if (datasetName === 'movielens-100k-mm') {
    // resolveDataset points at the ml-100k/ folder; the flat interactions.csv lies beside it.
    csv = join(dirname(datasetPath), 'interactions.csv');
    cols = ['user_id', 'item_id', 'timestamp'];
  } else {
    throw new Error(`--reference supports the datasets ml-latest-small and movielens-100k-mm, not "${datasetName}"`);
  }
  if (!existsSync(csv)) throw new Error(`reference input for ${datasetName} not found: ${csv}`);
  return ['--csv', csv, '--user', cols[0], '--item', cols[1], '--time', cols[2]];
}

export function referenceArgs(s: ReferenceSettings): string[] {
  const flags: [string, number][] = [
    ['--epochs', s.epochs],
    ['--threads', REFERENCE_THREADS],
    ['--L', s.maxLen],
    ['--seed', s.seed],
    ['--d', s.hiddenSize],
    ['--blocks', s.numBlocks],
    ['--heads', s.numHeads],
    ['--drop', s.dropout],
    ['--batch', s.batchSize],
    ['--lr', s.learningRate]
  ];
  return flags.flatMap(([f, v]) => [f, String(v)]);
}

/** Fails early (before our own run) when the interpreter or its torch/numpy is missing. */
export function checkPython(python: string): void {
  const r = spawnSync(python, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
  if (r.error) {
    const why = (r.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : r.error.message;
    throw new Error(`reference Python "${python}" ${why}; set ALMOSTREC_REFERENCE_PYTHON, or install Python with PyTorch: ${INSTALL_HINT}`);
  }
  if (r.status !== 0) {
    const last = (r.stderr || '').trim().split('\n').pop() || `exit status ${r.status}`;
    throw new Error(`reference Python "${python}" cannot import torch/numpy (${last}); install them: ${INSTALL_HINT}, or set ALMOSTREC_REFERENCE_PYTHON to a Python that has them`);
  }
}

export function referenceCommand(opts: { datasetName: string; datasetPath: string; script?: string; settings: ReferenceSettings }): ReferenceCommand {
  const script = referenceScript(opts.script);
  const args = [...referenceData(opts.datasetName, opts.datasetPath), ...referenceArgs(opts.settings)];
  const python = referencePython();
  checkPython(python);
  return { python, script, args };
}

/** Runs the script to completion, streaming its output to `log` as it comes, and parses its figures. */
export async function runReference(cmd: ReferenceCommand, log: (line: string) => void): Promise<ReferenceResult> {
  log(`reference: ${cmd.python} ${cmd.script} ${cmd.args.join(' ')}`);
  const child = spawn(cmd.python, [cmd.script, ...cmd.args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PYTHONUNBUFFERED: '1' } });
  const stdout: string[] = [];
  const stderrTail: string[] = [];
  createInterface({ input: child.stdout }).on('line', (l) => {
    stdout.push(l);
    log(`reference: ${l}`);
  });
  createInterface({ input: child.stderr }).on('line', (l) => {
    stderrTail.push(l);
    if (stderrTail.length > 20) stderrTail.shift();
    log(`reference: ${l}`);
  });
  const code = await new Promise<number | null>((res, rej) => {
    child.on('error', rej);
    child.on('close', (c) => res(c));
  });
  if (code !== 0) throw new Error(`reference script exited with status ${code}${stderrTail.length ? `: ${stderrTail.slice(-5).join(' | ')}` : ''}`);
  return parseReferenceOutput(stdout.join('\n'));
}
