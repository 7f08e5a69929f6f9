// The one error importers throw for bad input: it names the file and (when known) the 1-based line.

export class ImportError extends Error {
  readonly file: string;
  readonly line: number | null;
  readonly detail: string;

  constructor(file: string, line: number | null, detail: string) {
    super(line === null ? `${file}: ${detail}` : `${file}, line ${line}: ${detail}`);
    this.name = 'ImportError';
    this.file = file;
    this.line = line;
    this.detail = detail;
  }
}
