// RFC 4180 CSV, as the exports (Table 2, the ablation study) write it. Pure: unit tests import it under node.

export function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Rows of fields → CSV text with CRLF line ends (and one after the last row). */
export function csvText(rows: readonly (readonly string[])[]): string {
  return rows.map((l) => l.map(csvField).join(',')).join('\r\n') + '\r\n';
}

/** A file-name-safe slug, e.g. for the CSV downloads. */
export function fileSlug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '') || 'dataset';
}
