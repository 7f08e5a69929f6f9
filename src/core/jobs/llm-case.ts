// The case study's reading of an LLM run (paper Figure 4) for one user: the prompt its model reads before
// the held-out test item (the history being everything before it), with image and ID tokens marked, the
// held-out item's rank under full ranking and, for LLaRA, the answer it writes among its candidates. It loads
// the backbone, so it runs as the 'llm-case' job in a worker; a job's result never reaches the renderer, so
// the job stores it in the catalog (run_llm_cases) for caseStudy.llm.get to read.
import { isLlmKind } from '../../shared/models';
import type { ItemSummary, LlmCase, LlmCaseItem } from '../../shared/types';
import type { TextTokenizer } from '../backbone/tokenizer';
import type { Catalog } from '../catalog';
import { splitInput, type SequenceData } from '../data/types';
import { rankTarget } from '../eval';
import type { AlmostrecModel } from '../models/almostrec';
import { renderPieces, type Piece } from '../models/almostrec-prompt';
import type { LlaraModel } from '../models/llara';
import type { TallrecModel } from '../models/tallrec';
import { throwIfCancelled } from '../progress';
import { initBackend } from '../tensor/backend';
import { scoreAsync, type TrainableModel } from '../train/model-spec';
import { loadRunModel, type RunJobContext } from './run-jobs';

export type LlmCaseContext = Pick<RunJobContext, 'onProgress' | 'signal'>;

/** Steps the job reports: loading the model, reading the prompt (and LLaRA's answer), ranking. */
const STEPS = 3;

/** Catalog items by item index, fetched once each: the prompt names a few dozen items at most. */
function itemsByIndex(catalog: Catalog, data: SequenceData): (index: number) => ItemSummary {
  const cache = new Map<number, ItemSummary>();
  return (index) => {
    let item = cache.get(index);
    if (!item) {
      item = catalog.getItems([data.itemIds[index]]).get(data.itemIds[index]);
      if (!item) throw new Error(`Item ${data.itemIds[index]} (index ${index}) is not in the catalog`);
      cache.set(index, item);
    }
    return item;
  };
}

const caseItem = (i: ItemSummary): LlmCaseItem => ({ id: i.id, externalId: i.externalId, title: i.title, hasImage: i.imageUrl !== null });

/** A model that writes its own prompt as text (renderPieces' marks), e.g. VIP5. */
interface PromptRenderer {
  renderPrompt(history: Int32Array, itemLabel: (item: number) => string): string;
}

/** The prompt of a non-LLaRA LLM run as text (renderPieces' marks). */
function promptText(model: TrainableModel, kind: string, history: Int32Array, tokenizer: TextTokenizer, label: (i: number) => string): string {
  switch (kind) {
    case 'almostrec':
    case 'e4srec':
      return renderPieces((model as AlmostrecModel).pieces(history), tokenizer, label);
    case 'tallrec':
      // Titles only: the same rendering (<s> written out), without marks.
      return renderPieces((model as TallrecModel).promptTokens(history).map((token): Piece => ({ kind: 'text', token })), tokenizer);
    default: {
      const own = model as Partial<PromptRenderer>;
      if (typeof own.renderPrompt === 'function') return own.renderPrompt(history, label);
      throw new Error(`Model ${kind} cannot show its prompt in this build`);
    }
  }
}

/** Computes the case of `userId` for the finished LLM run `runId` (throws on anything else). */
export async function computeLlmCase(catalog: Catalog, runId: number, userId: number, ctx: LlmCaseContext): Promise<LlmCase> {
  const run = catalog.getRun(runId);
  if (!run) throw new Error(`Run ${runId} not found`);
  if (!isLlmKind(run.model)) throw new Error(`Run ${runId} is a ${run.model} run; only LLM runs read a prompt`);
  if (run.status !== 'succeeded') throw new Error(`Run ${runId} is ${run.status}; only finished runs have a case study`);
  const step = (phase: string, done: number) => ctx.onProgress({ phase, done, total: STEPS });
  step('loading the model', 0);
  const data = catalog.loadSequences(run.datasetId);
  const user = data.users.find((u) => u.userId === userId);
  if (!user) throw new Error(`User ${userId} is not in run ${runId}'s dataset after filtering`);
  const { history, target } = splitInput(user, 'test');
  const item = itemsByIndex(catalog, data);
  const label = (i: number): string => item(i).title || item(i).externalId;
  await initBackend('auto');
  const loaded = await loadRunModel(catalog, run, data, ctx);
  try {
    throwIfCancelled(ctx.signal);
    let prompt: string;
    let llara: LlmCase['llara'] = null;
    if (run.model === 'llara') {
      step('generating the answer', 1);
      const c = await (loaded.model as LlaraModel).caseStudyAsync(history, target, label);
      prompt = c.prompt;
      const candidates = c.candidates.map((i) => caseItem(item(i)));
      llara = { generated: c.generated, matched: c.matched === null ? null : candidates[c.matched], candidates, hit: c.hit };
    } else {
      step('reading the prompt', 1);
      prompt = promptText(loaded.model, run.model, history, loaded.context.backbone!.tokenizer, label);
    }
    throwIfCancelled(ctx.signal);
    const stored = catalog.getUserRank(runId, 'test', userId);
    let targetRank = stored;
    if (targetRank === null) {
      step('ranking all items', 2);
      targetRank = rankTarget(await scoreAsync(loaded.model, [history]), history, target);
    }
    step('done', STEPS);
    return {
      runId,
      userId,
      model: run.model,
      prompt,
      heldOut: caseItem(item(target)),
      targetRank,
      rankSource: stored === null ? 'computed' : 'stored',
      llara,
      createdAt: new Date().toISOString()
    };
  } finally {
    loaded.dispose();
  }
}

/** The 'llm-case' job: computes the case and stores it for caseStudy.llm.get. */
export async function runLlmCaseJob(catalog: Catalog, runId: number, userId: number, ctx: LlmCaseContext): Promise<LlmCase> {
  const c = await computeLlmCase(catalog, runId, userId, ctx);
  catalog.saveLlmCase(c);
  return c;
}
