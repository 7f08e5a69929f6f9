// `almostrec export <run> --format peft|bundle --out DIR` and the Adapters view's Export button (issue 14).
// peft: the PEFT LoRA folder alone, which Hugging Face PEFT loads onto the llava-hf backbone; bundle: what
// another catalog needs to use the adapter (bundle-manifest.ts). Written atomically (atomic-folder.ts).
import { createHash } from 'node:crypto';
import { copyFileSync, createReadStream, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { AdapterExportFormat, AdapterSummary } from '../../shared/adapters';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE } from '../backbone/peft-adapter';
import type { Catalog } from '../catalog';
import { ALMOSTREC_MANIFEST_FILE, ALMOSTREC_TENSORS_FILE, LORA_DIR } from '../models/almostrec-export';
import { readSafetensorsHeader, readSafetensorsTensors } from '../tensor/safetensors';
import { fsError, writeFolderAtomically } from './atomic-folder';
import { BUNDLE_FORMAT, BUNDLE_MANIFEST, BUNDLE_PEFT_DIR, type BundleManifest } from './bundle-manifest';
import { backboneContentHash, datasetFingerprint } from './fingerprints';

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** The registered adapter of a run, its files checked against their recorded sha256 (a changed file is refused). */
async function checkedAdapter(catalog: Catalog, runId: number): Promise<{ adapter: AdapterSummary; runDir: string }> {
  const run = catalog.getRun(runId);
  if (!run) throw new Error(`Run ${runId} not found`);
  const adapter = catalog.getAdapter(runId);
  if (!adapter || !run.checkpointPath) throw new Error(`Run ${runId} (${run.model}, ${run.status}) has no registered adapter: only finished runs of the models on a backbone have one`);
  const runDir = dirname(run.checkpointPath);
  for (const f of adapter.files) {
    const path = join(runDir, f.path);
    let actual: string;
    try {
      actual = await sha256File(path);
    } catch (e) {
      throw fsError(path, e);
    }
    if (actual !== f.sha256) throw new Error(`${path}: changed since training (sha256 ${actual.slice(0, 12)}…, recorded ${f.sha256.slice(0, 12)}…)`);
  }
  return { adapter, runDir };
}

function copyInto(from: string, to: string): void {
  try {
    mkdirSync(dirname(to), { recursive: true });
    copyFileSync(from, to);
  } catch (e) {
    throw fsError(to, e);
  }
}

const PEFT_FILES = [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE];

export interface ExportResult {
  path: string;
  format: AdapterExportFormat;
  /** Files written, relative to `path`. */
  files: string[];
  seconds: number;
}

/** Exports run `runId`'s adapter to the folder `out` (refused if it exists unless `force`). */
export async function exportAdapter(catalog: Catalog, runId: number, format: AdapterExportFormat, out: string, force = false): Promise<ExportResult> {
  const t0 = performance.now();
  const { adapter, runDir } = await checkedAdapter(catalog, runId);
  const has = (rel: string) => adapter.files.some((f) => f.path === rel);
  const hasLora = PEFT_FILES.every((f) => has(`${LORA_DIR}/${f}`));
  const files: string[] = [];
  if (format === 'peft') {
    if (!hasLora) throw new Error(`Run ${runId} (${adapter.model}) has no LoRA adapter (trained with useLora = 0); export --format bundle instead`);
    const path = await writeFolderAtomically(out, force, (tmp) => {
      for (const f of PEFT_FILES) copyInto(join(runDir, LORA_DIR, f), join(tmp, f));
      files.push(...PEFT_FILES);
    });
    return { path, format, files, seconds: (performance.now() - t0) / 1000 };
  }
  if (adapter.model !== 'almostrec' && adapter.model !== 'e4srec') {
    throw new Error(`Run ${runId} is a ${adapter.model} run: bundles carry ALMOSTREC's W^B, W^T and M (almostrec, e4srec runs); export --format peft instead`);
  }
  const run = catalog.getRun(runId)!;
  const backbone = adapter.backboneId === null ? null : catalog.getBackbone(adapter.backboneId);
  if (!backbone) throw new Error(`Run ${runId}: its backbone ${adapter.backboneId ?? '?'} is no longer in the catalog; a bundle names the backbone's content hash`);
  const tensorsPath = join(runDir, ALMOSTREC_TENSORS_FILE);
  const itemIds = readSafetensorsTensors(tensorsPath, readSafetensorsHeader(tensorsPath), ['item_ids']).get('item_ids')!.data as Int32Array;
  const items = catalog.getItems(Array.from(itemIds.subarray(1)));
  const itemExternalIds = Array.from(itemIds, (id, i) => {
    if (i === 0) return '';
    const item = items.get(id);
    if (!item) throw new Error(`${tensorsPath}: row ${i} is item ${id}, which the catalog no longer holds`);
    return item.externalId;
  });
  const manifest: Omit<BundleManifest, 'files'> = {
    format: BUNDLE_FORMAT,
    name: adapter.name,
    model: adapter.model,
    contentHash: adapter.contentHash,
    dataset: { name: run.datasetName, fingerprint: datasetFingerprint(catalog, run.datasetId), numItems: itemIds.length - 1, itemExternalIds },
    backbone: { name: backbone.name, contentHash: await backboneContentHash(backbone.path) },
    sequentialRun: adapter.seqRunId !== null ? { id: adapter.seqRunId, model: String(run.config.seqRunModel ?? 'sasrec') } : (adapter.origin?.seqRunModel ? { id: 0, model: adapter.origin.seqRunModel } : null),
    config: Object.fromEntries(Object.entries(run.config).filter((e): e is [string, number] => typeof e[1] === 'number')),
    epoch: run.bestEpoch ?? 0,
    metrics: { valid: run.valid as unknown as Record<string, number> | null, test: run.test as unknown as Record<string, number> | null },
    origin: { runId, exportedAt: new Date().toISOString() }
  };
  const path = await writeFolderAtomically(out, force, async (tmp) => {
    const listed: BundleManifest['files'] = [];
    const add = async (from: string, rel: string) => {
      const to = join(tmp, rel);
      copyInto(from, to);
      listed.push({ path: rel, bytes: statSync(to).size, sha256: await sha256File(to) });
    };
    if (hasLora) for (const f of PEFT_FILES) await add(join(runDir, LORA_DIR, f), `${BUNDLE_PEFT_DIR}/${f}`);
    await add(tensorsPath, ALMOSTREC_TENSORS_FILE);
    await add(join(runDir, ALMOSTREC_MANIFEST_FILE), ALMOSTREC_MANIFEST_FILE);
    try {
      writeFileSync(join(tmp, BUNDLE_MANIFEST), JSON.stringify({ ...manifest, files: listed }, null, 2) + '\n');
    } catch (e) {
      throw fsError(join(tmp, BUNDLE_MANIFEST), e);
    }
    files.push(...listed.map((f) => f.path), BUNDLE_MANIFEST);
  });
  return { path, format, files, seconds: (performance.now() - t0) / 1000 };
}
