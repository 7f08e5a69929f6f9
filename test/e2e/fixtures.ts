// Shared by the end-to-end tests: form values and page types more than one test file uses.

/** Form fields (data-testid) of a pretraining that takes seconds. */
export const TINY_BACKBONE: Readonly<Record<string, string>> = {
  'pretrain-hiddensize': '32',
  'pretrain-numlayers': '1',
  'pretrain-numheads': '2',
  'pretrain-numkvheads': '1',
  'pretrain-intermediatesize': '64',
  'pretrain-maxtokens': '32',
  'pretrain-batchsize': '2',
  'pretrain-stage1steps': '2',
  'pretrain-stage2steps': '2'
};

/** The two HTMLImageElement fields the tests read (the e2e files compile without the DOM lib). */
export interface DecodedImage {
  complete: boolean;
  naturalWidth: number;
}
