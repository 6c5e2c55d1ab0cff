import { copyFileSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStudyStore, openStudyStore } from '@primer-search/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { candidate, evaluation, writeSyntheticRetrain, writeSyntheticStudy } from './__fixtures__/synthetic.js';
import { StudyData, comparisonChart, headlineChart, htmlReport, queryTable, startDashboard, type Dashboard } from './index.js';
import { logTicks } from './report.js';
import { studyConfig } from './__fixtures__/synthetic.js';
import { baselineDna } from '@primer-search/baselines';
import { modelEstimate, planBlock } from '@primer-search/compiler';

const dir = mkdtempSync(join(tmpdir(), 'primer-dashboard-'));

/** GET a raw path (no URL normalisation by the client, so `..` reaches the server as sent). */
function get(url: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string; body: string; headers: Record<string, unknown> }> {
  const u = new URL(url);
  return new Promise((ok, fail) => {
    request({ host: u.hostname, port: u.port, path, method: 'GET', headers }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => ok({ status: res.statusCode!, type: String(res.headers['content-type']), body, headers: res.headers }));
    })
      .on('error', fail)
      .end();
  });
}

describe('the dashboard server', () => {
  const file = join(dir, 'small.sqlite');
  let dashboard: Dashboard;

  beforeAll(async () => {
    const w = await writeSyntheticStudy(file, 40, { pending: 3 });
    await w.close();
    dashboard = await startDashboard({ open: () => openStudyStore(file, { readonly: true, mustExist: true }), location: file, port: 0, pollMs: 100 });
  }, 60_000);
  afterAll(() => dashboard?.close());

  it('serves the summary, the points, a page of the table and one candidate in full', async () => {
    const study = JSON.parse((await get(dashboard.url, '/api/study')).body);
    expect(study.summary.candidates).toBe(40);
    expect(study.summary.told).toBe(37);
    const { points } = JSON.parse((await get(dashboard.url, '/api/points')).body);
    expect(points.id).toHaveLength(40);
    expect(points.status.slice(-3)).toEqual([3, 3, 3]);
    const page = JSON.parse((await get(dashboard.url, '/api/candidates?sort=fitness&order=asc&limit=5')).body);
    expect(page.total).toBe(40);
    const fitness = page.rows.map((r: { fitness: number }) => r.fitness);
    expect(fitness).toEqual([...fitness].sort((a, b) => a - b));
    expect(fitness[0]).toBe(study.summary.leaderboard[0].fitness);
    const failed = JSON.parse((await get(dashboard.url, '/api/candidates?status=failed')).body);
    expect(failed.rows.every((r: { status: string; reason: string }) => r.status === 'failed' && r.reason === 'diverged')).toBe(true);
    const best = study.summary.leaderboard[0].id;
    const detail = JSON.parse((await get(dashboard.url, `/api/candidate/${best}`)).body);
    expect(detail.code).toContain('function main(h0)');
    expect(detail.lineage.at(-1)).toBe(best);
    expect(detail.lineage[0]).toBe(0);
    expect((await get(dashboard.url, '/api/candidate/999')).status).toBe(404);
  });

  it('answers only for its own address and loopback names (no DNS rebinding), with a policy that runs no inline script', async () => {
    const port = new URL(dashboard.url).port;
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'LOCALHOST', `[::1]:${port}`]) {
      const r = await get(dashboard.url, '/api/study', { host });
      expect(r.status, host).toBe(200);
    }
    for (const host of [`evil.example:${port}`, 'attacker.localhost.evil', '127.0.0.1.nip.io', 'localhost:80:80']) {
      const r = await get(dashboard.url, '/', { host });
      expect(r.status, JSON.stringify(host)).toBe(403);
      expect(r.body).toMatch(/is not a name this dashboard answers for .*--allow-host/);
      expect((await get(dashboard.url, '/api/study', { host })).body).not.toMatch(/summary/);
    }
    // no Host header at all (HTTP/1.0)
    const bare = await new Promise<string>((ok, fail) => {
      const socket = connect(Number(port), '127.0.0.1', () => socket.end('GET /api/study HTTP/1.0\r\n\r\n'));
      let got = '';
      socket.on('data', (c) => (got += c)).on('end', () => ok(got)).on('error', fail);
    });
    expect(bare).toMatch(/^HTTP\/1\.1 403/);
    const page = await get(dashboard.url, '/');
    expect(page.headers['content-security-policy']).toMatch(/script-src 'self';/);
    expect(page.headers['content-security-policy']).not.toMatch(/unsafe-inline[^;]*;.*script|script-src[^;]*unsafe/);
    // a name given with --allow-host
    const named = await startDashboard({ open: () => openStudyStore(file, { readonly: true, mustExist: true }), location: file, port: 0, allowedHosts: ['studies.lan'] });
    try {
      expect((await get(named.url, '/api/study', { host: 'studies.lan:8790' })).status).toBe(200);
      expect((await get(named.url, '/api/study', { host: 'other.lan' })).status).toBe(403);
    } finally {
      await named.close();
    }
  });

  it('never serves the password of a study in PostgreSQL: masked in its location, redacted from any message quoting it', async () => {
    const location = 'postgres://alice:S3cretPw@127.0.0.1:1/db?sslpassword=K3yPass1&schema=s';
    // a driver error that quotes the URL as given
    const down = await startDashboard({ open: () => Promise.reject(new Error(`connect ECONNREFUSED for ${location} (host=127.0.0.1 password=S3cretPw)`)), location, port: 0, pollMs: 50 });
    try {
      const bodies = await Promise.all(['/', '/api/study', '/api/points', '/api/candidate/0', '/api/events'].map((p) => get(down.url, p)));
      expect(bodies.map((b) => b.status)).toEqual([503, 503, 503, 503, 503]);
      for (const b of bodies) {
        expect(b.body).not.toMatch(/S3cretPw|K3yPass1/);
        expect(b.body).toContain('postgres://alice:***@127.0.0.1:1/db?sslpassword=***');
      }
      expect(down.problem()).toBeDefined();
    } finally {
      await down.close();
    }
  });

  it('shows a study written at schema 1 (no workers or retrainings tables), leaving the file as it was', async () => {
    const old = join(dir, 'v1.sqlite');
    copyFileSync(fileURLToPath(new URL('../../store/src/__fixtures__/study-v1.sqlite', import.meta.url)), old);
    const before = readFileSync(old);
    const d = await startDashboard({ open: () => openStudyStore(old, { readonly: true, mustExist: true }), location: old, port: 0, pollMs: 50 });
    try {
      const study = await get(d.url, '/api/study');
      expect(study.status, study.body).toBe(200);
      expect(JSON.parse(study.body).summary.candidates).toBe(4);
      await new Promise((r) => setTimeout(r, 200)); // a few polls of the change token
      expect(d.problem()).toBeUndefined();
    } finally {
      await d.close();
    }
    expect(readFileSync(old).equals(before)).toBe(true);
  });

  it('serves its own files and nothing else on disk', async () => {
    expect((await get(dashboard.url, '/')).type).toContain('text/html');
    expect((await get(dashboard.url, '/vendor/uPlot.esm.js')).status).toBe(200);
    for (const path of ['/../package.json', '/vendor/../../package.json', '/%2e%2e/%2e%2e/package.json', '/static/app.js/../../src/server.ts', '/etc/passwd', '//etc/passwd', '/vendor/..%2f..%2fpackage.json']) {
      const r = await get(dashboard.url, path);
      expect(r.status, path).toBe(404);
      expect(r.body, path).not.toContain('"name"');
    }
  });

  it('never writes to the study', async () => {
    const before = readFileSync(file);
    const mtime = statSync(file).mtimeMs;
    await get(dashboard.url, '/api/points');
    await new Promise((r) => setTimeout(r, 300));
    expect(readFileSync(file).equals(before)).toBe(true);
    expect(statSync(file).mtimeMs).toBe(mtime);
    expect((await new Promise<number>((ok) => request(new URL('/api/study', dashboard.url), { method: 'POST' }, (r) => ok(r.statusCode!)).end()))).toBe(405);
  });
});

