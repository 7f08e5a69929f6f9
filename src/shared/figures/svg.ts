// What every figure builder shares: publication size, XML escaping and text fitting. Pure string work, no DOM
// and no Node, so the renderer (canvas) and the CLI (resvg) draw the same SVG.

/** Full page width of a two-column paper (ACM, IEEE): figures are laid out at this width. */
export const FIGURE_WIDTH_IN = 7;
/** Print resolution of the PNG exports. */
export const PNG_DPI = 300;
/** SVG user units are points (1/72 in): font sizes read as in a word processor, and width="7in" is exact. */
export const PT_PER_IN = 72;
export const FIGURE_WIDTH_PT = FIGURE_WIDTH_IN * PT_PER_IN;
/** Generic families only: the figure must render wherever it is opened, with whatever fonts exist there. */
export const FONT_FAMILY = 'sans-serif';

export const COLORS = {
  text: '#1d2330',
  muted: '#5f6b7a',
  border: '#c9d1dc',
  band: '#eef3fc',
  noImage: '#e6eaf0',
  hit: '#1f8a4c',
  heldOut: '#c2710c'
} as const;

/** A finished figure: the SVG text and its size in points. */
export interface Figure {
  svg: string;
  widthPt: number;
  heightPt: number;
}

/**
 * A figure's height rounded up to a whole sixth of an inch (12 pt): its PNG then has a whole number of
 * pixels at 96, 150, 300 or 600 dpi, so every rasteriser agrees on the size.
 */
export function figureHeight(contentPt: number): number {
  return Math.ceil(contentPt / 12) * 12;
}

/** The PNG size of a figure at `dpi` (pixels). */
export function pngSize(f: Pick<Figure, 'widthPt' | 'heightPt'>, dpi = PNG_DPI): { width: number; height: number } {
  return { width: Math.round((f.widthPt / PT_PER_IN) * dpi), height: Math.round((f.heightPt / PT_PER_IN) * dpi) };
}

// Characters XML 1.0 forbids even escaped (C0 controls but tab/LF/CR, lone surrogates, U+FFFE/U+FFFF): a
// title holding one would make the whole file unreadable, so they are dropped.
// eslint-disable-next-line no-control-regex
const XML_INVALID = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Text or attribute value → XML-safe text (escapes & < > " '). */
export function xml(s: string): string {
  return s
    .replace(XML_INVALID, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** A coordinate with at most 2 decimals (keeps the files small and diffs stable). */
export function n(x: number): string {
  return String(Math.round(x * 100) / 100);
}

/**
 * Estimated advance width of `s` in a sans-serif font, in units of the font size. A pure module has no font
 * metrics (no DOM, and the renderer and resvg may pick different fonts), so this errs wide: text fitted with
 * it stays inside its box in DejaVu Sans, Liberation Sans/Arial and Helvetica.
 */
export function textWidthEm(s: string): number {
  let w = 0;
  for (const ch of s) {
    if (/[iljtfI.,:;'|!()[\] ]/.test(ch)) w += 0.34;
    else if (/[mwMW@%]/.test(ch)) w += 0.92;
    else if (/[A-Z]/.test(ch)) w += 0.72;
    else if (/[\u1100-\u9fff\uac00-\ud7af\uff00-\uffef]/.test(ch)) w += 1;
    else w += 0.6;
  }
  return w;
}

/** Cuts `s` to fit `maxWidth` at `fontSize`, ending with "…" when cut. */
export function truncate(s: string, maxWidth: number, fontSize: number): string {
  if (textWidthEm(s) * fontSize <= maxWidth) return s;
  const chars = [...s];
  while (chars.length > 0 && textWidthEm(chars.join('') + '…') * fontSize > maxWidth) chars.pop();
  return chars.join('').trimEnd() + '…';
}

/**
 * Word-wraps `s` into at most `maxLines` lines of `maxWidth`; the last line is truncated with "…" when the
 * text does not fit, and a word longer than a line is cut.
 */
export function wrapText(s: string, maxWidth: number, fontSize: number, maxLines: number): string[] {
  const fits = (t: string) => textWidthEm(t) * fontSize <= maxWidth;
  const words = s.split(/\s+/).filter(Boolean);
  const lines: string[] = [];
  let i = 0;
  while (i < words.length && lines.length < maxLines) {
    let line = words[i++];
    while (i < words.length && fits(`${line} ${words[i]}`)) line = `${line} ${words[i++]}`;
    lines.push(line);
  }
  if (lines.length === 0) return [];
  const last = lines.length - 1;
  const rest = i < words.length ? ` ${words.slice(i).join(' ')}` : '';
  if (rest || !fits(lines[last])) lines[last] = truncate(lines[last] + rest, maxWidth, fontSize);
  // Earlier lines can only overflow when one word is longer than the line.
  for (let l = 0; l < last; l++) if (!fits(lines[l])) lines[l] = truncate(lines[l], maxWidth, fontSize);
  return lines;
}

/** The <svg> root: physical size in points (what print and LaTeX read; 504pt = 7in), user units in points. */
export function svgDocument(widthPt: number, heightPt: number, title: string, body: string): string {
  const w = n(widthPt);
  const h = n(heightPt);
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" version="1.1" ` +
    `width="${w}pt" height="${h}pt" viewBox="0 0 ${w} ${h}" ` +
    `font-family="${FONT_FAMILY}" fill="${COLORS.text}">\n` +
    `<title>${xml(title)}</title>\n` +
    `<rect width="${w}" height="${h}" fill="#ffffff"/>\n` +
    body +
    `</svg>\n`
  );
}

/** One <text> element; `attrs` are written as given (numbers through n()). */
export function text(x: number, y: number, content: string, size: number, attrs = ''): string {
  return `<text x="${n(x)}" y="${n(y)}" font-size="${n(size)}"${attrs ? ` ${attrs}` : ''}>${xml(content)}</text>\n`;
}
