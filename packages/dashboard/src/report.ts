import { createHash } from 'node:crypto';
import type { StudyStore } from '@primer-search/store';
import { StudyData, type CandidateDetail } from './data.js';
import { pageFile } from './server.js';

export type ReportFormat = 'html' | 'svg' | 'png';

/** JSON safe inside a <script> element. */
const scriptJson = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
const dataUrl = (js: string) => `data:text/javascript;base64,${Buffer.from(js, 'utf8').toString('base64')}`;

/**
 * The dashboard as one self-contained HTML file: the page, its styles, uPlot and the study's
 * data inlined, nothing fetched (it opens offline, from a mail attachment). Programs are
 * embedded for the `top` best candidates, their lineages, the seed, and the programs its
 * tables link to (a Pareto front's, retrainings' and fidelity measurements').
 */
export async function htmlReport(store: StudyStore, o: { top?: number; onProgress?: (done: number, total: number) => void } = {}): Promise<string> {
  const data = await StudyData.load(store);
  // every program's FLOPs, in slices so progress can be shown
  while (!data.flopsComplete) {
    data.planFlops(500);
    o.onProgress?.(data.points.flops.filter((f) => f !== null).length, data.points.id.length);
  }
  const ids = new Set<number>([0]);
  for (const e of data.summary.leaderboard.slice(0, o.top ?? 20)) for (const id of data.detail(e.id)?.lineage ?? []) ids.add(id);
  // the programs the report's tables link to: a Pareto front's, retrainings' and fidelity samples'
  for (const m of data.summary.front?.members ?? []) ids.add(m.id);
  for (const r of data.summary.retrains) for (const row of r.rows) if (row.candidate !== null) ids.add(row.candidate);
  for (const f of data.summary.fidelity) for (const p of f.points) ids.add(p.candidate);
  const details: Record<number, CandidateDetail> = {};
  for (const id of ids) {
    const d = data.detail(id);
    if (d) details[id] = d;
  }
  const report = {
    writtenAt: new Date().toISOString(),
    study: { version: data.version, location: data.location, summary: data.summary, flopsComplete: true },
    points: data.points,
    details,
  };
  const importMap = { imports: { './vendor/uPlot.esm.js': dataUrl(pageFile('/vendor/uPlot.esm.js')), './query.js': dataUrl(pageFile('/query.js')) } };
  const scripts: Array<[string, string]> = [
    ['', `globalThis.PRIMER_REPORT = ${scriptJson(report)};`],
    ['importmap', scriptJson(importMap)],
    ['module', pageFile('/app.js').replace(/<\/script/gi, '<\\/script')],
  ];
  const page = pageFile('/')
    // (a function replacer: a location holding $' or $& is text, not a replacement pattern)
    .replace('<title>primer-search study</title>', () => `<title>primer-search study report: ${data.location.replace(/[<>&]/g, '')}</title>`)
    .replace('<link rel="stylesheet" href="./vendor/uPlot.min.css">', () => `<style>${pageFile('/vendor/uPlot.min.css')}</style>`)
    .replace('<link rel="stylesheet" href="./style.css">', () => `<style>${pageFile('/style.css')}</style>`)
    // nothing to preload: it is all in the file
    .replace(/\s*<link rel="(?:module)?preload"[^>]*>/g, '')
    .replace('<script type="module" src="./app.js"></script>', () => scripts.map(([type, body]) => `<script${type ? ` type="${type}"` : ''}>${body}</script>`).join('\n'));
  // only these scripts run (no inline handler a study's text could carry, were one ever let through as markup)
  const policy = `default-src 'none'; script-src ${scripts.map(([, body]) => `'sha256-${createHash('sha256').update(body, 'utf8').digest('base64')}'`).join(' ')} data:; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'`;
  return page.replace('<meta charset="utf-8">', () => `<meta charset="utf-8">\n  <meta http-equiv="Content-Security-Policy" content="${policy}">`);
}

