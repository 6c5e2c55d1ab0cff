import { createHash } from 'node:crypto';
import { modelEstimate, planBlock } from '@primer-search/compiler';
import { escapeText } from '@primer-search/core';
import type { CandidateView, StudyStore } from '@primer-search/store';
import { failureCategory, formatBudget, trainingRecorded, type StudyConfig } from '@primer-search/study';
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

/** A log-scale y domain around `ys`, padded by a ratio on both sides so no line sits on the frame's edge. */
function logDomain(ys: number[]): [number, number] {
  const [lo, hi] = ys.length ? [Math.min(...ys), Math.max(...ys)] : [1, 10];
  const ratio = lo === hi ? 1.5 : (hi / lo) ** 0.06;
  return [lo / ratio, hi * ratio];
}

/**
 * Ticks for a log axis over `domain`: over a narrow range (within a factor of 4, as a search's
 * perplexities are), round numbers a step apart, every one labelled and told apart by three
 * significant digits (a log scale's own ticks leave some unlabelled); otherwise undefined: the
 * scale's own, at powers of ten and their multiples.
 */
export function logTicks([lo, hi]: [number, number]): number[] | undefined {
  if (!(lo > 0) || !(hi > lo * (1 + 1e-6)) || !Number.isFinite(hi) || hi / lo > 4) return undefined;
  // at least a unit of the third significant digit of the largest value, so labels differ
  const raw = Math.max((hi - lo) / 8, 10 ** (Math.floor(Math.log10(hi)) - 2));
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((x) => x >= raw)!;
  const ticks: number[] = [];
  for (let k = Math.ceil(lo / step); k * step <= hi && ticks.length < 20; k++) ticks.push(Number((k * step).toPrecision(12)));
  return ticks.length >= 2 ? ticks : undefined;
}

/** A chart Observable Plot drew on a server-side DOM, as an SVG file, or that SVG rendered to PNG by resvg. */
async function chartFile(chart: { outerHTML: string; setAttribute(k: string, v: string): void }, format: 'svg' | 'png'): Promise<string | Uint8Array> {
  chart.setAttribute('xmlns', 'http://www.w3.org/2000/svg');
  const svg = chart.outerHTML;
  if (format === 'svg') return `<?xml version="1.0" encoding="UTF-8"?>\n${svg}\n`;
  const { Resvg } = await import('@resvg/resvg-js');
  return new Resvg(svg, { background: 'white', fitTo: { mode: 'width', value: 1520 } }).render().asPng();
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
  const domain = logDomain([...marks.map((m) => m.perplexity), ...line.map((m) => m.perplexity)]);
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
    y: { label: 'perplexity (log scale)', labelAnchor: 'center', type: 'log', grid: true, domain, ticks: logTicks(domain), tickFormat: (v: number) => String(Number(v.toPrecision(3))) },
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
  return chartFile(chart, format);
}

/** One study's row of a comparison: what it spent and what it found. */
export interface ComparisonRow {
  label: string;
  /** Candidates with a result. */
  candidates: number;
  /** Candidates whose training is recorded (`trainingRecorded`: not a reused result, not refused before training, not a pool failure that recorded nothing, which `unknownCost` counts). */
  trained: number;
  /** Training FLOPs its candidates spent, summed (null: some trained result's cost cannot be known). */
  flops: number | null;
  /**
   * Results that failed outside training (a timeout, a crashed or lost worker, memory) and
   * record no tokens: they may have trained for a while, and count 0 in `flops`.
   */
  unknownCost: number;
  /** Its best completed perplexity. */
  best: number | null;
  /** Its best completed perplexity within the least compute any of the studies spent (null when compute is unknown, or none completed by then). */
  bestAtEqualCompute: number | null;
}

/**
 * Failures outside training's own record (the pool's, an exception: `failedResult`), which
 * record the tokens of their last progress report; one with none (a failure before its first
 * report, or a record from before they were kept) may still have trained for a while, at a cost
 * unknown. A failure in training records the tokens it trained (a run that diverged at its first
 * step, none), and one before training (invalid, a constraint) trained nothing.
 */
const OUTSIDE_TRAINING = new Set(['timeout', 'crashed', 'out of memory', 'error']);

/**
 * A study's training FLOPs per result: a result's tokens times the FLOPs per token its curve
 * recorded; for a trained result whose curve records none (one that diverged before its first
 * evaluation, an older record), the FLOPs per token the compiler plans for its program, the
 * study's model around it being the same for every candidate (fixed by a result that recorded
 * them). 0 for a result not trained here (reused from the same program or the same function,
 * refused before training); null where it cannot be known.
 */
/** Whether `c`'s result is its own training: not reused from the same program, nor from another computing the same function. */
const ownResult = (c: CandidateView) => c.evaluation !== null && !c.reused && c.evaluation.candidate === c.id && !c.evaluation.sameAs;