describe('results not trained, and retrainings', () => {
  it('marks a result reused from a program computing the same function, and serves the retraining leaderboard', async () => {
    const file = join(dir, 'merged.sqlite');
    const w = await writeSyntheticStudy(file, 12, { sameAs: [4, 7] });
    const retrain = await writeSyntheticRetrain(w, { top: 2, seeds: [1, 2, 3] });
    await w.close();
    const d = await startDashboard({ open: () => openStudyStore(file, { readonly: true, mustExist: true }), location: file, port: 0, pollMs: 100 });
    try {
      const { points } = JSON.parse((await get(d.url, '/api/points')).body);
      expect(points.id.filter((_: number, i: number) => points.sameAs[i] !== null)).toEqual([4, 7]);
      expect(points.sameAs[4]).toBe(0);
      const detail = JSON.parse((await get(d.url, '/api/candidate/7')).body);
      expect(detail.sameAs).toBe(0);
      expect(detail.evaluation.fitness).toBe(JSON.parse((await get(d.url, '/api/candidate/0')).body).evaluation.fitness);
      expect(JSON.parse((await get(d.url, '/api/candidate/5')).body).sameAs).toBeNull();
      const page = JSON.parse((await get(d.url, '/api/candidates?limit=12')).body);
      expect(page.rows.filter((r: { sameAs: number | null }) => r.sameAs !== null).map((r: { id: number }) => r.id)).toEqual([4, 7]);
      const { summary } = JSON.parse((await get(d.url, '/api/study')).body);
      expect(summary.equivalent.programs).toBe(2);
      expect(summary.retrains).toHaveLength(1);
      const r = summary.retrains[0];
      expect(r).toMatchObject({ id: retrain, done: 9, total: 9, seeds: [1, 2, 3] });
      expect(r.rows).toHaveLength(3);
      // the synthetic runs: program k ends k below the seed at every seed, so the last one wins beyond the noise
      expect(r.winner).toMatchObject({ label: r.rows[2].label, isReference: false, verdict: 'better' });
      // and its words, the same the CLI prints: the page shows these, it does not word its own
      expect(r.table.end).toBe(`winner: ${r.rows[2].label} (perplexity ${r.winner.perplexity.mean.toFixed(2)} ± ${r.winner.perplexity.sd.toFixed(2)}), the lowest mean perplexity of the programs that completed every seed; lower than the seed's beyond the noise.`);
      expect(r.table.rows[2].cells.at(-1)).toMatch(/ lower$/);
    } finally {
      await d.close();
    }
  }, 30_000);
});

