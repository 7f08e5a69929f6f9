// LLaRA's prompt (Liao et al. 2024; DESIGN §6) as ALMOSTREC-style pieces (almostrec-prompt.ts), before any
// embedding, and its candidate lists. Pure apart from the seeded draws, so the wording is testable alone.
//
//   <s> This user has interacted with, in order: t(h1) [h1] ; … ; t(hL) [hL] .
//       Choose the next one from these candidates: t(c1) [c1] ; … ; t(cK) [cK] . Answer:  → t(target) ;
//
// [i] is item i's ID token (a projection of the sequential model's embedding M(i)); a text-only prompt (the
// curriculum's early prompts) leaves the ID tokens out. LLaRA's own text-only prompts put a new [PH] token
// where an ID token would be; the backbone's vocabulary is fixed here, so the text-only prompt is the titles
// alone. The wording is ours (LLaRA samples among several instructions), constant so that runs compare.
import { Rng } from '../tensor/rng';
import type { TextTokenizer } from '../backbone/tokenizer';
import type { Piece } from './almostrec-prompt';

/** The prompt's fixed text, in order: before the history, before the candidates, after each list, before the answer. */
export const LLARA_PROMPT = {
  history: 'This user has interacted with, in order:',
  candidates: 'Choose the next one from these candidates:',
  end: '.',
  answer: 'Answer:'
} as const;

/** The token ids a prompt is made of. */
export interface LlaraTokens {
  /** null when the tokenizer has no BOS. */
  bos: number | null;
  history: number[];
  candidates: number[];
  end: number[];
  answer: number[];
  /** Between two listed items and after the answer's title (TALLRec's ";"): one token. */
  separator: number;
  /** Per item index, already cut to maxTitleTokens (answerTitles). */
  titles: number[][];
}

export function llaraTokens(tokenizer: TextTokenizer, titles: number[][], separator: number): LlaraTokens {
  const encode = (text: string): number[] => tokenizer.encode(text, { addBos: false });
  return {
    bos: tokenizer.bosId >= 0 ? tokenizer.bosId : null,
    history: encode(LLARA_PROMPT.history),
    candidates: encode(LLARA_PROMPT.candidates),
    end: encode(LLARA_PROMPT.end),
    answer: encode(LLARA_PROMPT.answer),
    separator,
    titles
  };
}

/** What every prompt starts with, whatever its items: <s> and the history's lead-in (encoded once per batch). */
export function llaraPrefix(t: LlaraTokens): number[] {
  return [...(t.bos !== null ? [t.bos] : []), ...t.history];
}

/**
 * The whole prompt for `history` (the items as given: the caller cuts it to L) and `candidates`, the shared
 * prefix included; `hybrid` puts each item's ID token after its title.
 */
export function llaraPieces(history: ArrayLike<number>, candidates: ArrayLike<number>, t: LlaraTokens, hybrid: boolean): Piece[] {
  const out: Piece[] = [];
  const text = (ids: readonly number[]): void => {
    for (const token of ids) out.push({ kind: 'text', token });
  };
  const items = (list: ArrayLike<number>): void => {
    for (let i = 0; i < list.length; i++) {
      if (i > 0) text([t.separator]);
      text(t.titles[list[i]]);
      if (hybrid) out.push({ kind: 'id', item: list[i] });
    }
    text(t.end);
  };
  text(llaraPrefix(t));
  items(history);
  text(t.candidates);
  items(candidates);
  text(t.answer);
  return out;
}

/** The answer the model learns to write: the target's title, then the separator. */
export function llaraAnswer(target: number, t: LlaraTokens): number[] {
  return [...t.titles[target], t.separator];
}

/**
 * `count` distinct items of 1…numItems outside `exclude`, uniformly from `rng` (all of them, shuffled, when
 * fewer are left). Rejection sampling while most items are allowed; a partial shuffle of the allowed ones
 * otherwise.
 */
export function drawUnseen(numItems: number, exclude: ReadonlySet<number>, count: number, rng: Rng): number[] {
  let excluded = 0;
  for (const i of exclude) if (i >= 1 && i <= numItems) excluded++;
  const allowed = numItems - excluded;
  if (count >= allowed || allowed < 2 * count) {
    const pool: number[] = [];
    for (let i = 1; i <= numItems; i++) if (!exclude.has(i)) pool.push(i);
    const take = Math.min(count, pool.length);
    for (let i = 0; i < take; i++) {
      const j = i + rng.int(pool.length - i);
      [pool[i], pool[j]] = [pool[j], pool[i]];
    }
    return pool.slice(0, take);
  }
  const out: number[] = [];
  const taken = new Set<number>();
  while (out.length < count) {
    const i = 1 + rng.int(numItems);
    if (exclude.has(i) || taken.has(i)) continue;
    taken.add(i);
    out.push(i);
  }
  return out;
}

/**
 * A candidate list of `count` items: with a target, the target and count − 1 items outside `exclude` (nor the
 * target) in a random order (LLaRA's negative_sampling); without one, count items outside `exclude` as drawn.
 */
export function candidateList(target: number | null, numItems: number, exclude: ReadonlySet<number>, count: number, rng: Rng): Int32Array {
  if (target === null) return Int32Array.from(drawUnseen(numItems, exclude, count, rng));
  const out = Int32Array.from([...drawUnseen(numItems, new Set([...exclude, target]), count - 1, rng), target]);
  rng.shuffle(out);
  return out;
}

/**
 * An Rng determined by the seed, a purpose (`salt`) and a history's items (FNV-1a over them), so evaluation
 * draws the same candidates for a history whatever the batch or the order users come in.
 */
export function historyRng(seed: number, salt: number, history: ArrayLike<number>): Rng {
  let h = 0x811c9dc5;
  const mix = (v: number): void => {
    for (let b = 0; b < 4; b++) {
      h ^= (v >>> (8 * b)) & 0xff;
      h = Math.imul(h, 0x01000193);
    }
  };
  mix(seed);
  mix(salt);
  mix(history.length);
  for (let i = 0; i < history.length; i++) mix(history[i]);
  return new Rng(h >>> 0);
}

/**
 * LLaRA's reading of a generated answer (its calculate_hr1): the candidates whose title occurs in the text,
 * case-insensitively, trimmed; the answer is valid when exactly one does, and names that candidate. Returns
 * its index in `titles`, or null.
 */
export function matchCandidate(generated: string, titles: readonly string[]): number | null {
  const text = generated.trim().toLowerCase();
  let found: number | null = null;
  for (let i = 0; i < titles.length; i++) {
    const title = titles[i].trim().toLowerCase();
    if (title === '' || !text.includes(title)) continue;
    if (found !== null) return null;
    found = i;
  }
  return found;
}
