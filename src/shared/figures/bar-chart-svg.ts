// Grouped bar charts as a publication figure (the Ablation view's chart, the paper's Figure 3): one panel per
// entry, stacked at full page width so every variant's label and value stays readable.
import { niceMax, wrapLabel, type BarGroup, type BarSeries } from './bars';
import { COLORS, FIGURE_WIDTH_PT, figureHeight, n, svgDocument, text, textWidthEm, xml, type Figure } from './svg';

export interface BarPanel {
  title: string;
  groups: BarGroup[];
  series: BarSeries[];
}

const MARGIN = 12;
const AXIS_W = 30;
const PLOT_H = 120;
const TITLE_SIZE = 8;
const TICK_SIZE = 6;
const LABEL_SIZE = 6.5;
const VALUE_SIZE = 5.5;

function panelSvg(p: BarPanel, top: number): { svg: string; height: number } {
  const left = MARGIN + AXIS_W;
  const innerW = FIGURE_WIDTH_PT - left - MARGIN;
  const groupW = p.groups.length > 0 ? innerW / p.groups.length : innerW;
  const barW = Math.min(24, (groupW * 0.7) / Math.max(1, p.series.length));
  const labelChars = Math.max(4, Math.floor((groupW - 4) / (LABEL_SIZE * 0.6)));
  const labelLines = Math.max(1, ...p.groups.map((g) => wrapLabel(g.label, labelChars).length));
  const plotTop = top + TITLE_SIZE + 6;
  const yMax = niceMax(p.groups.flatMap((g) => g.values));
  const sy = (v: number) => plotTop + PLOT_H - (v / yMax) * PLOT_H;

  let out = `<g class="panel">\n`;
  out += text(MARGIN, top + TITLE_SIZE, p.title, TITLE_SIZE, 'font-weight="bold"');
  // The series key, right-aligned on the title's line: one swatch and name per series.
  let kx = FIGURE_WIDTH_PT - MARGIN;
  for (const s of [...p.series].reverse()) {
    kx -= textWidthEm(s.name) * LABEL_SIZE;
    out += text(kx, top + TITLE_SIZE, s.name, LABEL_SIZE);
    kx -= 10;
    out += `<rect x="${n(kx)}" y="${n(top + TITLE_SIZE - 6.5)}" width="7" height="7" fill="${xml(s.color)}"/>\n`;
    kx -= 10;
  }
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    out += `<line x1="${n(left)}" x2="${n(left + innerW)}" y1="${n(sy(v))}" y2="${n(sy(v))}" stroke="${COLORS.border}" stroke-width="0.5"${i > 0 ? ' stroke-dasharray="2 2"' : ''}/>\n`;
    out += text(left - 3, sy(v) + TICK_SIZE / 3, v.toFixed(yMax >= 1 ? 2 : 3), TICK_SIZE, `fill="${COLORS.muted}" text-anchor="end"`);
  }
  p.groups.forEach((g, gi) => {
    const gx = left + gi * groupW;
    out += `<g class="group" data-key="${xml(g.key)}"${g.highlight ? ' data-highlight="true"' : ''}>\n`;
    if (g.highlight) out += `<rect x="${n(gx + 1)}" y="${n(plotTop)}" width="${n(groupW - 2)}" height="${PLOT_H}" fill="${COLORS.band}"/>\n`;
    const x0 = gx + (groupW - barW * p.series.length) / 2;
    p.series.forEach((s, si) => {
      const v = g.values[si];
      if (v == null || !Number.isFinite(v)) return;
      const y = sy(Math.max(0, v)); // metrics are never negative; a bar starts at 0 whatever it holds
      const x = x0 + si * barW;
      out += `<rect class="bar" x="${n(x + 0.5)}" y="${n(y)}" width="${n(barW - 1)}" height="${n(plotTop + PLOT_H - y)}" fill="${xml(s.color)}"><title>${xml(`${g.label} · ${s.name}: ${v.toFixed(4)}`)}</title></rect>\n`;
      const value = v.toFixed(3);
      if (textWidthEm(value) * VALUE_SIZE <= barW + 2) out += text(x + barW / 2, y - 2, value, VALUE_SIZE, `fill="${COLORS.muted}" text-anchor="middle"`);
    });
    if (g.note && g.values.every((v) => v == null)) {
      out += text(gx + groupW / 2, plotTop + PLOT_H - 6, g.note, LABEL_SIZE, `fill="${COLORS.muted}" font-style="italic" text-anchor="middle"`);
    }
    wrapLabel(g.label, labelChars).forEach((line, li) => {
      out += text(gx + groupW / 2, plotTop + PLOT_H + 9 + li * (LABEL_SIZE + 1.5), line, LABEL_SIZE, `text-anchor="middle"${g.highlight ? ' font-weight="bold"' : ''}`);
    });
    out += '</g>\n';
  });
  out += `<line x1="${n(left)}" x2="${n(left)}" y1="${n(plotTop)}" y2="${n(plotTop + PLOT_H)}" stroke="${COLORS.muted}" stroke-width="0.6"/>\n`;
  out += '</g>\n';
  return { svg: out, height: TITLE_SIZE + 6 + PLOT_H + 9 + labelLines * (LABEL_SIZE + 1.5) };
}

/** Panels stacked top to bottom, each with its title and series key. */
export function barChartFigure(panels: readonly BarPanel[], title: string): Figure {
  let body = '';
  let y = MARGIN;
  for (const p of panels) {
    const { svg, height } = panelSvg(p, y);
    body += svg;
    y += height + 10;
  }
  const heightPt = figureHeight(y + MARGIN - 10);
  return { svg: svgDocument(FIGURE_WIDTH_PT, heightPt, title, body), widthPt: FIGURE_WIDTH_PT, heightPt };
}