describe('a study it cannot read', () => {
  it('gets a clear page, not a stack trace, and is shown once it can be read', async () => {
    const bogus = join(dir, 'not-a-study.sqlite');
    writeFileSync(bogus, 'these are not the bytes of a SQLite database\n'.repeat(100));
    const later = join(dir, 'later.sqlite');
    for (const [file, says] of [
      [bogus, /not-a-study\.sqlite cannot be shown: .*(not a|database)/i],
      [later, /later\.sqlite cannot be shown: .*no study/i],
    ] as const) {
      const d = await startDashboard({ open: () => openStudyStore(file, { readonly: true, mustExist: true }), location: file, port: 0, pollMs: 100 });
      try {
        const page = await get(d.url, '/');
        expect(page.status).toBe(503);
        expect(page.body).toMatch(says);
        expect(page.body).not.toMatch(/\n\s+at |node:internal|\.ts:\d+/);
        expect(JSON.parse((await get(d.url, '/api/points')).body).error).toMatch(says);
        if (file === later) {
          const w = await writeSyntheticStudy(later, 5);
          await w.close();
          await new Promise((r) => setTimeout(r, 400));
          expect((await get(d.url, '/')).status).toBe(200);
          expect(d.data()?.points.id).toHaveLength(5);
        }
      } finally {
        await d.close();
      }
    }
  }, 30_000);
});

