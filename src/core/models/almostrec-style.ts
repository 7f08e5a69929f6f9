// The prompt's text part of a model of the ALMOSTREC family: its instruction and whether the history's
// titles follow it. ALMOSTREC lists the titles; E4SRec (e4srec.ts) reads an instruction and ID tokens only.
import { PROMPT_TASK } from './almostrec-prompt';

export interface PromptStyle {
  task: string;
  titles: boolean;
}

export const ALMOSTREC_PROMPT: PromptStyle = { task: PROMPT_TASK, titles: true };
