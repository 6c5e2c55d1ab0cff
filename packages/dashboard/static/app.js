// The dashboard page: reads the study through the server's JSON API (or, in a report, from the
// data embedded in the file), draws the charts with uPlot, and follows the study live through
// server-sent events.
import uPlot from './vendor/uPlot.esm.js';
import { queryTable } from './query.js';

const REPORT = globalThis.PRIMER_REPORT;
const STATUSES = ['completed', 'hurdle', 'failed', 'pending'];
const COLORS = { completed: '#1565c0', hurdle: '#ef8f00', failed: '#c62828', reused: '#8e99a4', best: '#2e7d32' };
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

/**
 * Markup is built only with this tag: every interpolated value is escaped (a study's values are
 * data, never markup), except markup built by the tag itself, nested or in arrays. `setHtml` is
 * the page's only way to put markup in the document, and it takes nothing else.
 */
class Html {
  constructor(text) {
    this.text = text;
  }
}
const part = (v) => (v instanceof Html ? v.text : Array.isArray(v) ? v.map(part).join('') : esc(v));
const html = (strings, ...values) => new Html(strings.reduce((out, s, i) => out + s + (i < values.length ? part(values[i]) : ''), ''));
function setHtml(el, markup) {
  if (!(markup instanceof Html)) throw new TypeError('setHtml takes markup built by the html tag');
  el.innerHTML = markup.text;
}
const fmt = (n, d = 0) => (n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }));

/** The API, or the report's embedded answers to it. */
async function api(path) {
  if (REPORT) {
    const url = new URL(path, 'http://report/');
    if (url.pathname === '/api/study') return REPORT.study;
    if (url.pathname === '/api/points') return { version: REPORT.study.version, points: REPORT.points };
    if (url.pathname === '/api/candidates') return queryTable(REPORT.points, Object.fromEntries(url.searchParams));
    const id = /\/api\/candidate\/(\d+)$/.exec(url.pathname)?.[1];
    const d = REPORT.details[id];
    if (!d) throw new Error(`candidate ${id}'s program is not in this report (it holds the best ${Object.keys(REPORT.details).length}, their lineages and the seed)`);
    return d;
  }
  const r = await fetch(path, { credentials: 'same-origin' });
  const body = await r.json();
  if (!r.ok) throw new Error(body.error ?? `HTTP ${r.status}`);
  return body;
}

const state = { study: null, points: null, selected: null, view: 'code', curves: [], table: { offset: 0, limit: 50, sort: 'id', order: 'asc', status: '', text: '' } };
const charts = {};
globalThis.dashboard = { charts, state };

function width(el) {
  return Math.max(280, el.clientWidth - 4);
}

/** Points as small squares in one path per series: arcs one by one are too slow for 20,000 points. */
function squares(u, seriesIdx, idx0, idx1) {
  const xs = u.data[0];
  const ys = u.data[seriesIdx];
  const scale = u.series[seriesIdx].scale;
  const d = 4 * devicePixelRatio;
  const path = new Path2D();
  for (let i = idx0; i <= idx1; i++) {
    const y = ys[i];
    if (y === null || y === undefined) continue;
    path.rect(u.valToPos(xs[i], 'x', true) - d / 2, u.valToPos(y, scale, true) - d / 2, d, d);
  }
  return { fill: path, clip: null };
}

/** A scale's range with a margin, so points at the extremes are drawn whole (log scales: a ratio of margin). */
const padded = (log) => (u, min, max) => {
  if (min === null || max === null || !Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
  if (log) {
    const lo = Math.max(min, Number.MIN_VALUE);
    const ratio = min === max ? 1.5 : (max / lo) ** 0.06;
    return [lo / ratio, max * ratio];
  }
  const pad = min === max ? Math.abs(min) * 0.1 || 1 : (max - min) * 0.05;
  return [min - pad, max + pad];
};

/** Axis numbers that fit: 1.2M, 250k, 12.5 (never a long number cut at the edge). */
function compact(v, digits = 3) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '';
  const a = Math.abs(v);
  const short = (x, unit) => `${Number(x.toPrecision(digits))}${unit}`;
  if (a >= 1e9) return short(v / 1e9, 'G');
  if (a >= 1e6) return short(v / 1e6, 'M');
  if (a >= 1e4) return short(v / 1e3, 'k');
  return String(Number(v.toPrecision(digits + 1)));
}