/**
 * The headline chart (best perplexity so far against candidates, every evaluation a point) as
 * SVG, drawn by Observable Plot on a server-side DOM; as PNG, that SVG rendered by resvg.
 */
export async function headlineChart(store: StudyStore, format: 'svg' | 'png'): Promise<string | Uint8Array> {
  const data = await StudyData.load(store);
  const p = data.points;
  const { JSDOM } = await import('jsdom');
  const Plot = await import('@observablehq/plot');
  const { document } = new JSDOM('').window;
  const statuses = ['completed', 'stopped at a hurdle'];
  const marks = p.id.flatMap((id, i) => (p.fitness[i] === null || p.status[i]! > 1 ? [] : [{ candidate: id, perplexity: p.fitness[i]!, kind: p.reused[i] || p.sameAs[i] !== null ? 'reused' : statuses[p.status[i]!]! }]));
  let best = Infinity;
  const line = p.id.flatMap((id, i) => {
    if (p.status[i] === 0 && p.fitness[i] !== null) best = Math.min(best, p.fitness[i]!);
    return Number.isFinite(best) ? [{ candidate: id, perplexity: best }] : [];
  });
  const c = data.config;
  // the y domain padded on both sides (log scale: by a ratio), so the best-so-far line is not on the frame's edge
  const ys = [...marks.map((m) => m.perplexity), ...line.map((m) => m.perplexity)];
  const [lo, hi] = ys.length ? [Math.min(...ys), Math.max(...ys)] : [1, 10];
  const ratio = lo === hi ? 1.5 : (hi / lo) ** 0.06;
  const last = line.at(-1);
  const key = 'blue: completed · orange: stopped at a hurdle · grey: reused (same program or same function) · green line: best so far';
  const chart = Plot.plot({
    document: document as never,
    width: 760,
    height: 440,
    marginTop: 56,
    marginLeft: 64,
    style: { background: 'white', fontSize: '12px', fontFamily: 'sans-serif' },
    x: { label: 'candidate', grid: true },
    y: { label: 'perplexity (log scale)', labelAnchor: 'center', type: 'log', grid: true, domain: [lo / ratio, hi * ratio], tickFormat: (v: number) => String(Number(v.toPrecision(3))) },
    color: { domain: ['completed', 'stopped at a hurdle', 'reused', 'best so far'], range: ['#1565c0', '#ef8f00', '#8e99a4', '#2e7d32'] },
    marks: [
      Plot.dot(marks, { x: 'candidate', y: 'perplexity', fill: 'kind', r: 2.5 }),
      Plot.lineY(line, { x: 'candidate', y: 'perplexity', stroke: () => 'best so far', strokeWidth: 2 }),
      // the best value, written at the line's end
      ...(last ? [Plot.text([last], { x: 'candidate', y: 'perplexity', text: (d: { perplexity: number }) => `best ${d.perplexity.toFixed(3)}`, dy: -10, textAnchor: 'end', fill: '#2e7d32', fontWeight: 'bold' })] : []),
      // the title and the key inside the SVG (Plot's own title and legend are HTML around it)
      Plot.text([`${c.strategy} from ${c.seedModel}: best validation perplexity so far · ${p.id.length} candidates · ${c.settings.dataset}, ${c.settings.layers} layers, dModel ${c.settings.dModel}`], { frameAnchor: 'top-left', dy: -44, fontSize: 13, fontWeight: 'bold' }),
      Plot.text([key], { frameAnchor: 'top-left', dy: -26 }),
    ],
  }) as unknown as { outerHTML: string; setAttribute(k: string, v: string): void };
  chart.setAttribute('xmlns', 'http://www.w3.org/2000/svg');
  const svg = chart.outerHTML;
  if (format === 'svg') return `<?xml version="1.0" encoding="UTF-8"?>\n${svg}\n`;
  const { Resvg } = await import('@resvg/resvg-js');
  return new Resvg(svg, { background: 'white', fitTo: { mode: 'width', value: 1520 } }).render().asPng();
}
