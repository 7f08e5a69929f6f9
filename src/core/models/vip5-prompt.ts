// VIP5's prompt (Geng et al. 2023; DESIGN §6) as ALMOSTREC-style pieces (almostrec-prompt.ts), before any
// embedding. Pure, so the wording and the layout are testable without a backbone.
//
//   <s> task  item_12 ; V(12)  item_7 ; V(7)  …  item_x ; V(x)   → the next ID, ended by ";"
//
// Each item is its ID as text, `item_<external id>` (VIP5's "item_1234"), tokenized by the backbone's own
// tokenizer: LLaMA's splits the digits into one token each ("▁item", "_", "1", "2", "3", "4"), as VIP5's
// T5 tokenizer splits ID numbers into sub-word pieces. VIP5 also adds whole-word embeddings marking which
// pieces form one ID; the backbone's embeddings are frozen here, so the ";" that closes every ID marks it
// instead — and it ends the answer too, so that "item_1" is not favoured over "item_12" by being shorter.
//
// An item's visual tokens (its poster, k per image; none without one) come AFTER its ID and ";" (VIP5 also
// writes "item_1234 <image>"): every item of a training window is an answer given the items before it, and
// with this order predicting an item's ID never sees its own image. The question therefore stands before the
// list, not after it (VIP5's source prompts end with it): a ranking prompt must end exactly where a training
// answer begins, after the last item's visual tokens. The wording is ours, constant so that runs compare.
import type { TextTokenizer } from '../backbone/tokenizer';
import { singleToken, type Piece } from './almostrec-prompt';

export const VIP5_TASK = 'What is the next item? The user has interacted with these items, in order, each given by its ID and its image:';
/** Ends every ID, in the prompt and in the answer (as TALLRec's ";" ends a title). */
export const VIP5_END = ';';
/** How an item is named: its catalog item id after this prefix. */
export const VIP5_ID_FORMAT = 'item_{itemId}';

/** An item's ID as the prompt writes it, from its external (catalog) item id. */
export function itemIdText(externalId: number): string {
  return VIP5_ID_FORMAT.replace('{itemId}', String(externalId));
}

/** The token ids a prompt is made of. */
export interface Vip5Tokens {
  /** null when the tokenizer has no BOS. */
  bos: number | null;
  task: number[];
  /** The one token that closes each ID. */
  end: number;
  /** Per item index, its ID's tokens (without the end token); [] for the padding row. */
  ids: number[][];
}

/** The prompt's tokens for a tokenizer and the dataset's external item ids (index 0 is padding). */
export function vip5Tokens(tokenizer: TextTokenizer, itemIds: ArrayLike<number>, model = 'VIP5'): Vip5Tokens {
  const encode = (text: string): number[] => tokenizer.encode(text, { addBos: false });
  const end = [singleToken(tokenizer, VIP5_END, model)];
  const ids = Array.from(itemIds, (id, i) => (i === 0 ? [] : encode(itemIdText(id))));
  ids.forEach((t, i) => {
    if (t.includes(end[0])) throw new Error(`${model}: the ID of item ${itemIds[i]} contains the end token "${VIP5_END}"`);
  });
  return { bos: tokenizer.bosId >= 0 ? tokenizer.bosId : null, task: encode(VIP5_TASK), end: end[0], ids };
}

/** What every input starts with, whatever its items: <s> and the task (encoded once per batch). */
export function vip5Prefix(t: Vip5Tokens): number[] {
  return [...(t.bos !== null ? [t.bos] : []), ...t.task];
}

/** The answer naming `item`: its ID's tokens, then the end token. */
export function vip5Answer(item: number, t: Vip5Tokens): number[] {
  return [...t.ids[item], t.end];
}

/** The pieces of `items` (oldest first): each one's answer tokens, then its `imageTokens(item)` visual tokens. */
export function itemPieces(items: ArrayLike<number>, t: Vip5Tokens, imageTokens: (item: number) => number): Piece[] {
  const out: Piece[] = [];
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    for (const token of vip5Answer(item, t)) out.push({ kind: 'text', token });
    for (let index = 0; index < imageTokens(item); index++) out.push({ kind: 'image', item, index });
  }
  return out;
}

/** The whole prompt for `history` (the items as given: the caller cuts it to L), the shared prefix included. */
export function vip5Pieces(history: ArrayLike<number>, t: Vip5Tokens, imageTokens: (item: number) => number): Piece[] {
  return [...vip5Prefix(t).map((token): Piece => ({ kind: 'text', token })), ...itemPieces(history, t, imageTokens)];
}
