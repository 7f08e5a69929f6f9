// What an imported adapter is checked against (issue 14 item 2): the dataset's fingerprint and the backbone's
// content hash. Both are computed from what the model actually reads, so two catalogs agree on them exactly
// when the adapter would score the same in both.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Catalog } from '../catalog';

/**
 * sha256 over the dataset as the models see it (its 5-core split): each kept item's external id, title and
 * poster bytes' sha256 (ALMOSTREC reads titles and posters), in external-id order, then one
 * "user \t item \t timestamp \t role" line per kept interaction, users in external-id order and each user's
 * interactions in protocol order. Catalog row ids are left out: they depend on import order.
 */
export function datasetFingerprint(catalog: Catalog, datasetId: number): string {
  const h = createHash('sha256');
  const items = catalog.db
    .prepare(
      `SELECT it.external_id, it.title, it.image FROM items it WHERE it.id IN (
         SELECT x.item_id FROM splits s JOIN interactions x ON x.id = s.interaction_id WHERE s.dataset_id = ?)
       ORDER BY it.external_id`
    )
    .raw()
    .iterate(datasetId) as IterableIterator<[string, string, Buffer | null]>;
  h.update('items\n');
  for (const [id, title, image] of items) h.update(`${id}\t${title}\t${image ? createHash('sha256').update(image).digest('hex') : ''}\n`);
  const rows = catalog.db
    .prepare(
      `SELECT u.external_id, it.external_id, x.timestamp, s.role FROM splits s JOIN interactions x ON x.id = s.interaction_id
       JOIN users u ON u.id = s.user_id JOIN items it ON it.id = x.item_id WHERE s.dataset_id = ? ORDER BY u.external_id, s.position`
    )
    .raw()
    .iterate(datasetId) as IterableIterator<[string, string, number | null, string]>;
  h.update('interactions\n');
  for (const [u, i, t, role] of rows) h.update(`${u}\t${i}\t${t ?? ''}\t${role}\n`);
  return h.digest('hex');
}

/** The files that define a llava-hf backbone: its config, weights (single file or shards + index) and tokenizer. */
const BACKBONE_FILE = /^(config\.json|model(-\d+-of-\d+)?\.safetensors|model\.safetensors\.index\.json|tokenizer\.json|tokenizer_config\.json|tokenizer\.model|special_tokens_map\.json)$/;

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * sha256 over "<file> \t <sha256>\n" of the backbone's defining files in name order (pretraining state and
 * caches beside them are left out). A copy of the folder elsewhere has the same hash.
 */
export async function backboneContentHash(dir: string): Promise<string> {
  if (!existsSync(join(dir, 'config.json'))) throw new Error(`${join(dir, 'config.json')}: missing (not a backbone folder?)`);
  const files = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile() && BACKBONE_FILE.test(e.name))
    .map((e) => e.name)
    .sort();
  const h = createHash('sha256');
  for (const f of files) h.update(`${f}\t${await sha256File(join(dir, f))}\n`);
  return h.digest('hex');
}
