// The one error importers throw for bad input: it names the file and (when known) the 1-based line.

/** Details quote the input; a cap keeps the message readable whatever a corrupt file holds. */
const MAX_DETAIL = 300;

export class ImportError extends Error {
  readonly file: string;
  readonly line: number | null;
  readonly detail: string;

  constructor(file: string, line: number | null, fullDetail: string) {
    const detail = fullDetail.length > MAX_DETAIL ? `${fullDetail.slice(0, MAX_DETAIL)}…` : fullDetail;
    super(line === null ? `${file}: ${detail}` : `${file}, line ${line}: ${detail}`);
    this.name = 'ImportError';
    this.file = file;
    this.line = line;
    this.detail = detail;
  }
}