/** Tick labels: as short as they can be while no two read the same. */
function ticks(splits) {
  for (let digits = 3; digits < 7; digits++) {
    const labels = splits.map((v) => compact(v, digits));
    if (new Set(labels.filter(Boolean)).size === labels.filter(Boolean).length) return labels;
  }
  return splits.map((v) => String(v));
}

/** A chart of points-only series over one sorted x column; `series` is [{ label, color, values }]. */
function scatter(id, x, series, opts = {}) {
  const el = $(id);
  const data = [x, ...series.map((s) => s.values)];
  const spec = {
    width: width(el),
    height: 240,
    scales: { x: { time: false, distr: opts.logX ? 3 : 1, range: padded(opts.logX) }, y: { distr: opts.logY ? 3 : 1, range: padded(opts.logY) } },
    axes: [
      { label: opts.xLabel, values: (u, splits) => ticks(splits) },
      { label: opts.yLabel, size: 60, values: (u, splits) => ticks(splits) },
    ],
    // the key on one line (no values: the cursor's tooltip is the table row)
    legend: { live: false },
    cursor: { points: { size: 8 } },
    series: [
      {},
      ...series.map((s) =>
        s.line
          ? { label: s.label, stroke: s.color, width: 2, spanGaps: true, points: { show: false } }
          : { label: s.label, stroke: s.color, fill: s.color, width: 0, paths: squares, points: { show: false } },
      ),
    ],
    hooks: {},
  };
  if (opts.onPick) {
    spec.hooks.ready = [
      (u) =>
        u.over.addEventListener('click', () => {
          const i = u.cursor.idx;
          if (i !== null && i !== undefined) opts.onPick(i);
        }),
    ];
  }
  if (charts[id]) {
    charts[id].setData(data);
    return charts[id];
  }
  el.textContent = '';
  charts[id] = new uPlot(spec, data, el);
  return charts[id];
}

/** Indices of the points sorted by one column, those without a value left out. */
function sortedBy(column, keep = () => true) {
  return column.map((_, i) => i).filter((i) => column[i] !== null && keep(i)).sort((a, b) => column[a] - column[b] || a - b);
}

/** One points series per kind of result; with `failedAt`, failures (which have no perplexity) are drawn at that height. */
function byStatus(order, p, value, failedAt) {
  const pick = (pred, v = value) => order.map((i) => (pred(i) ? v(i) : null));
  // not trained: the same program as an earlier candidate, or a program computing the same function
  const copied = (i) => p.reused[i] || (p.sameAs?.[i] ?? null) !== null;
  const series = [
    { label: 'completed', color: COLORS.completed, values: pick((i) => p.status[i] === 0 && !copied(i)) },
    { label: 'hurdle', color: COLORS.hurdle, values: pick((i) => p.status[i] === 1 && !copied(i)) },
    { label: 'reused', color: COLORS.reused, values: pick((i) => copied(i) && p.status[i] < 2) },
  ];
  if (failedAt !== undefined) series.push({ label: 'failed (at the top)', color: COLORS.failed, values: pick((i) => p.status[i] === 2 && !copied(i), () => failedAt) });
  return series;
}

function drawCharts() {
  const p = state.points;
  const select = (order) => (k) => selectCandidate(p.id[order[k]]);
  const worst = Math.max(0, ...p.fitness.filter((f) => f !== null));
  const failedAt = worst > 0 ? worst * 1.15 : 1;
  // best so far against candidates: every result a point, the best so far a line
  const byId = p.id.map((_, i) => i);
  let best = Infinity;
  const bestLine = byId.map((i) => (p.status[i] === 0 && p.fitness[i] !== null && (best = Math.min(best, p.fitness[i])), Number.isFinite(best) ? best : null));
  scatter('chart-best', byId.map((i) => p.id[i]), [{ label: 'best so far', color: COLORS.best, line: true, values: bestLine }, ...byStatus(byId, p, (i) => p.fitness[i], failedAt)], { xLabel: 'candidate', yLabel: 'perplexity (log)', logY: true, onPick: select(byId) });
  // the same against wall time (results in the order they came)
  const byTime = sortedBy(p.seconds);
  best = Infinity;
  const bestTime = byTime.map((i) => (p.status[i] === 0 && p.fitness[i] !== null && (best = Math.min(best, p.fitness[i])), Number.isFinite(best) ? best : null));
  scatter('chart-time', byTime.map((i) => p.seconds[i]), [{ label: 'best so far', color: COLORS.best, line: true, values: bestTime }, ...byStatus(byTime, p, (i) => p.fitness[i], failedAt)], { xLabel: 'seconds', yLabel: 'perplexity (log)', logY: true, onPick: select(byTime) });
  const withFitness = (i) => p.fitness[i] !== null;
  const byParams = sortedBy(p.parameters, withFitness);
  // perplexity on a log scale: one diverging outlier does not squash every other candidate into a band
  scatter('chart-params', byParams.map((i) => p.parameters[i]), byStatus(byParams, p, (i) => p.fitness[i]), { xLabel: 'parameters', yLabel: 'perplexity (log)', logY: true, onPick: select(byParams) });
  const byFlops = sortedBy(p.flops, withFitness);
  scatter('chart-flops', byFlops.map((i) => p.flops[i]), byStatus(byFlops, p, (i) => p.fitness[i]), { xLabel: 'FLOPs per token', yLabel: 'perplexity (log)', logX: true, logY: true, onPick: select(byFlops) });
}

