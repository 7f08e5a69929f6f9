// csv-parse decodes through TextDecoder, which turns invalid UTF-8 into U+FFFD without a word: a file in
// another encoding would import with silently garbled titles and ids. This pass-through stream checks
// every byte first (buffer.isUtf8, chunk by chunk, carrying a character split across chunks) and names
// the line of the first bad byte. No dependency does this with a line number, hence by hand. A file that
// starts with a UTF-16LE byte order mark (Excel's "Unicode text") passes unchecked: csv-parse detects the
// mark and decodes it as UTF-16LE. UTF-16BE, which it cannot read, is refused.
import { isUtf8 } from 'node:buffer';
import { Transform, type TransformCallback } from 'node:stream';
import { ImportError } from './import-error';

const LF = 0x0a;

/** Length of the prefix of `buf` that ends on a character boundary (a split last character is left out). */
function completeLength(buf: Buffer): number {
  for (let i = buf.length - 1; i >= 0 && i >= buf.length - 4; i--) {
    const b = buf[i];
    if ((b & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead byte
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return i + need > buf.length ? i : buf.length;
  }
  return buf.length;
}

function countLf(buf: Buffer): number {
  let n = 0;
  for (let i = buf.indexOf(LF); i !== -1; i = buf.indexOf(LF, i + 1)) n++;
  return n;
}

export class Utf8Check extends Transform {
  private carry: Buffer = Buffer.alloc(0);
  private line = 1;
  private first = true;
  private utf16 = false;

  constructor(private readonly file: string) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    if (this.first) {
      this.first = false;
      if (chunk.length >= 2 && chunk[0] === 0xff && chunk[1] === 0xfe) this.utf16 = true;
      else if (chunk.length >= 2 && chunk[0] === 0xfe && chunk[1] === 0xff) {
        done(new ImportError(this.file, 1, 'the file is UTF-16 big-endian; save it as UTF-8'));
        return;
      }
    }
    if (this.utf16) {
      done(null, chunk);
      return;
    }
    const buf = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : chunk;
    const whole = buf.subarray(0, completeLength(buf));
    if (!isUtf8(whole)) {
      done(new ImportError(this.file, this.line + this.linesBeforeBadByte(whole), 'invalid UTF-8 (the file is not UTF-8 text; save it as UTF-8)'));
      return;
    }
    this.line += countLf(whole);
    this.carry = Buffer.from(buf.subarray(whole.length));
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    if (this.carry.length > 0) done(new ImportError(this.file, this.line, 'invalid UTF-8 (the file ends inside a character)'));
    else done();
  }

  /** A multi-byte character never contains LF, so the first line that fails alone holds the bad byte. */
  private linesBeforeBadByte(buf: Buffer): number {
    let start = 0;
    for (let n = 0; ; n++) {
      const end = buf.indexOf(LF, start);
      if (!isUtf8(buf.subarray(start, end === -1 ? buf.length : end))) return n;
      if (end === -1) return n;
      start = end + 1;
    }
  }
}
