// ALMOSTREC's input sequence (DESIGN §5, eq. 1) as a list of pieces, before any embedding: text tokens (the
// prompt T), an item's visual tokens (V) and an item's ID token (S = W^B · M(item)); and a batch of them laid
// out, right-padded, as rows of one embedding table. Pure, so the layout and the ablation switches are
// testable without a backbone.
//
//   concat (layout 0):       <s> V(i1) … V(iL)  task t(i1) ; t(i2) ; … ; t(iL)  S(i1) … S(iL)
//   interleaved (layout 1):  <s> task  V(i1) t(i1) S(i1)  V(i2) t(i2) S(i2) …  V(iL) t(iL) S(iL)
//
// The sequence always starts with the tokenizer's BOS (the backbone was pretrained on <s>-led sequences; it
// is a start marker, not part of the prompt), so useText = 0 leaves <s> V S. The last piece is the newest
// item's ID token: its final hidden state is F. Items without an image have no V; only the `promptTitles`
// newest items have a title t.
import { splitTitle } from '../backbone/captions';
import { IMAGE_TOKEN, type TextTokenizer } from '../backbone/tokenizer';

/**
 * The prompt's fixed text (the task, then the history's titles follow). Worded for any item kind (movies,
 * micro-videos) and kept constant so that runs are comparable.
 */
export const PROMPT_TASK = 'Given the items a user interacted with, in order, predict the next one. History:';
/** Between two titles of the concat layout (the interleaved layout's ID tokens already separate items). */
export const TITLE_SEPARATOR = ';';

export type Piece = { kind: 'text'; token: number } | { kind: 'image'; item: number; index: number } | { kind: 'id'; item: number };

/** The token ids a prompt is made of (titles already cut to maxTitleTokens). */
export interface PromptTokens {
  /** null when the tokenizer has no BOS. */
  bos: number | null;
  task: number[];
  separator: number[];
  /** Per item index. */
  titles: number[][];
}

export interface LayoutOptions {
  interleaved: boolean;
  useImages: boolean;
  useText: boolean;
  /** Titles listed: those of the newest `promptTitles` history items (0: none, the task sentence alone). */
  promptTitles: number;
  /** Visual tokens of an item (0: no image). */
  imageTokens: (item: number) => number;
}

/**
 * A title as the prompt shows it: the name without the trailing year ("Matrix, The (1999)" → "The Matrix")
 * — the year would take most of a short token budget — with no literal <image> token left in it.
 */
export function titleText(title: string): string {
  return splitTitle(title.split(IMAGE_TOKEN).join(' ')).name;
}

/** Token ids of each title (no BOS), uncut; index 0 (padding) and empty titles get none. */
export function tokenizeTitles(tokenizer: TextTokenizer, titles: readonly string[]): number[][] {
  return titles.map((t, i) => {
    const text = i === 0 ? '' : titleText(t);
    return text === '' ? [] : tokenizer.encode(text, { addBos: false });
  });
}

/** The prompt's tokens for a tokenizer, each title cut to `maxTitleTokens`; `task` is the instruction (E4SRec words its own). */
export function promptTokens(tokenizer: TextTokenizer, titleTokens: readonly number[][], maxTitleTokens: number, task = PROMPT_TASK): PromptTokens {
  return {
    bos: tokenizer.bosId >= 0 ? tokenizer.bosId : null,
    task: tokenizer.encode(task, { addBos: false }),
    separator: tokenizer.encode(TITLE_SEPARATOR, { addBos: false }),
    titles: titleTokens.map((t) => t.slice(0, maxTitleTokens))
  };
}

/**
 * The tokens every sample's input starts with, whatever its history: <s>, and in the interleaved layout with
 * text the task sentence (the concat layout puts the images first). The model encodes them once per batch
 * (a shared prefix K/V) instead of once per row.
 */
export function sharedPrefix(tokens: PromptTokens, opts: Pick<LayoutOptions, 'interleaved' | 'useText'>): number[] {
  return [...(tokens.bos !== null ? [tokens.bos] : []), ...(opts.interleaved && opts.useText ? tokens.task : [])];
}

