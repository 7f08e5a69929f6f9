// ALMOSTREC's artifacts (DESIGN §7), written beside the best checkpoint once a run has finished (E4SRec, the
// same model without images and titles, writes the same files with its own prompt and kind):
//   lora/                 the LoRA adapter as Hugging Face PEFT (adapter_config.json + adapter_model.safetensors,
//                         current transformers key layout) for the backbone folder; absent with useLora = 0
//   almostrec.safetensors W_B [d_i, d_m], W_T [d_m, |I| + 1], M [|I| + 1, d_i] (the frozen table the model
//                         used) and item_ids [|I| + 1] (row → catalog item id, 0 for the padding row)
//   almostrec.json        the manifest: dataset, sequential run, backbone, config, prompt, files
// The manifest is written last, so it never names a file that is not there yet.
import { dirname, join } from 'node:path';
import type { Metrics } from '../../shared/types';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, writeAtomically, writePeftAdapter, type LoraPair } from '../backbone/peft-adapter';
import { writeSafetensors } from '../tensor/safetensors';
import { readModelWeights } from '../train/checkpoint';
import type { ModelContext } from '../train/model-spec';
import { loraConfigOf, type AlmostrecConfig } from './almostrec-config';
import { almostrecParamShapes, backboneInputsOf, itemTableValues, loraModules, loraName } from './almostrec-params';
import { TITLE_SEPARATOR } from './almostrec-prompt';
import { ALMOSTREC_PROMPT, type PromptStyle } from './almostrec-style';

export const LORA_DIR = 'lora';
export const ALMOSTREC_TENSORS_FILE = 'almostrec.safetensors';
export const ALMOSTREC_MANIFEST_FILE = 'almostrec.json';
export const ALMOSTREC_EXPORT_FORMAT = 'almostrec-export/1';

export interface AlmostrecManifest {
  format: typeof ALMOSTREC_EXPORT_FORMAT;
  /** The run's model kind: almostrec, or e4srec (no images, no titles). */
  model: 'almostrec' | 'e4srec';
  dataset: { id: number; name: string; numItems: number };
  sequentialRun: { id: number; model: string; itemEmbeddings: string };
  backbone: { id: number; name: string; path: string; hiddenSize: number; tokenizer: string };
  epoch: number;
  valid: Metrics | null;
  config: Record<string, number>;
  prompt: { task: string; titles: boolean; titleSeparator: string; layout: 'concat' | 'interleaved' };
  /** Files relative to the manifest's folder. */
  tensors: { file: string; W_B: number[]; W_T: number[]; M: number[]; M_source: string; item_ids: number[] };
  loraAdapter: string | null;
}

/** Which model of the ALMOSTREC family a checkpoint holds: its kind, its config as ALMOSTREC's, its prompt. */
export interface AlmostrecVariant {
  kind: AlmostrecManifest['model'];
  asAlmostrec(config: Record<string, number>): AlmostrecConfig;
  style: PromptStyle;
}

export const ALMOSTREC_VARIANT: AlmostrecVariant = { kind: 'almostrec', asAlmostrec: (c) => c as unknown as AlmostrecConfig, style: ALMOSTREC_PROMPT };

/** Writes the artifacts of the best weights at `checkpointPath` and returns them as run artifacts. */
export function exportAlmostrec(checkpointPath: string, ctx: ModelContext, variant: AlmostrecVariant = ALMOSTREC_VARIANT): { kind: string; path: string }[] {
  const inputs = backboneInputsOf(ctx);
  const { data } = ctx;
  const dir = dirname(checkpointPath);
  const read = readModelWeights<Record<string, number>>(checkpointPath, variant.kind, data, (c) => almostrecParamShapes(variant.asAlmostrec(c), ctx));
  const w = read.weights;
  const cfg = variant.asAlmostrec(read.config);
  const dm = inputs.backbone.config.text.hiddenSize;
  const di = inputs.itemTable.dim;
  const width = data.numItems + 1;
  const artifacts: { kind: string; path: string }[] = [];

  const tensorsPath = join(dir, ALMOSTREC_TENSORS_FILE);
  writeSafetensors(
    tensorsPath,
    {
      W_B: { dtype: 'F32', shape: [di, dm], data: w.params.get('w_b')! },
      W_T: { dtype: 'F32', shape: [dm, width], data: w.params.get('w_t')! },
      M: { dtype: 'F32', shape: [width, di], data: itemTableValues(cfg, ctx) },
      item_ids: { dtype: 'I32', shape: [width], data: data.itemIds }
    },
    { format: 'almostrec-tensors/1', manifest: ALMOSTREC_MANIFEST_FILE }
  );
  artifacts.push({ kind: 'almostrec_tensors', path: tensorsPath });

  const lora = loraConfigOf(cfg);
  if (lora) {
    const modules = new Map<string, LoraPair>();
    for (const [path, [outDim, inDim]] of loraModules(cfg, inputs)) {
      modules.set(path, {
        a: { data: w.params.get(loraName(path, 'A'))!, shape: [lora.r, inDim] },
        b: { data: w.params.get(loraName(path, 'B'))!, shape: [outDim, lora.r] }
      });
    }
    const loraDir = join(dir, LORA_DIR);
    // task_type stays null: the adapter serves the language model under ALMOSTREC's own head (W^T), not a causal-LM head.
    writePeftAdapter(loraDir, { r: lora.r, alpha: lora.alpha, dropout: lora.dropout, targetModules: [...lora.targets], baseModel: inputs.backbone.path, taskType: null }, modules);
    artifacts.push({ kind: 'lora_adapter', path: join(loraDir, ADAPTER_WEIGHTS_FILE) }, { kind: 'lora_adapter_config', path: join(loraDir, ADAPTER_CONFIG_FILE) });
  }

  const manifest: AlmostrecManifest = {
    format: ALMOSTREC_EXPORT_FORMAT,
    model: variant.kind,
    dataset: { id: data.datasetId, name: inputs.datasetName, numItems: data.numItems },
    sequentialRun: { id: inputs.itemTable.runId, model: inputs.itemTable.model, itemEmbeddings: inputs.itemTable.path },
    backbone: { id: inputs.backbone.id, name: inputs.backbone.name, path: inputs.backbone.path, hiddenSize: dm, tokenizer: inputs.tokenizer.id },
    epoch: w.epoch,
    valid: w.valid,
    config: w.config,
    prompt: { task: variant.style.task, titles: variant.style.titles, titleSeparator: TITLE_SEPARATOR, layout: cfg.layout === 1 ? 'interleaved' : 'concat' },
    tensors: {
      file: ALMOSTREC_TENSORS_FILE,
      W_B: [di, dm],
      W_T: [dm, width],
      M: [width, di],
      M_source: cfg.pretrainedIds ? `item_embeddings of ${inputs.itemTable.model} run ${inputs.itemTable.runId}` : `random N(0, 0.02) from seed ${cfg.seed} (pretrainedIds = 0)`,
      item_ids: [width]
    },
    loraAdapter: lora ? LORA_DIR : null
  };
  const manifestPath = join(dir, ALMOSTREC_MANIFEST_FILE);
  writeAtomically(manifestPath, JSON.stringify(manifest, null, 2) + '\n');
  artifacts.push({ kind: 'almostrec_manifest', path: manifestPath });
  return artifacts;
}
