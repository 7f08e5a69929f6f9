// CSV for the renderer's exports: the writer is shared with the CLI (src/shared/csv.ts).
export { csvField, csvText } from '../../../shared/csv';

/** A file-name-safe slug, e.g. for the CSV downloads. */
export function fileSlug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '') || 'dataset';
}