/** The pieces of one sample's input for `history` (its last L items, oldest first). */
export function sequencePieces(history: ArrayLike<number>, tokens: PromptTokens, opts: LayoutOptions): Piece[] {
  const out: Piece[] = [];
  const text = (ids: readonly number[]): void => {
    for (const token of ids) out.push({ kind: 'text', token });
  };
  const image = (item: number): void => {
    if (!opts.useImages) return;
    const n = opts.imageTokens(item);
    for (let index = 0; index < n; index++) out.push({ kind: 'image', item, index });
  };
  const n = history.length;
  const titledFrom = n - Math.min(n, Math.max(0, opts.promptTitles));
  if (tokens.bos !== null) out.push({ kind: 'text', token: tokens.bos });
  if (opts.interleaved) {
    if (opts.useText) text(tokens.task);
    for (let i = 0; i < n; i++) {
      image(history[i]);
      if (opts.useText && i >= titledFrom) text(tokens.titles[history[i]]);
      out.push({ kind: 'id', item: history[i] });
    }
    return out;
  }
  for (let i = 0; i < n; i++) image(history[i]);
  if (opts.useText) {
    text(tokens.task);
    for (let i = titledFrom; i < n; i++) {
      if (i > titledFrom) text(tokens.separator);
      text(tokens.titles[history[i]]);
    }
  }
  for (let i = 0; i < n; i++) out.push({ kind: 'id', item: history[i] });
  return out;
}

/** One batch laid out for the backbone: which embedding row each position takes, and the attention mask. */
export interface BatchLayout {
  batch: number;
  length: number;
  textIds: number[];
  /** Rows of the visual-token matrix. */
  imageRows: number[];
  /** Item indices whose ID token is needed. */
  idItems: number[];
  /** [batch · length]: 0 = padding, else 1 + index into [text; image; id] rows. */
  rows: Int32Array;
  mask: number[][];
}

/** Right-padded layout of each sample's pieces; `imageRow(item, index)` is a visual token's matrix row. */
export function layoutBatch(samples: readonly Piece[][], imageRow: (item: number, index: number) => number): BatchLayout {
  const batch = samples.length;
  const length = Math.max(...samples.map((p) => p.length));
  if (!(length >= 1)) throw new Error(`ALMOSTREC: an input sequence is empty (no BOS, no text and no history)`);
  const textIds: number[] = [];
  const imageRows: number[] = [];
  const idItems: number[] = [];
  const kind = new Uint8Array(batch * length);
  const local = new Int32Array(batch * length);
  const mask = samples.map((pieces, b) => {
    pieces.forEach((p, t) => {
      const at = b * length + t;
      if (p.kind === 'text') {
        kind[at] = 1;
        local[at] = textIds.push(p.token) - 1;
      } else if (p.kind === 'image') {
        kind[at] = 2;
        local[at] = imageRows.push(imageRow(p.item, p.index)) - 1;
      } else {
        kind[at] = 3;
        local[at] = idItems.push(p.item) - 1;
      }
    });
    return Array.from({ length }, (_, t) => (t < pieces.length ? 1 : 0));
  });
  const base = [0, 1, 1 + textIds.length, 1 + textIds.length + imageRows.length];
  const rows = new Int32Array(batch * length);
  for (let i = 0; i < rows.length; i++) rows[i] = kind[i] === 0 ? 0 : base[kind[i]] + local[i];
  return { batch, length, textIds, imageRows, idItems, rows, mask };
}

/**
 * A sample's input as readable text, for showing the prompt a model read: text runs decoded (<s> written
 * out), an item's visual tokens as one `<image×k:item>` mark and its ID token as `[ID:item]`, where item is
 * what `itemLabel` gives for an item index (by default the index).
 */
export function renderPieces(pieces: readonly Piece[], tokenizer: TextTokenizer, itemLabel: (item: number) => string = String): string {
  const parts: string[] = [];
  let text: number[] = [];
  const flush = (): void => {
    if (text.length) parts.push(tokenizer.decode(text));
    text = [];
  };
  for (let i = 0; i < pieces.length; i++) {
    const p = pieces[i];
    if (p.kind === 'text') {
      if (p.token === tokenizer.bosId) {
        flush();
        parts.push('<s>');
      } else text.push(p.token);
      continue;
    }
    flush();
    if (p.kind === 'id') parts.push(`[ID:${itemLabel(p.item)}]`);
    else if (p.index === 0) {
      let k = 1;
      while (pieces[i + k]?.kind === 'image' && (pieces[i + k] as { item: number }).item === p.item && (pieces[i + k] as { index: number }).index === k) k++;
      parts.push(`<image×${k}:${itemLabel(p.item)}>`);
    }
  }
  flush();
  return parts.join(' ');
}

/** The one token `text` encodes to (a separator or end marker the models read as a single position). */
export function singleToken(tokenizer: TextTokenizer, text: string, model: string): number {
  const ids = tokenizer.encode(text, { addBos: false });
  if (ids.length !== 1) throw new Error(`${model}: the tokenizer ${tokenizer.id} splits "${text}" into ${ids.length} tokens`);
  return ids[0];
}
