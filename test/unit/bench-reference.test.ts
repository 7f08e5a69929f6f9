import { describe, expect, it } from 'vitest';
import { compareWithReference, parseReferenceOutput, referenceArgs, referenceData, referenceJson, referencePython, type ReferenceResult } from '../../src/cli/bench-reference';

// sasrec_ref.py's stdout as it prints it (Python dict reprs, full float precision), 20 epochs.
const REAL = `users=610 items=3650 interactions=90274
epoch 10 loss 36.819 sec/epoch 5.580 valid {'HR10': 0.04426229508196721, 'NDCG10': 0.022154961748251795, 'HR20': 0.06229508196721312, 'NDCG20': 0.026836016578400214}
epoch 20 loss 31.207 sec/epoch 5.612 valid {'HR10': 0.05409836065573771, 'NDCG10': 0.02716327474117184, 'HR20': 0.08360655737704918, 'NDCG20': 0.0345867453421958}
train_sec_per_epoch=5.6120
best_epoch=20 valid={'HR10': 0.05409836065573771, 'NDCG10': 0.02716327474117184, 'HR20': 0.08360655737704918, 'NDCG20': 0.0345867453421958} test={'HR10': 0.04918032786885246, 'NDCG10': 0.0251, 'HR20': 0.0721311475409836, 'NDCG20': 1e-05}
`;

// Verbatim from a real `--epochs 1` run (validation at the last epoch).
const REAL_ONE_EPOCH = `users=610 items=3650 interactions=90274
epoch 1 loss 41.048 sec/epoch 13.751 valid {'HR10': 0.001639344262295082, 'NDCG10': 0.000493491819647492, 'HR20': 0.004918032786885246, 'NDCG20': 0.0012804744673556969}
train_sec_per_epoch=13.7511
best_epoch=1 valid={'HR10': 0.001639344262295082, 'NDCG10': 0.000493491819647492, 'HR20': 0.004918032786885246, 'NDCG20': 0.0012804744673556969} test={'HR10': 0.006557377049180328, 'NDCG10': 0.0022580710590862836, 'HR20': 0.00819672131147541, 'NDCG20': 0.002667907124660054}
`;

