export { Catalog } from './catalog';
export type { RunPatch, SplitKind } from './runs';
export type { BackbonePatch, NewBackbone } from './backbones';
export { MIGRATIONS, migrate, type Migration } from './migrations';
export { HEARTBEAT_MS, LEASE_MS, isInterruptedError, type OwnedTable, type SweepResult } from './ownership';
export { DATA_DIR_MARKER, claimDataDir } from './data-dir-claim';
