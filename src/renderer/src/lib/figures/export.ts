// A figure (src/shared/figures) downloaded as SVG, or as a 300-dpi PNG rasterised from that same SVG on a
// canvas: what the CLI writes with resvg, drawn by the browser instead.
import { withPngDpi } from '../../../../shared/figures/png-dpi';
import { pngSize, PNG_DPI, type Figure } from '../../../../shared/figures/svg';
import { downloadBlob } from '../download';

export type FigureFormat = 'svg' | 'png';

/** Decodes the SVG as an image. A data: URL, not a blob: one: the page's CSP allows images from data: only. */
function loadSvg(svg: string): Promise<HTMLImageElement> {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error('The figure could not be drawn (the browser refused its SVG)'));
    img.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
  });
}

/** The figure as PNG bytes at `dpi`, its pHYs chunk saying so. */
export async function figurePng(figure: Figure, dpi = PNG_DPI): Promise<Uint8Array> {
  const { width, height } = pngSize(figure, dpi);
  const img = await loadSvg(figure.svg);
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new Error('No 2D canvas in this browser');
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, width, height);
  ctx.drawImage(img, 0, 0, width, height);
  const blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, 'image/png'));
  if (!blob) throw new Error(`The figure (${width} × ${height} px) is too large for this browser's canvas`);
  return withPngDpi(new Uint8Array(await blob.arrayBuffer()), dpi);
}

/** Downloads `figure` as `<basename>.svg` or `<basename>.png`. */
export async function downloadFigure(figure: Figure, basename: string, format: FigureFormat): Promise<void> {
  if (format === 'svg') {
    downloadBlob(`${basename}.svg`, new Blob([figure.svg], { type: 'image/svg+xml' }));
    return;
  }
  const png = await figurePng(figure);
  downloadBlob(`${basename}.png`, new Blob([png.slice().buffer], { type: 'image/png' }));
}