describe('StudyData', () => {
  it('sees a new result through the change token, and plans FLOPs a slice at a time', async () => {
    const file = join(dir, 'live.sqlite');
    const w = await writeSyntheticStudy(file, 12, { pending: 2 });
    const r = SqliteStudyStore.open(file, { readonly: true });
    const data = await StudyData.load(r);
    expect(await data.refresh(0)).toBe(false);
    while (!data.flopsComplete) data.planFlops(Infinity);
    expect(data.points.flops.every((f) => f !== null && f > 0)).toBe(true);
    const pending = (await w.candidates()).find((c) => !c.evaluation && !c.reused)!;
    await w.addEvaluation(evaluation(pending, 8.25, { seconds: 99 }));
    expect(await data.refresh()).toBe(true);
    expect(data.points.fitness[data.points.id.indexOf(pending.id)]).toBe(8.25);
    await w.advance({ told: 12, candidates: [candidate(12, pending.dna as never, pending.id)], strategyState: {} });
    expect(await data.refresh()).toBe(true);
    expect(data.points.id).toHaveLength(13);
    await w.close();
    await r.close();
  });

  it('sorts missing values last either way, filters by status and text, and pages', () => {
    const p = {
      id: [0, 1, 2, 3],
      parent: [null, 0, 0, 1],
      status: [0, 2, 0, 3],
      reused: [false, false, false, false],
      sameAs: [null, null, null, null],
      fitness: [9, null, 7, null],
      parameters: [1, 2, 3, 4],
      flops: [1, 1, 1, 1],
      seconds: [1, 2, 3, null],
      steps: [1, 1, 1, null],
      reason: [null, 'diverged', null, null],
      mutations: ['', 'swap h2 and h3', 'insert RED_MIN', 'delete'],
    };
    expect(queryTable(p, { sort: 'fitness' }).rows.map((r) => r.id)).toEqual([2, 0, 1, 3]);
    expect(queryTable(p, { sort: 'fitness', order: 'desc' }).rows.map((r) => r.id)).toEqual([0, 2, 1, 3]);
    expect(queryTable(p, { status: 'failed' }).rows.map((r) => r.id)).toEqual([1]);
    expect(queryTable(p, { text: 'red_min' }).rows.map((r) => r.id)).toEqual([2]);
    expect(queryTable(p, { offset: 2, limit: 1 })).toEqual({ total: 4, rows: [expect.objectContaining({ id: 2 })] });
  });
});

