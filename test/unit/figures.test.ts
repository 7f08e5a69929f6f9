// The figure exports (issue 14 item 6): the case study (Figure 4) and ablation (Figure 3) SVG builders, the
// recommendations CSV, and the PNG rasteriser (resvg) with its 300-dpi pHYs chunk. Posters are generated here.
import { Resvg } from '@resvg/resvg-js';
import { describe, expect, it } from 'vitest';
import { figureToPng } from '../../src/core/figures/rasterize';
import { barChartFigure } from '../../src/shared/figures/bar-chart-svg';
import { caseStudyFigure } from '../../src/shared/figures/case-study-svg';
import { pngDimensions, pngDpi, withPngDpi } from '../../src/shared/figures/png-dpi';
import { caseStudyCsv, recommendationsCsv } from '../../src/shared/figures/recommendations-csv';
import { FIGURE_WIDTH_PT, pngSize, textWidthEm, wrapText, xml } from '../../src/shared/figures/svg';
import type { CaseStudy, HistoryEntry, ItemSummary } from '../../src/shared/types';

/** A 20×30 poster of one colour, as the catalog serves posters (a data: URL). */
function poster(color: string): string {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="20" height="30"><rect width="20" height="30" fill="${color}"/></svg>`;
  return `data:image/png;base64,${Buffer.from(new Resvg(svg).render().asPng()).toString('base64')}`;
}
const RED = poster('#d01010');

function item(id: number, title = `Movie ${id} (1999)`, imageUrl: string | null = RED): ItemSummary {
  return { id, externalId: String(1000 + id), title, genres: [], text: null, imageUrl, interactions: 5 };
}
const entry = (it: ItemSummary, role: HistoryEntry['role'] = 'train'): HistoryEntry => ({ item: it, timestamp: 1_000_000, rating: 4, role });

const NASTY = 'Tom & Jerry: <Cats> "Live" at O\'Hare\u0001';

function study(): CaseStudy {
  const history = Array.from({ length: 14 }, (_, i) => entry(item(i + 1, i === 13 ? NASTY : undefined, i === 12 ? null : RED)));
  const heldOut = entry(item(50, 'The Held-Out One (2001)'), 'test');
  const rec = (ids: number[]) => ids.map((id, rank) => ({ rank, score: 1 - rank / 10, item: id === 50 ? heldOut.item : item(id), hit: id === 50 }));
  return {
    datasetId: 1,
    user: { id: 7, externalId: '42', interactions: 16 },
    history,
    heldOut,
    columns: [
      { runId: 3, model: 'sasrec', label: 'sasrec · run 3', targetRank: 2, recommendations: rec([60, 61, 50, 62, 63, 64, 65, 66, 67, 68]) },
      { runId: 9, model: 'almostrec', label: 'almostrec · run 9', targetRank: 0, recommendations: rec([50, 70, 71, 72, 73, 74, 75, 76, 77, 78]) },
      { runId: 11, model: 'llara', label: 'llara · run 11', targetRank: 140, recommendations: rec([80, 81, 82, 83, 84, 85, 86, 87, 88, 89]) }
    ]
  };
}

/** The SVG parsed by resvg (throws on malformed XML) and its parts counted by pattern. */
function parse(svg: string): void {
  expect(() => new Resvg(svg)).not.toThrow();
}
const count = (s: string, re: RegExp) => (s.match(re) ?? []).length;

describe('case study figure (paper Figure 4)', () => {
  it('draws the history strip, one row per model with its top-k, and frames exactly the hits', () => {
    const fig = caseStudyFigure(study(), { k: 10 });
    parse(fig.svg);
    expect(fig.widthPt).toBe(FIGURE_WIDTH_PT);
    expect(fig.svg).toContain(`width="504pt" height="${fig.heightPt}pt" viewBox="0 0 504 ${fig.heightPt}"`);
    expect(fig.heightPt % 12).toBe(0);
    expect(count(fig.svg, /<g class="history"/g)).toBe(1);
    // The strip: the 9 newest of 14 history items, then the held-out item.
    const strip = fig.svg.slice(fig.svg.indexOf('<g class="history"'), fig.svg.indexOf('<g class="model-row"'));
    expect(count(strip, /<g class="cell/g)).toBe(10);
    expect(strip).toContain('data-item="1006"'); // 14 − 9 + 1 = the 6th item opens the strip
    expect(strip).not.toContain('data-item="1005"');
    expect(strip).toMatch(/<g class="cell held-out" data-item="1050"/);
    expect(strip).toContain('… 5 earlier');
    // The rows, in the study's order, 10 items each, with the model's label and the held-out item's rank.
    const rows = [...fig.svg.matchAll(/<g class="model-row" data-run="(\d+)" data-model="(\w+)">/g)].map((m) => [m[1], m[2]]);
    expect(rows).toEqual([['3', 'sasrec'], ['9', 'almostrec'], ['11', 'llara']]);
    for (const part of fig.svg.split('<g class="model-row"').slice(1)) expect(count(part, /<g class="cell/g)).toBe(10);
    expect(fig.svg).toContain('>SASRec</text>');
    expect(fig.svg).toContain('>ALMOSTREC</text>');
    expect(fig.svg).toContain('held-out at rank 3<');
    expect(fig.svg).toContain('held-out at rank 141<');
    // Hits: SASRec's 3rd and ALMOSTREC's 1st item, nothing of LLaRA's.
    expect(count(fig.svg, /data-hit="true"/g)).toBe(2);
    expect(fig.svg).toMatch(/data-run="3"[\s\S]*?<g class="cell hit" data-item="1050" data-hit="true">\n<text[^>]*>3 · hit</);
    expect(fig.svg).toMatch(/data-run="9"[^]*?<g class="cell hit" data-item="1050" data-hit="true">\n<text[^>]*>1 · hit</);
    const llara = fig.svg.slice(fig.svg.indexOf('data-run="11"'));
    expect(llara).not.toContain('data-hit');
    // Every framed poster is a hit or the held-out item: 2 hits + 1 held-out.
    expect(count(fig.svg, /<rect class="mark"/g)).toBe(3);
    // Posters are embedded (no external reference); a missing one is a labelled box.
    expect(count(fig.svg, /<image [^>]*href="data:image\/png;base64,/g)).toBe(9 + 1 + 30 - 1);
    expect(fig.svg).toContain('>no image</text>');
    expect(fig.svg).not.toMatch(/href="(?!data:)/);
  });

  it('escapes titles and drops characters XML forbids', () => {
    const s = study();
    s.history[13] = entry(item(14, 'A & B <i>"x"</i>'));
    const fig = caseStudyFigure(s, { k: 10 });
    parse(fig.svg);
    expect(fig.svg).toContain('>A &amp; B</text>');
    expect(fig.svg).toContain('>&lt;i&gt;&quot;x&quot;&lt;/i&gt;</text>');
    expect(fig.svg).not.toContain('<i>');
    expect(xml(NASTY)).toBe('Tom &amp; Jerry: &lt;Cats&gt; &quot;Live&quot; at O&apos;Hare');
    // User and model strings land in attributes too.
    s.user.externalId = 'u"1<';
    s.columns[0].model = 'x"y' as never;
    const odd = caseStudyFigure(s);
    parse(odd.svg);
    expect(odd.svg).toContain('data-user="u&quot;1&lt;"');
  });

  it('grows with the rows and keeps long titles inside their cell', () => {
    const one = caseStudyFigure({ ...study(), columns: study().columns.slice(0, 1) });
    const three = caseStudyFigure(study());
    expect(three.heightPt).toBeGreaterThan(one.heightPt);
    expect(three.heightPt / 72).toBeLessThan(9); // fits a page
    const lines = wrapText('Dr. Strangelove or: How I Learned to Stop Worrying and Love the Bomb (1964)', 38, 6, 2);
    expect(lines).toHaveLength(2);
    expect(lines[1].endsWith('…')).toBe(true);
    for (const l of lines) expect(textWidthEm(l) * 6).toBeLessThanOrEqual(38);
    expect(wrapText('Up (2009)', 38, 6, 2)).toEqual(['Up (2009)']);
  });
});

describe('ablation figure (paper Figure 3)', () => {
  const series = [
    { name: 'HR@10', color: '#3b6fd8' },
    { name: 'NDCG@10', color: '#c2710c' }
  ];
  const groups = [
    { key: '1', label: 'ALMOSTREC', values: [0.1548, 0.0779], highlight: true },
    { key: '2', label: 'w/o images', values: [0.1676, 0.0845] },
    { key: '3', label: 'concat layout (eq. 1)', values: [null, null], note: 'training…' },
    { key: '4', label: 'w/o <LoRA> & "text"', values: [0.2, 0.1] }
  ];

  it('draws one panel per chart, one bar per series and value, the full model on its band', () => {
    const fig = barChartFigure(
      [
        { title: 'HR@10 and NDCG@10 (test)', groups, series },
        { title: 'HR@20 and NDCG@20 (test)', groups, series }
      ],
      'Ablation study #1'
    );
    parse(fig.svg);
    expect(fig.widthPt).toBe(FIGURE_WIDTH_PT);
    expect(count(fig.svg, /<g class="panel">/g)).toBe(2);
    expect(count(fig.svg, /<rect class="bar"/g)).toBe(2 * 3 * 2);
    expect(count(fig.svg, /data-highlight="true"/g)).toBe(2);
    expect(fig.svg).toContain('>training…</text>');
    expect(fig.svg).toContain('&lt;LoRA&gt; &amp; &quot;text&quot;');
    // Bars on one scale: 0.2 tops the axis (niceMax 0.2), so its bar is the plot's full height.
    const heights = [...fig.svg.matchAll(/<rect class="bar"[^>]* height="([\d.]+)"/g)].map((m) => Number(m[1]));
    expect(Math.max(...heights)).toBe(120);
    expect(heights[0]).toBeCloseTo((0.1548 / 0.2) * 120, 1);
  });
});

describe('PNG export', () => {
  it('rasterises at 300 dpi: 2100 px across, the height to scale, pHYs saying 300 dpi', () => {
    const fig = caseStudyFigure(study());
    const png = figureToPng(fig);
    const size = pngDimensions(png);
    expect(size.width).toBe(2100);
    expect(size).toEqual(pngSize(fig));
    expect(size.height).toBe((fig.heightPt / 72) * 300);
    expect(pngDpi(png)).toBe(300);
    // Read back: the first poster of the history strip is red where the SVG put it.
    const decoded = new Resvg(fig.svg, { fitTo: { mode: 'width', value: 2100 } }).render();
    const at = (x: number, y: number) => Array.from(decoded.pixels.subarray((y * decoded.width + x) * 4, (y * decoded.width + x) * 4 + 3));
    const match = /<g class="cell" data-item="1006">\n<text[^>]*>[^<]*<\/text>\n<image x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"/.exec(fig.svg)!;
    const [x, y, w, h] = match.slice(1).map(Number);
    const scale = 2100 / 504;
    expect(at(Math.round((x + w / 2) * scale), Math.round((y + h / 2) * scale))).toEqual([208, 16, 16]);
  });

  it('replaces an existing pHYs and refuses what is not a PNG', () => {
    const png = figureToPng(barChartFigure([], 'empty'), 150);
    expect(pngDpi(png)).toBe(150);
    const again = withPngDpi(png, 600);
    expect(pngDpi(again)).toBe(600);
    expect(again.length).toBe(png.length);
    expect(pngDimensions(again)).toEqual(pngDimensions(png));
    expect(() => new Resvg(`<svg xmlns="http://www.w3.org/2000/svg"><image href="data:image/png;base64,${Buffer.from(again).toString('base64')}" width="10" height="10"/></svg>`).render()).not.toThrow();
    expect(() => withPngDpi(new TextEncoder().encode('<svg/>'), 300)).toThrow('Not a PNG file');
  });
});

describe('recommendations CSV', () => {
  it('writes user, rank, item id, title, score, hit, quoting what needs it', () => {
    const csv = recommendationsCsv([
      { user: '42', rank: 1, itemId: '1050', title: 'Plain', score: 0.5, hit: true },
      { user: '42', rank: 2, itemId: '7', title: 'Comma, "quoted"\nand a line', score: -1.234567891234, hit: false }
    ]);
    expect(csv).toBe('user,rank,item_id,title,score,hit\r\n42,1,1050,Plain,0.5,1\r\n42,2,7,"Comma, ""quoted""\nand a line",-1.23456789,0\r\n');
  });

  it('writes a case study column by column, ranks from 1', () => {
    const lines = caseStudyCsv(study()).trimEnd().split('\r\n');
    expect(lines[0]).toBe('run,model,user,rank,item_id,title,score,hit');
    expect(lines).toHaveLength(1 + 30);
    expect(lines[1]).toBe('3,sasrec,42,1,1060,Movie 60 (1999),1,0');
    expect(lines[3]).toBe('3,sasrec,42,3,1050,The Held-Out One (2001),0.8,1');
    expect(lines.filter((l) => l.endsWith(',1'))).toHaveLength(2);
  });
});
