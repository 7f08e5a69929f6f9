// bundle.json, the manifest of an adapter bundle (`almostrec export --format bundle`):
//   peft/                   the PEFT LoRA folder (adapter_config.json + adapter_model.safetensors), as exported
//   almostrec.safetensors   W_B, W_T, M and item_ids (the exporting catalog's item ids, row order)
//   almostrec.json          the run's own manifest (prompt, shapes, sources)
//   bundle.json             this: dataset fingerprint + each row's item external id, backbone name + content
//                           hash, model, config, metrics, and every file with its sha256 (checked on import)
import { z } from 'zod';

export const BUNDLE_FORMAT = 'almostrec-bundle/1';
export const BUNDLE_MANIFEST = 'bundle.json';
export const BUNDLE_PEFT_DIR = 'peft';

const metrics = z.record(z.string(), z.number()).nullable();

export const bundleManifestSchema = z.object({
  format: z.literal(BUNDLE_FORMAT),
  name: z.string().min(1),
  model: z.enum(['almostrec', 'e4srec']),
  contentHash: z.string().regex(/^[0-9a-f]{64}$/),
  dataset: z.object({
    name: z.string(),
    fingerprint: z.string().regex(/^[0-9a-f]{64}$/),
    numItems: z.number().int().positive(),
    /** External id of each row of W_T's columns and M's rows; row 0 (padding) is "". */
    itemExternalIds: z.array(z.string())
  }),
  backbone: z.object({ name: z.string(), contentHash: z.string().regex(/^[0-9a-f]{64}$/) }),
  sequentialRun: z.object({ id: z.number().int(), model: z.string() }).nullable(),
  /** The run's model config (hyper-parameters; backboneId and seqRunId are the exporter's). */
  config: z.record(z.string(), z.number()),
  epoch: z.number().int().min(0),
  metrics: z.object({ valid: metrics, test: metrics }),
  origin: z.object({ runId: z.number().int().positive(), exportedAt: z.string() }),
  /** Files relative to the bundle folder, with their sha256. */
  files: z.array(z.object({ path: z.string().min(1), bytes: z.number().int().min(0), sha256: z.string().regex(/^[0-9a-f]{64}$/) }))
});
export type BundleManifest = z.infer<typeof bundleManifestSchema>;
