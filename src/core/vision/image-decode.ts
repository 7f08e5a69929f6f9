// Decodes stored item images to 8-bit RGB. JPEG goes through jpeg-js. No PNG decoder is a dependency (the
// one dependency budget went to the encoder's weights), so PNG is decoded by hand: zlib inflate plus the
// five scanline filters of the PNG spec; interlaced (Adam7) files are refused.
import zlib from 'node:zlib';
import jpeg from 'jpeg-js';

export interface RgbImage {
  width: number;
  height: number;
  /** width × height × 3, row-major. */
  data: Uint8Array;
}

/** Decodes a JPEG or PNG by its magic bytes; throws an Error saying why for anything else. */
export function decodeRgb(bytes: Uint8Array): RgbImage {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return decodeJpeg(bytes);
  if (bytes.length >= 8 && Buffer.from(bytes.subarray(0, 8)).equals(PNG_SIGNATURE)) return decodePng(Buffer.from(bytes));
  throw new Error('not a JPEG or PNG image');
}

function decodeJpeg(bytes: Uint8Array): RgbImage {
  const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: 40, maxMemoryUsageInMB: 256 });
  const n = img.width * img.height;
  const data = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    data[i * 3] = img.data[i * 4];
    data[i * 3 + 1] = img.data[i * 4 + 1];
    data[i * 3 + 2] = img.data[i * 4 + 2];
  }
  return { width: img.width, height: img.height, data };
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

function decodePng(bytes: Buffer): RgbImage {
  let pos = 8;
  let width = 0;
  let height = 0;
  let bitDepth = 0;
  let colorType = -1;
  let palette: Buffer | null = null;
  const idat: Buffer[] = [];
  while (pos + 8 <= bytes.length) {
    const length = bytes.readUInt32BE(pos);
    const type = bytes.toString('latin1', pos + 4, pos + 8);
    const data = bytes.subarray(pos + 8, pos + 8 + length);
    if (data.length !== length) throw new Error('truncated PNG chunk');
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      bitDepth = data[8];
      colorType = data[9];
      if (data[12] !== 0) throw new Error('interlaced PNG is not supported');
    } else if (type === 'PLTE') palette = data;
    else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    pos += 12 + length;
  }
  const channels = PNG_CHANNELS[colorType];
  if (!channels || width < 1 || height < 1 || ![1, 2, 4, 8, 16].includes(bitDepth)) throw new Error('unsupported PNG header');
  if (colorType === 3 && !palette) throw new Error('palette PNG without PLTE');
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const bitsPerPixel = channels * bitDepth;
  const stride = Math.ceil((width * bitsPerPixel) / 8);
  const bpp = Math.max(1, bitsPerPixel >> 3);
  if (raw.length < height * (stride + 1)) throw new Error('PNG image data is truncated');
  const rows = unfilter(raw, height, stride, bpp);
  const out = new Uint8Array(width * height * 3);
  // Sample k of a row, scaled to 8 bits (16-bit keeps the high byte; 1/2/4-bit grey scales up, palette indexes).
  const sample = (row: Uint8Array, k: number): number => {
    if (bitDepth === 8) return row[k];
    if (bitDepth === 16) return row[k * 2];
    const perByte = 8 / bitDepth;
    const v = (row[Math.floor(k / perByte)] >> (8 - bitDepth * ((k % perByte) + 1))) & ((1 << bitDepth) - 1);
    return colorType === 3 ? v : Math.round((v * 255) / ((1 << bitDepth) - 1));
  };
  for (let y = 0; y < height; y++) {
    const row = rows.subarray(y * stride, (y + 1) * stride);
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      if (colorType === 3) {
        const idx = sample(row, x) * 3;
        out.set(palette!.subarray(idx, idx + 3), o);
      } else if (channels >= 3) {
        for (let c = 0; c < 3; c++) out[o + c] = sample(row, x * channels + c);
      } else {
        out.fill(sample(row, x * channels), o, o + 3);
      }
    }
  }
  return { width, height, data: out };
}

/** Undoes the per-scanline filters (None, Sub, Up, Average, Paeth) into height × stride bytes. */
function unfilter(raw: Buffer, height: number, stride: number, bpp: number): Uint8Array {
  const out = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const cur = y * stride;
    const prev = (y - 1) * stride;
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? out[cur + i - bpp] : 0;
      const b = y > 0 ? out[prev + i] : 0;
      const c = y > 0 && i >= bpp ? out[prev + i - bpp] : 0;
      let pred = 0;
      if (filter === 1) pred = a;
      else if (filter === 2) pred = b;
      else if (filter === 3) pred = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else if (filter !== 0) throw new Error(`PNG scanline ${y} has unknown filter ${filter}`);
      out[cur + i] = (src[i] + pred) & 0xff;
    }
  }
  return out;
}
