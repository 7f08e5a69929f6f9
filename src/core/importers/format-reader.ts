// What every format reader receives and returns.
import type { z } from 'zod';
import type { importInputSchema } from '../../shared/api';
import type { DatasetBuilder } from './dataset-builder';

export type ImportInputParsed = z.output<typeof importInputSchema>;
export type ImportOptions = ImportInputParsed['options'];

export interface ReadResult {
  builder: DatasetBuilder;
  /** The file holding the interactions (named in errors about the whole dataset). */
  interactionsFile: string;
}