/** The seed's and the selected candidates' validation curves, on one x column of tokens. */
async function drawCurves() {
  const ids = [...new Set([0, ...state.curves])];
  const details = (await Promise.all(ids.map((id) => api(`/api/candidate/${id}`).catch(() => null)))).filter((d) => d?.evaluation?.curve?.length);
  const xs = [...new Set(details.flatMap((d) => d.evaluation.curve.map((c) => c.tokens)))].sort((a, b) => a - b);
  const palette = ['#2e7d32', '#1565c0', '#6a1b9a', '#ef6c00', '#00838f', '#ad1457'];
  const series = details.map((d, k) => ({
    label: d.id === 0 ? 'seed' : `candidate ${d.id}`,
    color: palette[k % palette.length],
    line: true,
    values: xs.map((x) => d.evaluation.curve.find((c) => c.tokens === x)?.perplexity ?? null),
  }));
  if (charts['chart-curves'] && charts['chart-curves'].series.length !== series.length + 1) {
    charts['chart-curves'].destroy();
    delete charts['chart-curves'];
  }
  scatter('chart-curves', xs, series, { xLabel: 'tokens', yLabel: 'perplexity' });
}

function drawFacts() {
  const s = state.study.summary;
  const c = s.config;
  $('location').textContent = state.study.location;
  const best = s.leaderboard[0];
  const equivalent = s.equivalent?.programs ? `, same function as an earlier program ${fmt(s.equivalent.programs)} (${fmt(s.equivalent.trainSecondsSaved)} s of training saved)` : '';
  const bestLine = best
    ? html`<b>best: candidate ${best.id}, perplexity ${fmt(best.fitness, 3)}</b>${s.seed.fitness !== null ? ` (seed ${fmt(s.seed.fitness, 3)})` : ''}`
    : 'no candidate has completed its budget yet';
  setHtml(
    $('headline'),
    html`${c.strategy} from ${c.seedModel} · ${fmt(s.candidates)} candidates proposed of ${fmt(c.candidates)}, ${fmt(s.told)} told · trained ${fmt(s.trained)}, reused ${fmt(s.reused)}${equivalent}, completed ${fmt(s.completed)}, failed ${fmt(s.failed)} · ${c.settings.dataset}, ${c.settings.layers} layers, dModel ${c.settings.dModel}, seq ${c.settings.seqLen}<br>${bestLine}`,
  );
  const failures = Object.entries(s.failuresByReason);
  setHtml($('failures'), failures.length ? html`${failures.map(([k, n]) => html`<tr><td>${k}</td><td>${fmt(n)}</td></tr>`)}` : html`<tr><td>none</td></tr>`);
  const pct = (h) => `${Number((h * 100).toPrecision(3))}%`;
  $('hurdles').textContent = c.hurdles.length
    ? `rungs at ${c.hurdles.map((h, k) => `${pct(h)} (stopped ${fmt([].concat(s.stoppedAtHurdle)[k] ?? 0)})`).join(', ')} of the budget, saving ${fmt(s.hurdleSavings.budgets, 2)} candidate budgets (${fmt(s.hurdleSavings.share * 100, 1)}% of full training): a candidate cost ${fmt(1 - s.hurdleSavings.share, 2)} of the full budget on average`
    : 'no hurdles';
  setHtml(
    $('workers'),
    html`<tr><th>host</th><th>backend</th><th>results</th><th>steps/s</th></tr>${s.machines.map((m) => html`<tr><td>${m.host}</td><td>${m.backend ?? '?'}</td><td>${fmt(m.evaluations)}</td><td>${fmt(m.stepsPerSecond, 1)}</td></tr>`)}`,
  );
}

