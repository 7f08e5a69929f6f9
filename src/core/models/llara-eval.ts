// LLaRA's own evaluation (its calculate_hr1; DESIGN §6): for each user the hybrid prompt lists the held-out
// item and candidates − 1 items outside the history (drawn from the seed and the history, so the same every
// time), the model writes a title greedily, and the text is read against the candidates' titles. Exactly one
// title in the text makes the answer valid; a valid answer naming the held-out item is a hit.
//   validRatio = valid / users;  hr1 = hits / valid  (LLaRA's HitRatio@1, over the valid answers as its code
//   computes it; hits / users = hr1 · validRatio is what it selects models on).
// Table 2's full ranking is LlaraModel.scoreBatch through the shared evaluator instead.
import { join } from 'node:path';
import { writeAtomically } from '../backbone/peft-adapter';
import { splitInput, type SequenceData, type SplitName } from '../data/types';
import { throwIfCancelled, type CancelSignal, type ProgressFn } from '../progress';
import type { LlaraAnswer, LlaraModel } from './llara';

export interface LlaraEvalOptions {
  /** Evaluate the first `users` users only (default all). */
  users?: number;
  /** Also return each user's candidates, answer and outcome. */
  perUser?: boolean;
  onProgress?: ProgressFn;
  signal?: CancelSignal;
}

export interface LlaraUserResult {
  userId: number;
  target: number;
  candidates: number[];
  generated: string;
  /** Index into candidates of the one the answer names, or null (invalid). */
  matched: number | null;
  hit: boolean;
}

export interface LlaraEvalResult {
  /** Hits among the valid answers (0 without any). */
  hr1: number;
  validRatio: number;
  users: number;
  valid: number;
  hits: number;
  perUser?: LlaraUserResult[];
}

/** What the evaluation needs of a model: its candidate lists and its greedy answers (read synchronously or not). */
export interface LlaraAnswerer {
  evalCandidates: LlaraModel['evalCandidates'];
  answer(history: Int32Array, candidates: ArrayLike<number>): LlaraAnswer | Promise<LlaraAnswer>;
}

export async function llaraCandidateEval(model: LlaraAnswerer, data: SequenceData, split: SplitName, opts: LlaraEvalOptions = {}): Promise<LlaraEvalResult> {
  const users = data.users.slice(0, opts.users ?? data.users.length);
  let valid = 0;
  let hits = 0;
  const perUser: LlaraUserResult[] = [];
  for (let i = 0; i < users.length; i++) {
    throwIfCancelled(opts.signal);
    const { history, target } = splitInput(users[i], split);
    const candidates = model.evalCandidates(history, target);
    const a: LlaraAnswer = await model.answer(history, candidates);
    const hit = a.matched !== null && candidates[a.matched] === target;
    if (a.matched !== null) valid++;
    if (hit) hits++;
    if (opts.perUser) perUser.push({ userId: users[i].userId, target, candidates: Array.from(candidates), generated: a.text, matched: a.matched, hit });
    opts.onProgress?.({ phase: `LLaRA HR@1 (${split})`, done: i + 1, total: users.length });
    // Let a cancel request (an event) arrive between users.
    await new Promise((resolve) => setImmediate(resolve));
  }
  const n = users.length;
  return { hr1: valid > 0 ? hits / valid : 0, validRatio: n > 0 ? valid / n : 0, users: n, valid, hits, ...(opts.perUser ? { perUser } : {}) };
}

export const LLARA_EVAL_FILE = 'llara_eval.json';

/**
 * LLaRA's own figures for a trained run (ModelSpec.ownEvaluation): HR@1 and the valid ratio on validation and
 * test, written as `llara_eval.json` beside the checkpoint (atomically).
 */
export async function llaraOwnEvaluation(
  model: Pick<LlaraModel, 'evalCandidates' | 'answerAsync' | 'config'>,
  data: SequenceData,
  dir: string,
  opts: Pick<LlaraEvalOptions, 'onProgress' | 'signal'>
): Promise<{ kind: string; path: string; summary: string }> {
  const candidates = model.config.candidates;
  // Read asynchronously: the run may have trained on webgpu.
  const answerer: LlaraAnswerer = { evalCandidates: (h, t) => model.evalCandidates(h, t), answer: (h, c) => model.answerAsync(h, c) };
  const valid = await llaraCandidateEval(answerer, data, 'valid', opts);
  const test = await llaraCandidateEval(answerer, data, 'test', opts);
  const path = join(dir, LLARA_EVAL_FILE);
  writeAtomically(path, JSON.stringify({ format: 'llara-eval/1', candidates, valid, test }, null, 2) + '\n');
  const line = (r: LlaraEvalResult) => `HR@1 ${r.hr1.toFixed(4)}, valid ratio ${r.validRatio.toFixed(4)}`;
  return { kind: 'llara_eval', path, summary: `LLaRA over ${candidates} candidates — valid: ${line(valid)}; test: ${line(test)}` };
}
