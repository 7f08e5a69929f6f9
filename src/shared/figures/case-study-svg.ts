// The case study as the paper's Figure 4 lays it out, built from the data (never a screenshot): the user's
// history strip (posters and titles, the held-out item last), then one row per model with the ID, title and
// poster of its top items, the hits (the held-out item) framed. Full page width (7 in); user units are points.
import { MODEL_CATALOG } from '../models';
import type { CaseStudy, HistoryEntry, ItemSummary } from '../types';
import { COLORS, FIGURE_WIDTH_PT, figureHeight, n, svgDocument, text, truncate, wrapText, xml, type Figure } from './svg';

export interface CaseStudyFigureOptions {
  /** Items per model row (the view's top-k). */
  k?: number;
  /** History items shown before the held-out one (the newest ones); default k − 1, so the strip lines up with the rows. */
  historyItems?: number;
}

const MARGIN = 12;
const LABEL_W = 66;
const GAP = 10;
const TOP_LINE = 10; // rank / badge line above a poster
const META_SIZE = 5.5;
const TITLE_SIZE = 6;
const TITLE_LINES = 2;
const LABEL_SIZE = 7.5;

/** The catalogue's label of a run's model ("SASRec", "ALMOSTREC"), else the kind as stored. */
function modelLabel(kind: string): string {
  return MODEL_CATALOG.find((m) => m.kind === kind)?.label ?? kind;
}

interface Cell {
  item: ItemSummary;
  /** Small text above the poster (a rank, "held-out"). */
  top: string;
  mark: 'hit' | 'held-out' | null;
}