describe('parseReferenceOutput', () => {
  it('reads a real one-epoch run', () => {
    const r = parseReferenceOutput(REAL_ONE_EPOCH);
    expect(r).toMatchObject({ secPerEpoch: 13.7511, bestEpoch: 1, validCurve: [{ epoch: 1, metrics: { ndcg10: 0.000493491819647492 } }] });
    expect(r.test).toEqual({ hr10: 0.006557377049180328, ndcg10: 0.0022580710590862836, hr20: 0.00819672131147541, ndcg20: 0.002667907124660054 });
  });

  it('reads the validation curve, seconds per epoch and the best epoch', () => {
    const r = parseReferenceOutput(REAL);
    expect(r.secPerEpoch).toBe(5.612);
    expect(r.validCurve.map((p) => [p.epoch, p.metrics.ndcg10])).toEqual([
      [10, 0.022154961748251795],
      [20, 0.02716327474117184]
    ]);
    expect(r.bestEpoch).toBe(20);
    expect(r.valid).toEqual({ hr10: 0.05409836065573771, ndcg10: 0.02716327474117184, hr20: 0.08360655737704918, ndcg20: 0.0345867453421958 });
    expect(r.test.ndcg20).toBe(1e-5);
    expect(referenceJson(r)).toMatchObject({ reference: 'pytorch', sec_per_epoch: 5.612, best_epoch: 20, valid_curve: [{ epoch: 10, ndcg10: 0.022155 }, { epoch: 20, ndcg10: 0.027163 }] });
  });

  it('tolerates CRLF line ends and unrelated lines (warnings on stdout)', () => {
    expect(parseReferenceOutput(`UserWarning: something\r\n${REAL.replace(/\n/g, '\r\n')}`).bestEpoch).toBe(20);
  });

  it('names the missing summary lines of an unfinished run', () => {
    const cut = REAL.split('\n').slice(0, 3).join('\n');
    expect(() => parseReferenceOutput(cut)).toThrow(/"train_sec_per_epoch=", "best_epoch=".*did the script finish/);
    expect(() => parseReferenceOutput('')).toThrow(/"epoch … valid"/);
  });

  it('names a metric missing from a dict', () => {
    const noNdcg = REAL.replace("'NDCG10': 0.022154961748251795, ", '');
    expect(() => parseReferenceOutput(noNdcg)).toThrow(/epoch 10 validation has no finite NDCG10/);
    expect(() => parseReferenceOutput(REAL.replace("'HR20': 0.0721311475409836", "'HR20': nan"))).toThrow(/best test has no finite HR20/);
  });

  it('rejects malformed epoch, seconds and best lines', () => {
    expect(() => parseReferenceOutput(REAL.replace('sec/epoch 5.580 ', ''))).toThrow(/malformed epoch line "epoch 10 loss 36.819 valid/);
    expect(() => parseReferenceOutput(REAL.replace('train_sec_per_epoch=5.6120', 'train_sec_per_epoch=abc'))).toThrow(/malformed "train_sec_per_epoch=abc"/);
    expect(() => parseReferenceOutput(REAL.replace(/ test=\{.*\}/, ''))).toThrow(/malformed "best_epoch=20 valid=/);
  });
});

const ref = (sec: number, curve: [number, number][]): ReferenceResult => {
  const m = (ndcg10: number) => ({ hr10: 0, ndcg10, hr20: 0, ndcg20: 0 });
  return { secPerEpoch: sec, validCurve: curve.map(([epoch, n]) => ({ epoch, metrics: m(n) })), bestEpoch: curve[curve.length - 1][0], valid: m(0), test: m(0) };
};

describe('compareWithReference', () => {
  it('reports the ratio and NDCG@10 where both validated', () => {
    const out = compareWithReference('sasrec', 'ml-latest-small', [{ secPerEpoch: 11.2, curve: [{ epoch: 5, ndcg10: 0.01 }, { epoch: 10, ndcg10: 0.022 }, { epoch: 20, ndcg10: 0.03 }] }], [ref(5.6, [[10, 0.02], [20, 0.03], [30, 0.04]])]);
    expect(out).toEqual({
      model: 'sasrec',
      dataset: 'ml-latest-small',
      sec_per_epoch: 11.2,
      reference_sec_per_epoch: 5.6,
      ratio: 2,
      repeat: 1,
      ratios: [2],
      valid_ndcg10_curve: [
        { epoch: 10, ours: 0.022, reference: 0.02, rel_diff: 0.1 },
        { epoch: 20, ours: 0.03, reference: 0.03, rel_diff: 0 }
      ]
    });
  });

  it('takes medians over repetitions, the ratio as the median of the pairs', () => {
    const ours = [3, 2, 10].map((s) => ({ secPerEpoch: s, curve: [{ epoch: 10, ndcg10: s / 100 }] }));
    const refs = [1, 2, 1].map((s) => ref(s, [[10, 0.05]]));
    const out = compareWithReference('sasrec', 'd', ours, refs);
    expect(out).toMatchObject({ sec_per_epoch: 3, reference_sec_per_epoch: 1, ratio: 3, repeat: 3, ratios: [3, 1, 10], valid_ndcg10_curve: [{ epoch: 10, ours: 0.03, reference: 0.05, rel_diff: -0.4 }] });
    expect(() => compareWithReference('sasrec', 'd', ours, refs.slice(1))).toThrow(/3 runs of ours against 2/);
  });
});

describe('reference command', () => {
  it('picks the Python from the environment, then python3.11, then python3', () => {
    expect(referencePython({ ALMOSTREC_REFERENCE_PYTHON: '/opt/py' }, () => true)).toBe('/opt/py');
    expect(referencePython({}, () => true)).toBe('/usr/bin/python3.11');
    expect(referencePython({}, () => false)).toBe('python3');
  });

  it('passes the script its flag names', () => {
    const args = referenceArgs({ epochs: 3, maxLen: 50, seed: 7, hiddenSize: 64, numBlocks: 2, numHeads: 1, dropout: 0.2, batchSize: 128, learningRate: 0.001 });
    expect(args.join(' ')).toBe('--epochs 3 --threads 2 --L 50 --seed 7 --d 64 --blocks 2 --heads 1 --drop 0.2 --batch 128 --lr 0.001');
  });

  it('refuses datasets it has no CSV mapping for, and missing files', () => {
    expect(() => referenceData('microlens-50k', '/x')).toThrow(/ml-latest-small and movielens-100k-mm, not "microlens-50k"/);
    expect(() => referenceData('ml-latest-small', '/nonexistent-dir')).toThrow(/reference input for ml-latest-small not found: \/nonexistent-dir\/ratings.csv/);
    expect(referenceData('ml-latest-small', 'resources/datasets/ml-latest-small')).toEqual(['--csv', 'resources/datasets/ml-latest-small/ratings.csv', '--user', 'userId', '--item', 'movieId', '--time', 'timestamp']);
  });
});
