// LLaRA's artifacts (DESIGN §7), written beside the best checkpoint once a run has finished:
//   lora/              the LoRA adapter as a Hugging Face PEFT causal-LM adapter (the backbone's own head)
//   llara.safetensors  the projector in PyTorch's layout — the state_dict keys of LLaRA's MlpProjector
//                      (mlp_proj.0 = Linear(d_i, d_m), mlp_proj.2 = Linear(d_m, d_m), weights [out, in]) —
//                      and item_ids (row of M → catalog item id, 0 for the padding row)
//   llara.json         the manifest: dataset, sequential run (M), backbone, config, prompt template, files
// The manifest is written last, so it never names a file that is not there yet.
import { dirname, join } from 'node:path';
import { writeAtomically } from '../backbone/peft-adapter';
import { writeSafetensors } from '../tensor/safetensors';
import { readModelWeights } from '../train/checkpoint';
import type { ModelContext } from '../train/model-spec';
import { PROJECTOR, llaraInputs, llaraParamShapes, type LlaraConfig } from './llara-params';
import { LLARA_PROMPT } from './llara-prompt';
import { TALLREC_SEPARATOR, exportTextLora } from './tallrec';

export const LLARA_LORA_DIR = 'lora';
export const LLARA_TENSORS_FILE = 'llara.safetensors';
export const LLARA_MANIFEST_FILE = 'llara.json';

/** [rows, cols] row-major → its transpose. */
function transpose(values: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = values[r * cols + c];
  return out;
}

/** Writes the artifacts of the best weights at `checkpointPath` and returns them as run artifacts. */
export function exportLlara(checkpointPath: string, ctx: ModelContext): { kind: string; path: string }[] {
  const inputs = llaraInputs(ctx);
  const { data } = ctx;
  const dir = dirname(checkpointPath);
  const { weights: w, config } = readModelWeights<LlaraConfig>(checkpointPath, 'llara', data, (c) => llaraParamShapes(c, ctx));
  const di = inputs.itemTable.dim;
  const dm = inputs.backbone.config.text.hiddenSize;
  const width = data.numItems + 1;

  const adapter = exportTextLora(join(dir, LLARA_LORA_DIR), config, inputs, w.params);
  const tensorsPath = join(dir, LLARA_TENSORS_FILE);
  writeSafetensors(
    tensorsPath,
    {
      'mlp_proj.0.weight': { dtype: 'F32', shape: [dm, di], data: transpose(w.params.get(PROJECTOR.w1)!, di, dm) },
      'mlp_proj.0.bias': { dtype: 'F32', shape: [dm], data: w.params.get(PROJECTOR.b1)! },
      'mlp_proj.2.weight': { dtype: 'F32', shape: [dm, dm], data: transpose(w.params.get(PROJECTOR.w2)!, dm, dm) },
      'mlp_proj.2.bias': { dtype: 'F32', shape: [dm], data: w.params.get(PROJECTOR.b2)! },
      item_ids: { dtype: 'I32', shape: [width], data: data.itemIds }
    },
    { format: 'llara-tensors/1', manifest: LLARA_MANIFEST_FILE }
  );

  const manifest = {
    format: 'llara-export/1',
    model: 'llara',
    dataset: { id: data.datasetId, name: inputs.datasetName, numItems: data.numItems },
    sequentialRun: { id: inputs.itemTable.runId, model: inputs.itemTable.model, itemEmbeddings: inputs.itemTable.path },
    backbone: { id: inputs.backbone.id, name: inputs.backbone.name, path: inputs.backbone.path, hiddenSize: dm, tokenizer: inputs.tokenizer.id },
    epoch: w.epoch,
    valid: w.valid,
    config: w.config,
    prompt: {
      template: `<s> ${LLARA_PROMPT.history} {history} ${LLARA_PROMPT.end} ${LLARA_PROMPT.candidates} {candidates} ${LLARA_PROMPT.end} ${LLARA_PROMPT.answer}`,
      item: '{title} [ID] — the title cut to maxTitleTokens, then one token: mlp_proj(M(item))',
      itemSeparator: TALLREC_SEPARATOR,
      answer: `the chosen title, then "${TALLREC_SEPARATOR}"`,
      text: LLARA_PROMPT,
      candidates: config.candidates,
      maxTitleTokens: config.maxTitleTokens,
      historyLength: config.historyLength
    },
    projector: { layers: 'Linear(d_i, d_m) → GELU (erf) → Linear(d_m, d_m)', d_i: di, d_m: dm },
    tensors: { file: LLARA_TENSORS_FILE, 'mlp_proj.0.weight': [dm, di], 'mlp_proj.0.bias': [dm], 'mlp_proj.2.weight': [dm, dm], 'mlp_proj.2.bias': [dm], item_ids: [width] },
    loraAdapter: LLARA_LORA_DIR
  };
  const manifestPath = join(dir, LLARA_MANIFEST_FILE);
  writeAtomically(manifestPath, JSON.stringify(manifest, null, 2) + '\n');
  return [...adapter, { kind: 'llara_tensors', path: tensorsPath }, { kind: 'llara_manifest', path: manifestPath }];
}