function costModel(config: StudyConfig, candidates: CandidateView[]): (c: CandidateView) => number | null {
  const recorded = (c: CandidateView) => {
    const at = [...(c.evaluation?.curve ?? [])].reverse().find((p) => p.flops !== undefined && p.tokens > 0);
    return at ? at.flops! / at.tokens : undefined;
  };
  const { dModel, seqLen, layers } = config.settings;
  // the model's own FLOPs per token of a program, up to the part every candidate shares (any vocabulary: it cancels out)
  const planned = (dna: unknown): number | undefined => {
    try {
      return modelEstimate(planBlock(dna, { dModel, seqLen }).estimate, { vocabSize: 2, layers, dModel, seqLen }).trainingFlopsPerToken;
    } catch {
      return undefined;
    }
  };
  let reference: { perToken: number; planned: number } | null | undefined;
  const referenceOf = () => {
    if (reference !== undefined) return reference;
    reference = null;
    for (const c of candidates) {
      // the study's own training of that very program (not a result reused from another's)
      const perToken = ownResult(c) ? recorded(c) : undefined;
      const p = perToken === undefined ? undefined : planned(c.dna);
      if (perToken !== undefined && p !== undefined) return (reference = { perToken, planned: p });
    }
    return reference;
  };
  return (c) => {
    const e = c.evaluation;
    if (!e || !ownResult(c) || e.tokens === 0) return 0;
    const perToken = recorded(c);
    if (perToken !== undefined) return e.tokens * perToken;
    const ref = referenceOf();
    const p = ref ? planned(c.dna) : undefined;
    const perPlanned = ref && p !== undefined ? ref.perToken - ref.planned + p : undefined;
    // (a study whose recorded FLOPs do not fit its programs' plans says nothing about this one's)
    return perPlanned !== undefined && perPlanned > 0 ? e.tokens * perPlanned : null;
  };
}

/** Exponent notation with up to two significant digits: 1.2e14, 8e13, 0. */
const exponent = (v: number) => (v === 0 ? '0' : Number(v.toPrecision(2)).toExponential().replace('+', ''));

/** What a terminal or a chart may show of a study's text: control and direction characters escaped. */
const printable = (s: string) => escapeText(s, 1000);

/** The settings that make studies' perplexities comparable, by name. */
function comparable(config: StudyConfig): Record<string, string> {
  const s = config.settings;
  return {
    dataset: printable(String(s.dataset)),
    tokenizer: printable(`${s.tokenizer}${s.vocabSize ? ` ${s.vocabSize}` : ''}`),
    model: printable(`${s.layers} layers, dModel ${s.dModel}, seq ${s.seqLen}, batch ${s.batch}`),
    'budget per candidate': printable((() => {
      try {
        return formatBudget(s.budget);
      } catch {
        return JSON.stringify(s.budget) ?? 'none';
      }
    })()),
  };
}

/**
 * Several studies' best perplexity so far against the training compute their candidates spent
 * (summed in proposal order; `costModel` says what each result counts), one line each:
 * searches compared at equal compute, whatever their strategies, hurdles and failure rates.
 * Where some trained result's cost cannot be known, against candidates instead (`axis` says
 * which). The rows give each study's best within the least compute any of them spent (studies
 * that spent none are left out of that least); `warnings` name settings that differ between
 * the studies (their perplexities are then not comparable) and what was left out.
 */
