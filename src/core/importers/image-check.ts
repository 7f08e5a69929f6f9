// Poster validation: an image is stored only if it actually decodes. JPEG goes through jpeg-js. No PNG
// decoder is a dependency, so PNG is checked by hand here: chunk CRCs, IHDR, and that the inflated IDAT
// stream holds every scanline — the same checks a decoder would fail on. Before any of that, the file
// must be a regular file inside its dataset folder (no symlink or `../` out of it), of a bounded size,
// and declare at most MAX_PIXELS in its header: a 30,000 × 30,000 poster is refused before it is decoded.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import jpeg from 'jpeg-js';

export type ImageCheck =
  | { ok: true; bytes: Buffer; mime: 'image/jpeg' | 'image/png' }
  | { ok: false; problem: string };

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/** 40 megapixels: far above any poster, far below what would exhaust memory when decoded (4 bytes each). */
export const MAX_PIXELS = 40_000_000;
/** A poster file larger than this is not a poster; reading it whole would only cost memory. */
export const MAX_IMAGE_BYTES = 32 << 20;

/**
 * Reads and validates the image at `file`, which must resolve (symlinks followed) inside `root`, the
 * folder the dataset names its images relative to.
 */
export function loadImage(file: string, root: string): ImageCheck {
  let real: string;
  let realRoot: string;
  try {
    real = fs.realpathSync(file);
    realRoot = fs.realpathSync(root);
  } catch {
    return { ok: false, problem: 'missing' };
  }
  if (real !== realRoot && !real.startsWith(realRoot.endsWith(path.sep) ? realRoot : realRoot + path.sep)) {
    return { ok: false, problem: `outside the dataset folder ${root} (it leads to ${real}); skipped` };
  }
  const stat = fs.statSync(real);
  // Not only a size matter: reading a FIFO or a device (a link to /dev/zero) would block or never end.
  if (!stat.isFile()) return { ok: false, problem: 'not a regular file' };
  if (stat.size === 0) return { ok: false, problem: 'empty file (0 bytes)' };
  if (stat.size > MAX_IMAGE_BYTES) return { ok: false, problem: `file too large (${stat.size} bytes; the limit is ${MAX_IMAGE_BYTES})` };
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(real);
  } catch {
    return { ok: false, problem: 'missing' };
  }
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) {
    const tooLarge = oversized(jpegSize(bytes));
    if (tooLarge) return { ok: false, problem: tooLarge };
    return isDecodableJpeg(bytes) ? { ok: true, bytes, mime: 'image/jpeg' } : { ok: false, problem: 'not a decodable JPEG' };
  }
  if (bytes.subarray(0, 8).equals(PNG_SIGNATURE)) {
    const tooLarge = oversized(pngSize(bytes));
    if (tooLarge) return { ok: false, problem: tooLarge };
    return isDecodablePng(bytes) ? { ok: true, bytes, mime: 'image/png' } : { ok: false, problem: 'not a decodable PNG' };
  }
  return { ok: false, problem: 'not a JPEG or PNG image' };
}

function oversized(size: { width: number; height: number } | null): string | null {
  if (!size || size.width * size.height <= MAX_PIXELS) return null;
  return `declares ${size.width} × ${size.height} pixels, over the ${MAX_PIXELS / 1e6}-megapixel limit; not decoded`;
}

/** Width and height from IHDR (the first chunk), or null when the header is cut short. */
function pngSize(bytes: Buffer): { width: number; height: number } | null {
  if (bytes.length < 24 || bytes.toString('latin1', 12, 16) !== 'IHDR') return null;
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

/** Width and height from the first SOFn marker segment, walking the marker segments before it. */
function jpegSize(bytes: Buffer): { width: number; height: number } | null {
  let pos = 2;
  while (pos + 4 <= bytes.length) {
    if (bytes[pos] !== 0xff) return null;
    const marker = bytes[pos + 1];
    if (marker === 0xff) {
      pos++; // fill byte
      continue;
    }
    const length = bytes.readUInt16BE(pos + 2);
    // SOF0…SOF15 except DHT (C4), JPG (C8) and DAC (CC) carry the frame size.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (pos + 9 > bytes.length) return null;
      return { height: bytes.readUInt16BE(pos + 5), width: bytes.readUInt16BE(pos + 7) };
    }
    if (marker === 0xda) return null; // start of scan before any frame header
    pos += 2 + length;
  }
  return null;
}

function isDecodableJpeg(bytes: Buffer): boolean {
  try {
    const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, maxResolutionInMP: MAX_PIXELS / 1e6, maxMemoryUsageInMB: 256 });
    return img.width > 0 && img.height > 0;
  } catch {
    return false;
  }
}

export function isDecodablePng(bytes: Buffer): boolean {
  let pos = 8;
  let header: { width: number; height: number; bitDepth: number; colorType: number; interlace: number } | null = null;
  const idat: Buffer[] = [];
  let ended = false;
  while (pos + 12 <= bytes.length && !ended) {
    const length = bytes.readUInt32BE(pos);
    const type = bytes.toString('latin1', pos + 4, pos + 8);
    const dataEnd = pos + 8 + length;
    if (dataEnd + 4 > bytes.length) return false;
    if (zlib.crc32(bytes.subarray(pos + 4, dataEnd)) !== bytes.readUInt32BE(dataEnd)) return false;
    const data = bytes.subarray(pos + 8, dataEnd);
    if (type === 'IHDR') {
      if (length !== 13) return false;
      header = {
        width: data.readUInt32BE(0),
        height: data.readUInt32BE(4),
        bitDepth: data[8],
        colorType: data[9],
        interlace: data[12]
      };
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') ended = true;
    pos = dataEnd + 4;
  }
  if (!header || !ended || idat.length === 0 || header.width === 0 || header.height === 0) return false;
  if (header.width * header.height > MAX_PIXELS) return false;
  const channels = PNG_CHANNELS[header.colorType];
  if (!channels) return false;
  const rowBytes = Math.ceil((header.width * channels * header.bitDepth) / 8);
  const expected = header.height * (1 + rowBytes);
  let raw: Buffer;
  try {
    // Bounded: a few KB of IDAT may inflate to gigabytes (a zip bomb). Adam7 adds at most a filter byte
    // and a partial byte per row of each of its 7 passes, hence the margin.
    raw = zlib.inflateSync(Buffer.concat(idat), { maxOutputLength: expected + 14 * (header.height + 8) });
  } catch {
    return false;
  }
  if (header.interlace !== 0) return raw.length > 0; // Adam7 pass sizes are not worth recomputing here
  return raw.length >= expected;
}
