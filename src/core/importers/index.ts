export { importDataset } from './import-dataset';
export { ImportError } from './import-error';
export { EMBEDDED_DATASET, resolveEmbeddedDatasetDir } from './embedded-dataset';
export type { ImportInputParsed, ImportOptions } from './format-reader';