/** How a result that was not trained came about: the same program told before, or one computing the same function. */
function reusedNote(x) {
  if (x.sameAs !== null && x.sameAs !== undefined) return ` (same function as candidate ${x.sameAs}: its result reused)`;
  return x.reused ? ' (reused)' : '';
}

/** A table the study package words (a retraining's, a fidelity measurement's): a program of the search opens from its first cell. */
function tableOf(t, cls, rowClass = () => '') {
  const rows = t.rows.map((x) => {
    const [label, ...rest] = x.cells;
    const link = x.candidate !== null && x.candidate !== undefined ? html`<button data-id="${x.candidate}">${label}</button>` : label;
    return html`<tr class="${rowClass(x)}"><td>${link}</td>${rest.map((c) => html`<td>${c}</td>`)}</tr>`;
  });
  return html`<table class="rows ${cls}"><thead><tr>${t.columns.map((c) => html`<th>${c}</th>`)}</tr></thead><tbody>${rows}</tbody></table>`;
}

/** The retrainings (primer study retrain): the table as the study package words it (the same as the CLI prints), programs of the search linked to their candidate. */
function drawRetrains() {
  const list = state.study.summary.retrains ?? [];
  $('retrains-section').hidden = list.length === 0;
  setHtml(
    $('retrains'),
    html`${list.map((r) => {
      const t = r.table;
      return html`<p class="retrain-head">${t.title}</p>${tableOf(t, 'retrain', (x) => (r.winner?.program === x.program ? 'winner' : ''))}${t.notes.map((n) => html`<p class="retrain-note">${n}</p>`)}<p class="retrain-end">${t.end}</p>`;
    })}`,
  );
}

const LOG_OBJECTIVES = ['perplexity', 'parameters', 'flops_per_token', 'step_time'];

/** A Pareto search's front: perplexity against its other first objective, every completed program a point, the front a line; then its members. */
function drawFront() {
  const f = state.study.summary.front;
  $('front-section').hidden = !f;
  if (!f) return;
  const p = Math.max(0, f.objectives.indexOf('perplexity'));
  const o = f.objectives.findIndex((_, k) => k !== p);
  const sorted = [...f.points].sort((a, b) => a.values[o] - b.values[o] || a.id - b.id);
  const onFront = new Set(f.members.map((m) => m.id));
  $('front-caption').textContent = `${f.objectives[o]} against perplexity: ${f.members.length} of ${f.points.length} completed programs on the front (the line)`;
  scatter(
    'chart-front',
    sorted.map((x) => x.values[o]),
    [
      { label: 'front', color: COLORS.best, line: true, values: sorted.map((x) => (onFront.has(x.id) ? x.values[p] : null)) },
      { label: 'completed', color: COLORS.completed, values: sorted.map((x) => x.values[p]) },
    ],
    { xLabel: `${f.objectives[o]}${LOG_OBJECTIVES.includes(f.objectives[o]) ? ' (log)' : ''}`, yLabel: 'perplexity (log)', logX: LOG_OBJECTIVES.includes(f.objectives[o]), logY: true, onPick: (k) => selectCandidate(sorted[k].id) },
  );
  setHtml(
    $('front'),
    html`<thead><tr><th>candidate</th>${f.objectives.map((n) => html`<th>${n}</th>`)}</tr></thead><tbody>${f.members.map(
      (m) => html`<tr><td><button data-id="${m.id}">candidate ${m.id}</button></td>${m.values.map((v, k) => html`<td>${f.objectives[k] === 'perplexity' || f.objectives[k] === 'in_context' ? fmt(v, 3) : f.objectives[k] === 'step_time' ? `${fmt(v * 1000, 1)} ms` : fmt(v)}</td>`)}</tr>`,
    )}</tbody>`,
  );
}

/**
 * The fidelity measurements (primer study fidelity): search perplexity against the longer run's,
 * one point per program with the diagonal y = x drawn, then the table as the study package words it.
 */
