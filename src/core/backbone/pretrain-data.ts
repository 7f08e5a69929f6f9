// Training sequences for pretraining the compact backbone on a catalog's own items (LLaVA recipe):
//   with a poster:    <s> <image>×g² caption </s>
//   without a poster: <s> caption </s>        (stage 2 only; an item without an image gets no visual tokens)
// Loss is on the caption tokens and </s> only (never on the image tokens (<image>) or <s>), as LLaVA masks the
// image and instruction part. Sequences are cut to maxTokens and right-padded within a batch.
// Stage 0 (language) trains on the text form of every caption. A fixed share of the items is held out: their
// captions never train and measure the loss after each stage.
import { Rng } from '../tensor/rng';

export interface CaptionSample {
  itemId: number;
  /** Caption token ids without <s>/</s>. */
  tokens: number[];
  hasImage: boolean;
}

export interface PretrainBatch {
  /** [batch, length] token ids; image positions hold the image token, padding holds the pad id. */
  inputIds: Int32Array;
  /** [batch, length] 1 for real tokens, 0 for padding. */
  attentionMask: Int32Array;
  /** [batch × length] next-token targets, −1 where no loss applies. */
  labels: Int32Array;
  batch: number;
  length: number;
  /** Item ids whose image tokens fill the image positions, in order of appearance. */
  imageItems: number[];
  /** Tokens that carry a loss. */
  targetCount: number;
}

export interface SequenceSpec {
  bosId: number;
  eosId: number;
  padId: number;
  imageTokenId: number;
  imageTokens: number;
  maxTokens: number;
}

/** The token sequence and its loss mask for one sample (with or without its image). */
export function sampleSequence(s: CaptionSample, withImage: boolean, spec: SequenceSpec): { ids: number[]; lossFrom: number } {
  const head = [spec.bosId, ...(withImage ? new Array<number>(spec.imageTokens).fill(spec.imageTokenId) : [])];
  const room = spec.maxTokens - head.length - 1;
  if (room < 1) throw new Error(`maxTokens ${spec.maxTokens} leaves no room for a caption after ${head.length} leading tokens`);
  const ids = [...head, ...s.tokens.slice(0, room), spec.eosId];
  // Positions ≥ lossFrom predict the next token: the first caption token is predicted from the last head token.
  return { ids, lossFrom: head.length - 1 };
}

export function makeBatch(samples: readonly CaptionSample[], withImage: (s: CaptionSample) => boolean, spec: SequenceSpec): PretrainBatch {
  const seqs = samples.map((s) => {
    const img = withImage(s);
    return { ...sampleSequence(s, img, spec), itemId: s.itemId, img };
  });
  const batch = seqs.length;
  const length = Math.max(...seqs.map((q) => q.ids.length));
  const inputIds = new Int32Array(batch * length).fill(spec.padId);
  const attentionMask = new Int32Array(batch * length);
  const labels = new Int32Array(batch * length).fill(-1);
  const imageItems: number[] = [];
  let targetCount = 0;
  seqs.forEach((q, b) => {
    if (q.img) imageItems.push(q.itemId);
    for (let t = 0; t < q.ids.length; t++) {
      inputIds[b * length + t] = q.ids[t];
      attentionMask[b * length + t] = 1;
      if (t >= q.lossFrom && t + 1 < q.ids.length) {
        labels[b * length + t] = q.ids[t + 1];
        targetCount++;
      }
    }
  });
  return { inputIds, attentionMask, labels, batch, length, imageItems, targetCount };
}

/** The rows of a batch that carry a loss and their next-token targets (what the cross-entropy takes). */
export function lossRows(batch: PretrainBatch): { rows: Int32Array; targets: Int32Array } {
  const rows: number[] = [];
  const targets: number[] = [];
  for (let i = 0; i < batch.labels.length; i++) {
    if (batch.labels[i] >= 0) {
      rows.push(i);
      targets.push(batch.labels[i]);
    }
  }
  return { rows: Int32Array.from(rows), targets: Int32Array.from(targets) };
}

/** Fixed seed of the held-out split: the same items are held out whatever the pretraining seed. */
export const HELD_OUT_SEED = 20240611;

/**
 * The items whose captions are held out of pretraining: `percent`% of them (at least min(32, n/10), so a
 * small dataset still gets a measurable set; never all), chosen by a seeded hash of the item id, so the set
 * depends neither on the order of the items nor on the pretraining seed. Empty for percent 0.
 */
export function heldOutItems(itemIds: readonly number[], percent: number): Set<number> {
  const n = itemIds.length;
  if (percent <= 0 || n < 2) return new Set();
  const count = Math.min(n - 1, Math.max(Math.round((n * percent) / 100), Math.min(32, Math.floor(n / 10))));
  const key = (id: number) => new Rng((Math.imul(HELD_OUT_SEED, 0x9e3779b1) ^ id) >>> 0).nextU32();
  const ranked = itemIds.map((id) => ({ id, k: key(id) })).sort((a, b) => a.k - b.k || a.id - b.id);
  return new Set(ranked.slice(0, count).map((r) => r.id));
}

/**
 * An endless stream of sample indices, reshuffled each pass with a seed derived from (seed, pass), so its
 * whole state is two integers that a checkpoint saves and resume restores exactly.
 */
export class SampleOrder {
  private order: number[] = [];

  constructor(
    private readonly count: number,
    private readonly seed: number,
    public pass = 0,
    public pos = 0
  ) {
    if (count <= 0) throw new Error('no pretraining samples');
    this.shuffle();
  }

  private shuffle(): void {
    this.order = Array.from({ length: this.count }, (_, i) => i);
    new Rng((this.seed * 7919 + this.pass * 104729) >>> 0).shuffle(this.order);
  }

  next(n: number): number[] {
    const out: number[] = [];
    while (out.length < n) {
      if (this.pos >= this.count) {
        this.pass++;
        this.pos = 0;
        this.shuffle();
      }
      out.push(this.order[this.pos++]);
    }
    return out;
  }
}

