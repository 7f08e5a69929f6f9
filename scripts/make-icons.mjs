// `npm run icons`: every app icon from the one source, build/icon.svg. resvg renders each PNG size straight
// from the vector (sharper at 16 px than scaling a big bitmap down); png2icons packs the 1024 px render into
// the macOS .icns and the Windows .ico. electron-builder reads build/icon.icns (mac), build/icon.ico (win)
// and build/icons/<N>x<N>.png (Linux). `--out DIR` writes there instead of build/ (the packaging test
// regenerates into a temporary folder and compares, so the committed icons cannot drift from the SVG).
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Resvg } from '@resvg/resvg-js';
import png2icons from 'png2icons';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'build', 'icon.svg');
const outFlag = process.argv.indexOf('--out');
if (outFlag >= 0 && !process.argv[outFlag + 1]) throw new Error('--out needs a folder');
const buildDir = outFlag >= 0 ? resolve(process.argv[outFlag + 1]) : join(root, 'build');
/** The sizes desktop environments look up in the hicolor theme, plus 1024 for HiDPI docks. */
const LINUX_SIZES = [16, 24, 32, 48, 64, 128, 256, 512, 1024];

/** Writes through a temporary file and a rename, so an interrupted run never leaves half an icon. */
function writeAtomic(file, data) {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
  console.log(`${relative(process.cwd(), file)}  ${data.length} bytes`);
}

function render(svg, size) {
  return new Resvg(svg, { fitTo: { mode: 'width', value: size }, background: 'rgba(0,0,0,0)' }).render().asPng();
}

let svg;
try {
  svg = readFileSync(source);
} catch (e) {
  throw new Error(`${relative(root, source)}: cannot read the icon source (${e.message})`);
}
mkdirSync(join(buildDir, 'icons'), { recursive: true });
const pngs = new Map(LINUX_SIZES.map((size) => [size, render(svg, size)]));
for (const [size, png] of pngs) writeAtomic(join(buildDir, 'icons', `${size}x${size}.png`), png);
const largest = pngs.get(1024);

// png2icons returns null instead of throwing when it cannot encode; say which file failed.
const icns = png2icons.createICNS(largest, png2icons.BICUBIC2, 0);
if (!icns) throw new Error('png2icons could not create build/icon.icns from the 1024 px render');
writeAtomic(join(buildDir, 'icon.icns'), icns);
// PNG-compressed entries, as Windows Vista+ reads them; forWinExe orders the sizes as the exe resource expects.
const ico = png2icons.createICO(largest, png2icons.BICUBIC2, 0, true, true);
if (!ico) throw new Error('png2icons could not create build/icon.ico from the 1024 px render');
writeAtomic(join(buildDir, 'icon.ico'), ico);