export function caseStudyFigure(study: CaseStudy, options: CaseStudyFigureOptions = {}): Figure {
  const k = Math.max(1, options.k ?? 10);
  const inputs = study.history.filter((h) => !(h.role === 'test' && h.item.id === study.heldOut.item.id));
  const historyShown = Math.max(0, options.historyItems ?? k - 1);
  const shown: HistoryEntry[] = historyShown > 0 ? inputs.slice(-historyShown) : [];
  const columns = Math.max(k, shown.length + 1);
  const cellW = (FIGURE_WIDTH_PT - 2 * MARGIN - LABEL_W) / columns;
  const posterW = Math.min(cellW - 5, 44);
  const posterH = posterW * 1.5;
  const rowH = TOP_LINE + posterH + 3 + META_SIZE + 2 + TITLE_LINES * (TITLE_SIZE + 1) + 4;

  const cellsOf = (cells: Cell[], y: number, rowClass: string): string => {
    let out = '';
    cells.forEach((c, i) => {
      const x = MARGIN + LABEL_W + i * cellW + (cellW - posterW) / 2;
      out += `<g class="cell${c.mark ? ` ${c.mark}` : ''}" data-item="${xml(c.item.externalId)}"${c.mark === 'hit' ? ' data-hit="true"' : ''}>\n`;
      out += text(x, y + TOP_LINE - 4, c.top, META_SIZE, `fill="${c.mark === 'held-out' ? COLORS.heldOut : c.mark === 'hit' ? COLORS.hit : COLORS.muted}"${c.mark ? ' font-weight="bold"' : ''}`);
      const py = y + TOP_LINE;
      if (c.item.imageUrl) {
        out += `<image x="${n(x)}" y="${n(py)}" width="${n(posterW)}" height="${n(posterH)}" preserveAspectRatio="xMidYMid slice" href="${xml(c.item.imageUrl)}" xlink:href="${xml(c.item.imageUrl)}"/>\n`;
      } else {
        out += `<rect x="${n(x)}" y="${n(py)}" width="${n(posterW)}" height="${n(posterH)}" fill="${COLORS.noImage}"/>\n`;
        out += text(x + posterW / 2, py + posterH / 2, 'no image', META_SIZE, `fill="${COLORS.muted}" text-anchor="middle"`);
      }
      if (c.mark) {
        const color = c.mark === 'hit' ? COLORS.hit : COLORS.heldOut;
        const dash = c.mark === 'held-out' ? ' stroke-dasharray="3 1.5"' : '';
        out += `<rect class="mark" x="${n(x - 1.5)}" y="${n(py - 1.5)}" width="${n(posterW + 3)}" height="${n(posterH + 3)}" fill="none" stroke="${color}" stroke-width="2"${dash}/>\n`;
      }
      const my = py + posterH + 3 + META_SIZE;
      out += text(x, my, truncate(`ID ${c.item.externalId}`, posterW + 3, META_SIZE), META_SIZE, `fill="${COLORS.muted}"`);
      wrapText(c.item.title, cellW - 3, TITLE_SIZE, TITLE_LINES).forEach((line, li) => {
        out += text(x, my + 2 + (li + 1) * (TITLE_SIZE + 1), line, TITLE_SIZE, 'class="title"');
      });
      out += '</g>\n';
    });
    return `<g class="${rowClass}">\n${out}</g>\n`;
  };

  const label = (lines: { s: string; size: number; bold?: boolean; color?: string }[], y: number): string =>
    lines
      .map((l, i) =>
        text(MARGIN, y + TOP_LINE + 8 + i * 9, truncate(l.s, LABEL_W - 6, l.size), l.size, `${l.bold ? 'font-weight="bold" ' : ''}fill="${l.color ?? COLORS.text}"`)
      )
      .join('');

  let body = '';
  let y = MARGIN;
  const historyCells: Cell[] = [
    ...shown.map((h, i) => ({ item: h.item, top: i === 0 && inputs.length > shown.length ? `… ${inputs.length - shown.length} earlier` : '', mark: null })),
    { item: study.heldOut.item, top: 'held-out', mark: 'held-out' as const }
  ];
  body += `<g class="history" data-user="${xml(study.user.externalId)}">\n`;
  body += label(
    [
      { s: 'History', size: LABEL_SIZE, bold: true },
      { s: `user ${study.user.externalId}`, size: META_SIZE + 0.5, color: COLORS.muted },
      { s: `${inputs.length} items`, size: META_SIZE, color: COLORS.muted },
      { s: 'oldest → newest', size: META_SIZE, color: COLORS.muted }
    ],
    y
  );
  body += cellsOf(historyCells, y, 'strip');
  body += '</g>\n';
  y += rowH + GAP / 2;
  body += `<line x1="${MARGIN}" x2="${n(FIGURE_WIDTH_PT - MARGIN)}" y1="${n(y)}" y2="${n(y)}" stroke="${COLORS.border}" stroke-width="0.6"/>\n`;
  y += GAP / 2;

  for (const col of study.columns) {
    const recs = col.recommendations.slice(0, k);
    const rank = col.targetRank >= 0 ? (col.targetRank + 1).toLocaleString('en-US') : '—';
    body += `<g class="model-row" data-run="${col.runId}" data-model="${xml(col.model)}">\n`;
    body += label(
      [
        { s: modelLabel(col.model), size: LABEL_SIZE, bold: true },
        { s: `run #${col.runId}`, size: META_SIZE + 0.5, color: COLORS.muted },
        { s: `held-out at rank ${rank}`, size: META_SIZE, color: col.targetRank >= 0 && col.targetRank < k ? COLORS.hit : COLORS.muted }
      ],
      y
    );
    body += cellsOf(
      recs.map((r, i) => ({ item: r.item, top: r.hit ? `${i + 1} · hit` : String(i + 1), mark: r.hit ? 'hit' : null })),
      y,
      'recs'
    );
    body += '</g>\n';
    y += rowH + GAP;
  }

  // Key: what the frames mean, so the figure reads without the app.
  const ky = y + 2;
  body += `<rect x="${MARGIN}" y="${n(ky - 6)}" width="8" height="7" fill="none" stroke="${COLORS.heldOut}" stroke-width="1.5" stroke-dasharray="3 1.5"/>\n`;
  body += text(MARGIN + 12, ky, 'held-out next item (test)', META_SIZE + 0.5, `fill="${COLORS.muted}"`);
  body += `<rect x="${MARGIN + 110}" y="${n(ky - 6)}" width="8" height="7" fill="none" stroke="${COLORS.hit}" stroke-width="1.5"/>\n`;
  body += text(MARGIN + 122, ky, `hit: the held-out item in a model's top-${k} (full ranking, history excluded)`, META_SIZE + 0.5, `fill="${COLORS.muted}"`);
  const heightPt = figureHeight(ky + MARGIN);

  const title = `Case study: user ${study.user.externalId}, ${study.columns.map((c) => modelLabel(c.model)).join(', ') || 'no models'}`;
  return { svg: svgDocument(FIGURE_WIDTH_PT, heightPt, title, body), widthPt: FIGURE_WIDTH_PT, heightPt };
}