function drawFidelity() {
  const list = state.study.summary.fidelity ?? [];
  $('fidelity-section').hidden = list.length === 0;
  // the charts' elements are made again below
  for (const k of Object.keys(charts)) {
    if (!k.startsWith('chart-fidelity-')) continue;
    charts[k].destroy();
    delete charts[k];
  }
  setHtml(
    $('fidelity'),
    html`${list.map((f) => {
      const t = f.table;
      return html`<p class="retrain-head">${t.title}</p><figure class="wide"><figcaption>search perplexity against perplexity at ${f.budget} (mean over seeds ${f.seeds.join(', ')}); the grey line is y = x</figcaption><div id="chart-fidelity-${f.id}" class="chart fidelity-chart"></div></figure>${t.end.split('\n').map((n) => html`<p class="retrain-end">${n}</p>`)}${tableOf(t, 'retrain fidelity')}${t.notes.map((n) => html`<p class="retrain-note">${n}</p>`)}`;
    })}`,
  );
  for (const f of list) {
    const pts = [...f.points].sort((a, b) => a.searchFitness - b.searchFitness || a.program - b.program);
    if (pts.length === 0) continue;
    const x = pts.map((p) => p.searchFitness);
    scatter(
      `chart-fidelity-${f.id}`,
      x,
      [
        { label: 'y = x', color: COLORS.reused, line: true, values: x },
        { label: 'programs', color: COLORS.completed, values: pts.map((p) => p.retrained) },
      ],
      { xLabel: 'search perplexity (log)', yLabel: `at ${f.budget} (log)`, logX: true, logY: true, onPick: (k) => selectCandidate(pts[k].candidate) },
    );
  }
}

async function drawLineage() {
  const ids = state.study.summary.bestLineage;
  const rows = await Promise.all(ids.map((id) => api(`/api/candidate/${id}`).catch(() => ({ id, mutations: [], evaluation: null }))));
  setHtml(
    $('lineage'),
    html`${rows.map((d) => html`<li><button data-id="${d.id}">candidate ${d.id}${d.evaluation?.fitness != null ? ` · ${fmt(d.evaluation.fitness, 3)}` : ''}<span class="mut">${d.id === 0 ? 'the seed' : (Array.isArray(d.mutations) ? d.mutations.join('; ') : '') || '(no mutation)'}</span></button></li>`)}`,
  );
}

function diffHtml(text) {
  if (!text) return html`(the same code)`;
  const lines = String(text).split('\n');
  return html`${lines.map((l, k) => html`<span class="${l.startsWith('@@') ? 'hunk' : l.startsWith('+') ? 'add' : l.startsWith('-') ? 'del' : ''}">${l}</span>${k < lines.length - 1 ? '\n' : ''}`)}`;
}

async function selectCandidate(id) {
  state.selected = id;
  let d;
  try {
    d = await api(`/api/candidate/${id}`);
  } catch (e) {
    $('program-title').textContent = `Candidate ${id}`;
    setHtml($('program-facts'), html`<span class="error">${e.message}</span>`);
    $('program').textContent = '';
    return;
  }
  const e = d.evaluation;
  $('program-title').textContent = `Candidate ${d.id}${d.id === 0 ? ' (the seed)' : ''}`;
  const facts = e ? ` · perplexity ${fmt(e.fitness, 3)} · ${fmt(e.parameters)} parameters · ${fmt(e.steps)} steps${e.reason ? ` · ${e.reason}` : ''}` : '';
  const from = d.parent !== null ? ` · parent ${d.parent}: ${Array.isArray(d.mutations) ? d.mutations.join('; ') : ''}` : '';
  setHtml($('program-facts'), html`<span class="status-${d.status}">${d.status}${reusedNote(d)}</span>${facts}${from}`);
  const show = () => {
    if (state.view === 'code') $('program').textContent = d.code;
    else setHtml($('program'), diffHtml(d[state.view]));
  };
  state.show = show;
  show();
  state.curves = [...state.curves.filter((c) => c !== id), id].slice(-5);
  for (const tr of document.querySelectorAll('#candidates tbody tr')) tr.classList.toggle('selected', Number(tr.dataset.id) === id);
  await drawCurves();
}

