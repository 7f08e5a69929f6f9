// RFC 4180 CSV, as every export (Table 2, the ablation study, recommendations) writes it. Pure: the renderer,
// the CLI and unit tests import it.

export function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Rows of fields → CSV text with CRLF line ends (and one after the last row). */
export function csvText(rows: readonly (readonly string[])[]): string {
  return rows.map((l) => l.map(csvField).join(',')).join('\r\n') + '\r\n';
}
