// Image bytes for the corpus, made at test time: small valid posters and the broken or hostile ones.
// The 30,000 × 30,000 images are headers that say so, never the pixels.
import zlib from 'node:zlib';
import jpeg from 'jpeg-js';

export function tinyJpeg(): Buffer {
  const width = 4;
  const height = 6;
  return Buffer.from(jpeg.encode({ data: Buffer.alloc(width * height * 4, 180), width, height }, 90).data);
}

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** An RGB PNG with the given header size and IDAT payload (already deflated). */
export function png(width: number, height: number, idat: Buffer): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', idat),
    pngChunk('IEND', Buffer.alloc(0))
  ]);
}

export function tinyPng(): Buffer {
  return png(2, 2, zlib.deflateSync(Buffer.from([0, 255, 0, 0, 0, 255, 0, 0, 0, 0, 255, 255, 255, 255])));
}

/** 30,000 × 30,000 in IHDR, with one scanline of data: a decoder would allocate 2.7 GB for it. */
export function hugeDeclaredPng(): Buffer {
  return png(30_000, 30_000, zlib.deflateSync(Buffer.alloc(1 + 30_000 * 3)));
}

/** A real JPEG stream whose frame header (SOF0) is rewritten to 30,000 × 30,000. */
export function hugeDeclaredJpeg(): Buffer {
  const bytes = tinyJpeg();
  for (let pos = 2; pos + 9 <= bytes.length; ) {
    const marker = bytes[pos + 1];
    if (marker === 0xc0) {
      bytes.writeUInt16BE(30_000, pos + 5); // height
      bytes.writeUInt16BE(30_000, pos + 7); // width
      return bytes;
    }
    pos += 2 + bytes.readUInt16BE(pos + 2);
  }
  throw new Error('jpeg-js wrote no SOF0 segment');
}

/** 1,000 × 1,000 (within the pixel limit) but an IDAT that inflates to 64 MB of zeros: a zip bomb. */
export function zipBombPng(): Buffer {
  return png(1000, 1000, zlib.deflateSync(Buffer.alloc(64 << 20), { level: 9 }));
}

export function badCrcPng(): Buffer {
  const bytes = tinyPng();
  bytes[29] ^= 0xff; // the IHDR CRC
  return bytes;
}

export const GIF = Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00;', 'latin1');