async function drawTable() {
  const t = state.table;
  const q = new URLSearchParams({ offset: t.offset, limit: t.limit, sort: t.sort, order: t.order, status: t.status, text: t.text });
  const r = await api(`/api/candidates?${q}`);
  $('table-range').textContent = r.total ? `rows ${fmt(t.offset + 1)}-${fmt(Math.min(r.total, t.offset + t.limit))} of ${fmt(r.total)}` : 'no candidate matches';
  $('prev').disabled = t.offset === 0;
  $('next').disabled = t.offset + t.limit >= r.total;
  setHtml(
    document.querySelector('#candidates tbody'),
    html`${r.rows.map(
      (row) =>
        html`<tr data-id="${row.id}" class="${row.id === state.selected ? 'selected' : ''}"><td>${row.id}</td><td>${row.parent ?? ''}</td><td class="status-${row.status}">${row.status}${reusedNote(row)}</td><td>${fmt(row.fitness, 3)}</td><td>${fmt(row.parameters)}</td><td>${fmt(row.flops)}</td><td>${fmt(row.steps)}</td><td>${fmt(row.seconds, 1)}</td><td>${row.reason ?? row.mutations}</td></tr>`,
    )}`,
  );
}

async function load(first = false) {
  const [study, points] = await Promise.all([api('/api/study'), api('/api/points')]);
  state.study = study;
  state.points = points.points;
  drawFacts();
  drawRetrains();
  drawFidelity();
  drawFront();
  drawCharts();
  await Promise.all([drawLineage(), drawTable(), first ? selectCandidate(study.summary.leaderboard[0]?.id ?? 0) : undefined]);
  document.body.dataset.version = String(study.version);
}

function wire() {
  $('lineage').addEventListener('click', (e) => {
    const b = e.target.closest('button[data-id]');
    if (b) selectCandidate(Number(b.dataset.id));
  });
  for (const id of ['retrains', 'fidelity', 'front']) {
    $(id).addEventListener('click', (e) => {
      const b = e.target.closest('button[data-id]');
      if (b) selectCandidate(Number(b.dataset.id));
    });
  }
  document.querySelector('#candidates tbody').addEventListener('click', (e) => {
    const tr = e.target.closest('tr[data-id]');
    if (tr) selectCandidate(Number(tr.dataset.id));
  });
  for (const b of document.querySelectorAll('.tabs button')) {
    b.addEventListener('click', () => {
      state.view = b.dataset.view;
      for (const o of document.querySelectorAll('.tabs button')) o.classList.toggle('on', o === b);
      state.show?.();
    });
  }
  for (const th of document.querySelectorAll('th[data-sort]')) {
    th.addEventListener('click', () => {
      const t = state.table;
      t.order = t.sort === th.dataset.sort && t.order === 'asc' ? 'desc' : 'asc';
      t.sort = th.dataset.sort;
      t.offset = 0;
      drawTable();
    });
  }
  $('filter-status').addEventListener('change', (e) => ((state.table.status = e.target.value), (state.table.offset = 0), drawTable()));
  let timer;
  $('filter-text').addEventListener('input', (e) => {
    clearTimeout(timer);
    timer = setTimeout(() => ((state.table.text = e.target.value.trim()), (state.table.offset = 0), drawTable()), 200);
  });
  $('prev').addEventListener('click', () => ((state.table.offset = Math.max(0, state.table.offset - state.table.limit)), drawTable()));
  $('next').addEventListener('click', () => ((state.table.offset += state.table.limit), drawTable()));
  addEventListener('resize', () => Object.values(charts).forEach((u) => u.setSize({ width: width(u.root.parentElement), height: 240 })));
}

/** ?static=1: render once and open no event stream (headless screenshots, e.g. chromium --headless --virtual-time-budget, wait for the page to go quiet). */
const STILL = new URLSearchParams(location.search).get('static') === '1';

function follow() {
  if (STILL) {
    $('live').textContent = 'a still view (?static=1): reload for newer results';
    $('live').classList.add('off');
    return;
  }
  if (REPORT) {
    $('live').textContent = `a report written ${REPORT.writtenAt}; it does not update`;
    $('live').classList.add('off');
    return;
  }
  const events = new EventSource('./api/events');
  events.addEventListener('hello', () => {
    $('live').textContent = 'live: updates as the study is written';
    $('live').classList.remove('off');
  });
  events.addEventListener('update', async () => {
    await load();
    if (state.selected !== null) await drawCurves();
  });
  events.addEventListener('problem', (e) => ($('live').textContent = `cannot read the study: ${JSON.parse(e.data)}`));
  events.onerror = () => {
    $('live').textContent = 'disconnected from the server; retrying…';
    $('live').classList.add('off');
  };
}

wire();
load(true)
  .then(() => {
    document.body.dataset.ready = 'true';
    follow();
  })
  .catch((e) => {
    setHtml($('headline'), html`<span class="error">cannot show the study: ${e.message}</span>`);
    document.body.dataset.ready = 'failed';
  });