export async function comparisonChart(
  studies: Array<{ store: StudyStore; label: string }>,
  format: 'svg' | 'png',
): Promise<{ chart: string | Uint8Array; rows: ComparisonRow[]; axis: 'flops' | 'candidates'; equalCompute: number | null; warnings: string[] }> {
  const series: Array<{ label: string; points: Array<{ x: number; flops: number | null; best: number }>; row: ComparisonRow }> = [];
  const settings: Array<Record<string, string>> = [];
  for (const { store, label } of studies) {
    const config = (await store.config()) as unknown as StudyConfig | undefined;
    if (!config) throw new Error(`${store.location} holds no study`);
    settings.push(comparable(config));
    const candidates = (await store.candidates()).filter((c) => c.evaluation).sort((a, b) => a.id - b.id);
    const cost = costModel(config, candidates);
    let spent: number | null = 0;
    let best = Infinity;
    let trained = 0;
    let unknownCost = 0;
    const points: Array<{ x: number; flops: number | null; best: number }> = [];
    candidates.forEach((c, i) => {
      const e = c.evaluation!;
      const s = cost(c);
      if (ownResult(c) && trainingRecorded(e)) trained++;
      if (e.status === 'failed' && ownResult(c) && e.tokens === 0 && OUTSIDE_TRAINING.has(failureCategory(e.reason ?? ''))) unknownCost++;
      spent = spent === null || s === null ? null : spent + s;
      if (e.status === 'completed' && e.fitness !== null && Number.isFinite(e.fitness)) best = Math.min(best, e.fitness);
      if (Number.isFinite(best)) points.push({ x: i + 1, flops: spent, best });
    });
    const shown = printable(label);
    series.push({ label: shown, points, row: { label: shown, candidates: candidates.length, trained, flops: spent, unknownCost, best: Number.isFinite(best) ? best : null, bestAtEqualCompute: null } });
  }
  const warnings: string[] = [];
  for (const key of Object.keys(settings[0] ?? {})) {
    const values = [...new Set(settings.map((s) => s[key]!))];
    if (values.length > 1) warnings.push(`the studies differ in ${key} (${settings.map((s, i) => `${series[i]!.label}: ${s[key]}`).join('; ')}): their perplexities are not comparable`);
  }
  const byFlops = series.every((s) => s.row.flops !== null);
  if (!byFlops) warnings.push(`the cost of some trained results cannot be known (${series.filter((s) => s.row.flops === null).map((s) => s.label).join(', ')}): no result of the study records its FLOPs, or a program does not plan here; the chart is against candidates, and nothing is compared at equal compute`);
  const spenders = series.filter((s) => s.row.flops! > 0);
  if (byFlops && spenders.length < series.length) warnings.push(`left out of the equal-compute comparison, with no training FLOPs counted: ${series.filter((s) => !(s.row.flops! > 0)).map((s) => s.label).join(', ')}`);
  for (const s of series) if (s.row.unknownCost > 0) warnings.push(`${s.label}: ${s.row.unknownCost} result${s.row.unknownCost === 1 ? '' : 's'} failed outside training (a timeout, a crash, memory, another error) with no tokens recorded, counted as costing nothing`);
  const equal = byFlops && spenders.length > 0 ? Math.min(...spenders.map((s) => s.row.flops!)) : null;
  for (const s of series) {
    const within = equal === null || !(s.row.flops! > 0) ? [] : s.points.filter((p) => p.flops! <= equal);
    s.row.bestAtEqualCompute = within.at(-1)?.best ?? null;
  }
  // lines keyed by their study's place, so equal labels are still two lines
  const line = series.flatMap((s, k) => s.points.map((p) => ({ study: k, x: byFlops ? p.flops! : p.x, perplexity: p.best })));
  const ends = series.flatMap((s, k) => (s.points.length ? [{ study: k, x: byFlops ? s.points.at(-1)!.flops! : s.points.at(-1)!.x, perplexity: s.points.at(-1)!.best }] : []));
  const { JSDOM } = await import('jsdom');
  const Plot = await import('@observablehq/plot');
  const { document } = new JSDOM('').window;
  const palette: Array<[string, string]> = [['#1565c0', 'blue'], ['#c62828', 'red'], ['#2e7d32', 'green'], ['#ef8f00', 'orange'], ['#6a1b9a', 'purple'], ['#00838f', 'teal'], ['#5d4037', 'brown'], ['#455a64', 'slate']];
  const colour = (k: number) => palette[k % palette.length]!;
  // the key, one study a line, above the frame
  const key = [
    ...series.map((s, k) => `${colour(k)[1]}: ${s.label}${s.row.best === null ? '' : ` (best ${s.row.best.toFixed(2)})`}`),
    ...(equal !== null && series.length > 1 ? ['dashed: the least compute any of them spent'] : []),
  ];
  const top = 40 + 16 * key.length;
  const yDomain = logDomain(line.map((p) => p.perplexity));
  const chart = Plot.plot({
    document: document as never,
    width: 760,
    height: 400 + 16 * key.length,
    marginTop: top,
    marginLeft: 64,
    marginRight: 24,
    style: { background: 'white', fontSize: '12px', fontFamily: 'sans-serif' },
    x: byFlops ? { label: 'training FLOPs spent by the search (summed over its candidates)', labelAnchor: 'center', grid: true, tickFormat: exponent } : { label: 'candidate', labelAnchor: 'center', grid: true },
    y: { label: 'best perplexity so far (log scale)', labelAnchor: 'center', type: 'log', grid: true, domain: yDomain, ticks: logTicks(yDomain), tickFormat: (v: number) => String(Number(v.toPrecision(3))) },
    color: { domain: series.map((_, k) => k), range: series.map((_, k) => colour(k)[0]) },
    marks: [
      Plot.line(line, { x: 'x', y: 'perplexity', z: 'study', stroke: 'study', strokeWidth: 2, curve: 'step-after' }),
      Plot.dot(ends, { x: 'x', y: 'perplexity', fill: 'study', r: 3 }),
      ...(equal !== null && series.length > 1 ? [Plot.ruleX([equal], { stroke: '#8e99a4', strokeDasharray: '4,3' })] : []),
      Plot.text([`best validation perplexity so far, ${byFlops ? 'against the compute spent' : 'against candidates'} · ${series.length} studies`], { frameAnchor: 'top-left', dy: -(top - 12), fontSize: 13, fontWeight: 'bold' }),
      Plot.text([key.join('\n')], { frameAnchor: 'top-left', dy: -(top - 30), lineHeight: 1.3, textAnchor: 'start', lineAnchor: 'top' }),
    ],
  }) as unknown as { outerHTML: string; setAttribute(k: string, v: string): void };
  return { chart: await chartFile(chart, format), rows: series.map((s) => s.row), axis: byFlops ? 'flops' : 'candidates', equalCompute: equal, warnings };
}
