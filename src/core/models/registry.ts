// Every trainable model of this build, by kind: what jobs, the CLI and the benchmark train through the one
// loop (train/train-model.ts). A kind missing here is refused with a clear message, never half-trained.
import type { TrainingConfig } from '../../shared/api';
import type { ModelKind } from '../../shared/models';
import type { ModelSpec, TrainableKind } from '../train/model-spec';
import { almostrecSpec } from './almostrec';
import { bprSpec } from './bpr';
import { e4srecSpec } from './e4srec';
import { gru4recSpec } from './gru4rec';
import { llaraSpec } from './llara';
import { ncfSpec } from './ncf';
import { nextitnetSpec } from './nextitnet';
import { sasrecSpec } from './sasrec';
import { sasrecIdVSpec } from './sasrec-id-v';
import { tallrecSpec } from './tallrec';
import { vip5Spec } from './vip5';
import { youtubeIdVSpec } from './youtube-id-v';

// Each spec is typed by its own config; the loop hands it the config parsed for its kind.
type AnySpec = ModelSpec<TrainingConfig>;

export const MODEL_SPECS: Partial<Record<TrainableKind, AnySpec>> = {
  sasrec: sasrecSpec,
  gru4rec: gru4recSpec,
  nextitnet: nextitnetSpec,
  bpr: bprSpec,
  ncf: ncfSpec,
  sasrec_id_v: sasrecIdVSpec,
  youtube_id_v: youtubeIdVSpec,
  tallrec: tallrecSpec,
  llara: llaraSpec,
  e4srec: e4srecSpec,
  vip5: vip5Spec,
  almostrec: almostrecSpec
};

export function isAvailable(kind: ModelKind): boolean {
  return kind === 'popularity' || MODEL_SPECS[kind] !== undefined;
}

/** The spec for a trainable kind; throws for popularity (not trained) and kinds this build lacks. */
export function modelSpec(kind: ModelKind): AnySpec {
  const spec = kind === 'popularity' ? undefined : MODEL_SPECS[kind];
  if (!spec) throw new Error(kind === 'popularity' ? 'popularity is fitted, not trained: it has no ModelSpec' : `model ${kind} is not available in this build`);
  return spec;
}