describe('primer study report', () => {
  it('writes one HTML file holding everything, and the headline chart as SVG and PNG', async () => {
    const file = join(dir, 'report.sqlite');
    const w = await writeSyntheticStudy(file, 30);
    const html = await htmlReport(w, { top: 3 });
    expect(html).toContain('globalThis.PRIMER_REPORT = ');
    expect(html).toContain('<script type="importmap">');
    // nothing it would fetch: no src or href but data: URLs and in-page anchors
    expect([...html.matchAll(/\b(?:src|href)="([^"]*)"/g)].map((m) => m[1]).filter((u) => !u!.startsWith('data:') && !u!.startsWith('#'))).toEqual([]);
    expect(html).not.toMatch(/\bfrom\s+['"]https?:/);
    const svg = (await headlineChart(w, 'svg')) as string;
    expect(svg).toMatch(/^<\?xml[^>]*>\n<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    expect((svg.match(/<circle/g) ?? []).length).toBeGreaterThan(10);
    // the best value is written on the chart, as the summary states it
    const best = (await StudyData.load(w)).summary.leaderboard[0]!.fitness;
    expect(svg).toContain(`best ${best.toFixed(3)}`);
    const png = (await headlineChart(w, 'png')) as Uint8Array;
    expect(Array.from(png.slice(0, 8))).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    await w.close();
  }, 60_000);
});

describe('the dashboard of a gzipped study', () => {
  it('reads it once: a failure is not retried every poll (each try would unpack it again)', async () => {
    const file = join(dir, 'bad.sqlite.gz');
    writeFileSync(file, 'not gzip at all');
    let opens = 0;
    const d = await startDashboard({
      open: () => {
        opens++;
        return openStudyStore(file, { readonly: true, mustExist: true });
      },
      location: file,
      port: 0,
      pollMs: 20,
    });
    try {
      await new Promise((r) => setTimeout(r, 300));
      expect(opens).toBe(1);
      expect(d.problem()).toContain('is not a gzip file, though its name ends in .gz');
    } finally {
      await d.close();
    }
  });
});

describe('primer study report of several studies', () => {
  type Result = {
    fitness: number | null;
    status?: 'completed' | 'hurdle' | 'failed';
    tokens: number;
    /** FLOPs per token its curve records (undefined: none recorded). */
    perToken?: number;
    /** Reuses the result of this earlier candidate: the same program (`same`), or the same function (`function`). */
    reuses?: { of: number; as: 'same' | 'function' };
    reason?: string;
    dna?: unknown;
  };
  /** A study whose candidates have these results. */
  async function writeStudy(name: string, strategy: string, results: Result[], settings: Record<string, unknown> = {}) {
    const store = SqliteStudyStore.open(join(dir, name));
    const config = studyConfig(results.length);
    await store.createStudy({ ...config, strategy, settings: { ...config.settings, ...settings } } as unknown as Record<string, unknown>);
    const records = results.map((r, id) => candidate(id, (r.dna ?? config.seedDna) as never, id === 0 ? null : 0, r.reuses?.as === 'same' ? `program-${r.reuses.of}` : `program-${id}`));
    await store.advance({ told: records.length, candidates: records, strategyState: {} });
    for (const [id, r] of results.entries()) {
      if (r.reuses?.as === 'same') continue;
      const status = r.status ?? (r.fitness === null ? 'failed' : 'completed');
      const e = evaluation(records[id]!, r.fitness, { seconds: id, status, hurdle: status === 'hurdle' ? 0 : undefined });
      const curve = r.fitness === null ? [] : [{ step: 1, tokens: r.tokens, seconds: 1, perplexity: r.fitness, ...(r.perToken === undefined ? {} : { flops: r.tokens * r.perToken }) }];
      // as recorded: a refusal before training, or a pool failure, trained nowhere (no step, no backend); a run that diverged at its first step trained on one
      const nowhere = /^(constraint|invalid|timeout|crashed|out of memory):/.test(r.reason ?? '');
      const trainedAs = r.tokens > 0 ? {} : nowhere ? { steps: 0, trainSeconds: 0, backend: null, environment: null } : { steps: 0 };
      await store.addEvaluation({ ...e, ...trainedAs, tokens: r.tokens, curve, ...(r.reason ? { reason: r.reason } : {}), ...(r.reuses?.as === 'function' ? { sameAs: `program-${r.reuses.of}` } : {}) });
    }
    return store;
  }

  it('draws each best so far against the FLOPs its candidates spent, and compares them within the least compute any spent', async () => {
    const a = await writeStudy('cmp-a.sqlite', 'evolution', [
      { fitness: 10, tokens: 1000, perToken: 6 },
      // refused before training: nothing
      { fitness: null, tokens: 0, reason: 'constraint: block_parameters>=0.9*seed not kept' },
      // stopped at a hurdle: what it trained; its perplexity is not a final one
      { fitness: 5, status: 'hurdle', tokens: 250, perToken: 6 },
      { fitness: 8, tokens: 1000, perToken: 6 },
      // the same program again, and another computing the same function: not trained
      { fitness: 8, tokens: 1000, reuses: { of: 3, as: 'same' } },
      { fitness: 10, tokens: 1000, perToken: 6, reuses: { of: 0, as: 'function' } },
    ]);
    const b = await writeStudy('cmp-b.sqlite', 'random', [
      { fitness: 9.5, tokens: 1000, perToken: 6 },
      { fitness: 7, tokens: 1000, perToken: 6 },
      { fitness: 6.5, tokens: 1000, perToken: 6 },
    ]);
    const { chart, rows, axis, equalCompute, warnings } = await comparisonChart([{ store: a, label: 'evolution <1>' }, { store: b, label: 'random 1' }], 'svg');
    expect([axis, equalCompute, warnings]).toEqual(['flops', 13_500, []]);
    expect(rows).toEqual([
      { label: 'evolution <1>', candidates: 6, trained: 3, flops: 13_500, unknownCost: 0, best: 8, bestAtEqualCompute: 8 },
      // within A's 13,500 FLOPs: its first two (12,000), not the third (18,000)
      { label: 'random 1', candidates: 3, trained: 3, flops: 18_000, unknownCost: 0, best: 6.5, bestAtEqualCompute: 7 },
    ]);
    const svg = chart as string;
    expect(svg).toMatch(/^<\?xml[^>]*>\n<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    // one line per study, the labels escaped as text, the equal-compute rule drawn
    expect((svg.match(/<path/g) ?? []).length).toBeGreaterThanOrEqual(2);
    expect(svg).toContain('evolution &lt;1&gt; (best 8.00)');
    expect(svg).not.toContain('evolution <1>');
    expect(svg).toContain('random 1 (best 6.50)');

    expect(svg).toContain('training FLOPs spent');
    expect(svg).toContain('dashed: the least compute any of them spent');

    // the same label twice is still two lines, one colour each
    const twice = (await comparisonChart([{ store: a, label: 'x' }, { store: b, label: 'x' }], 'svg')).chart as string;
    const lines = twice.slice(twice.indexOf('aria-label="line"'), twice.indexOf('aria-label="dot"'));
    expect([...lines.matchAll(/<path stroke="(rgb\([^)]*\))"/g)].map((m) => m[1])).toEqual(['rgb(21, 101, 192)', 'rgb(198, 40, 40)']);
    for (const s of [a, b]) await s.close();
  }, 60_000);

  it('labels every tick of its log axis over perplexities as close as a search\'s (a log scale\'s own ticks leave some blank)', async () => {
    const a = await writeStudy('cmp-ticks-a.sqlite', 'evolution', [86.2, 79.3, 71.2, 66.4].map((fitness) => ({ fitness, tokens: 1000, perToken: 6 })));
    const b = await writeStudy('cmp-ticks-b.sqlite', 'random', [85.8, 81.0].map((fitness) => ({ fitness, tokens: 1000, perToken: 6 })));
    const svg = (await comparisonChart([{ store: a, label: 'a' }, { store: b, label: 'b' }], 'svg')).chart as string;
    expect(svg).not.toMatch(/<text[^>]*><\/text>/);
    const yTicks = [...svg.matchAll(/<text y="0\.32em"[^>]*>([^<]+)<\/text>/g)].map((m) => Number(m[1]));
    expect(yTicks.length).toBeGreaterThanOrEqual(3);
    expect(Math.min(...yTicks)).toBeLessThanOrEqual(70);
    expect(Math.max(...yTicks)).toBeGreaterThan(80);
    for (const s of [a, b]) await s.close();
  });

  it('picks log-axis ticks that are round, distinct at three digits and few, or leaves them to the scale', () => {
    expect(logTicks([65.5, 87.7])).toEqual([70, 75, 80, 85]);
    // a narrow range: steps of a unit of the third digit at least, so no two labels read alike
    const narrow = logTicks([80.375, 80.69])!;
    expect(new Set(narrow.map((v) => v.toPrecision(3))).size).toBe(narrow.length);
    expect(narrow.length).toBeGreaterThanOrEqual(2);
    // values as good as equal (a float's last digit apart) end at once, with the scale's own ticks
    expect(logTicks([80.375, 80.37500000000001])).toBeUndefined();
    // wide ranges (beyond a factor of 4), and no range at all, are the scale's
    for (const d of [[1.85, 37], [5, 5], [Number.NaN, 5], [0, 5], [2, Number.POSITIVE_INFINITY]] as Array<[number, number]>) expect(logTicks(d), String(d)).toBeUndefined();
    for (const d of [[0.5, 1.5], [1e6, 3e6], [3.1, 3.9]] as Array<[number, number]>) {
      const t = logTicks(d)!;
      expect(t.length, String(d)).toBeLessThanOrEqual(20);
      expect(t.every((v) => v >= d[0] && v <= d[1])).toBe(true);
    }
  });

  it('costs a run that failed in training by the FLOPs its program plans, counts the failures whose cost is unknown, and says what is not comparable', async () => {
    const primer = baselineDna('primer', { dModel: 64 });
    const plan = (dna: unknown) => modelEstimate(planBlock(dna, { dModel: 64, seqLen: 64 }).estimate, { vocabSize: 2, layers: 2, dModel: 64, seqLen: 64 }).trainingFlopsPerToken;
    // as a run records them: the model's planned FLOPs per token (the embedding's share on top of the block's)
    const perToken = plan(studyConfig(1).seedDna) + 3 * 2 * 64 * 256;
    const a = await writeStudy('cmp-fail.sqlite', 'evolution', [
      { fitness: 10, tokens: 1000, perToken },
      // diverged before its first evaluation: no FLOPs recorded, 500 tokens trained
      { fitness: null, tokens: 500, reason: 'diverged: the training loss stopped being finite at step 3', dna: primer },
      // stopped by the pool: it may have trained, no tokens recorded
      { fitness: null, tokens: 0, reason: 'timeout: no result within 600 s' },
      // diverged at its first step: no tokens, and not a cost unknown
      { fitness: null, tokens: 0, reason: 'diverged: the training loss stopped being finite at step 1' },
      { fitness: 9, tokens: 1000, perToken },
      // a timeout whose last progress report recorded 300 tokens: trained, costed by its program's plan
      { fitness: null, tokens: 300, reason: 'timeout: no result after 600s', dna: primer },
    ]);
    const nothing = await writeStudy('cmp-none.sqlite', 'random', [{ fitness: null, tokens: 0, reason: 'constraint: not kept' }]);
    const other = await writeStudy('cmp-other.sqlite', 'random', [{ fitness: 20, tokens: 1000, perToken }], { dataset: 'lm1b' });
    const r = await comparisonChart([{ store: a, label: 'a' }, { store: nothing, label: 'nothing' }, { store: other, label: 'other' }], 'svg');
    // its model's FLOPs per token: the seed's as recorded, plus what the compiler plans primer's block to add
    const diverged = 500 * (perToken + plan(primer) - plan(studyConfig(1).seedDna));
    expect(plan(primer)).not.toBe(plan(studyConfig(1).seedDna));
    // trained: all but the timeout that recorded nothing (the run that diverged at its first step was trained, at no recorded cost)
    const timedOut = 300 * (perToken + plan(primer) - plan(studyConfig(1).seedDna));
    expect(r.rows[0]).toEqual({ label: 'a', candidates: 6, trained: 5, flops: 2000 * perToken + diverged + timedOut, unknownCost: 1, best: 9, bestAtEqualCompute: 10 });
    // the study that trained nothing is left out of the least compute
    expect(r.equalCompute).toBe(1000 * perToken);
    expect(r.rows[1]).toMatchObject({ flops: 0, bestAtEqualCompute: null });
    expect(r.warnings).toEqual([
      'the studies differ in dataset (a: brown; nothing: brown; other: lm1b): their perplexities are not comparable',
      'left out of the equal-compute comparison, with no training FLOPs counted: nothing',
      'a: 1 result failed outside training (a timeout, a crash, memory, another error) with no tokens recorded, counted as costing nothing',
    ]);

    // a trained result whose cost cannot be known (no result of its study records FLOPs): against candidates, nothing claimed at equal compute
    const old = await writeStudy('cmp-old.sqlite', 'evolution', [{ fitness: 9, tokens: 1000 }, { fitness: 7.5, tokens: 1000 }]);
    const o = await comparisonChart([{ store: a, label: 'a' }, { store: old, label: 'old' }], 'png');
    expect([o.axis, o.equalCompute]).toEqual(['candidates', null]);
    expect(o.rows.map((x) => [x.flops, x.trained, x.best, x.bestAtEqualCompute])).toEqual([[2000 * perToken + diverged + timedOut, 5, 9, null], [null, 2, 7.5, null]]);
    expect(o.warnings).toContainEqual(expect.stringContaining('the cost of some trained results cannot be known (old)'));
    expect(Array.from((o.chart as Uint8Array).slice(0, 4))).toEqual([0x89, 0x50, 0x4e, 0x47]);
    for (const s of [a, nothing, other, old]) await s.close();
  }, 60_000);
});
