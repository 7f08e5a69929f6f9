export { Catalog } from './catalog';
export type { RunPatch, SplitKind } from './runs';
export { MIGRATIONS, migrate, type Migration } from './migrations';
