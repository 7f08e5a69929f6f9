// A figure's SVG → PNG in Node (the CLI, tests), with resvg: the same SVG the renderer rasterises on a canvas.
import { Resvg } from '@resvg/resvg-js';
import { pngSize, PNG_DPI, type Figure } from '../../shared/figures/svg';
import { withPngDpi } from '../../shared/figures/png-dpi';

/** The figure at `dpi` (300 by default: 2100 px across the 7-in page), its pHYs chunk saying so. */
export function figureToPng(figure: Figure, dpi = PNG_DPI): Uint8Array {
  const { width } = pngSize(figure, dpi);
  const resvg = new Resvg(figure.svg, {
    fitTo: { mode: 'width', value: width },
    background: '#ffffff',
    // The SVG names the generic family only; resvg maps it to this one, found among the system fonts
    // (falling back to any installed font when it is missing).
    font: { loadSystemFonts: true, sansSerifFamily: 'DejaVu Sans', defaultFontFamily: 'DejaVu Sans' }
  });
  return withPngDpi(resvg.render().asPng(), dpi);
}
