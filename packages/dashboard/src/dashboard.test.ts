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
import { studyConfig } from './__fixtures__/synthetic.js';

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

describe('primer study report of several studies', () => {
  /** A study whose candidates have these results: [perplexity or null (refused), status, tokens trained, FLOPs per token (undefined: not recorded)], a repeated hash reusing the earlier result. */
  async function writeStudy(name: string, strategy: string, results: Array<{ fitness: number | null; status?: 'completed' | 'hurdle' | 'failed'; tokens: number; perToken?: number; sameProgramAs?: number }>) {
    const store = SqliteStudyStore.open(join(dir, name));
    await store.createStudy({ ...studyConfig(results.length), strategy } as unknown as Record<string, unknown>);
    const seed = (studyConfig(1).seedDna) as never;
    const records = results.map((r, id) => candidate(id, seed, id === 0 ? null : 0, r.sameProgramAs === undefined ? `program-${id}` : `program-${r.sameProgramAs}`));
    await store.advance({ told: records.length, candidates: records, strategyState: {} });
    for (const [id, r] of results.entries()) {
      if (r.sameProgramAs !== undefined) continue;
      const status = r.status ?? (r.fitness === null ? 'failed' : 'completed');
      const e = evaluation(records[id]!, r.fitness, { seconds: id, status, hurdle: status === 'hurdle' ? 0 : undefined });
      const curve = r.fitness === null ? [] : [{ step: 1, tokens: r.tokens, seconds: 1, perplexity: r.fitness, ...(r.perToken === undefined ? {} : { flops: r.tokens * r.perToken }) }];
      await store.addEvaluation({ ...e, tokens: r.tokens, curve });
    }
    return store;
  }

  it('draws each best so far against the FLOPs its candidates spent, and compares them within the least compute any spent', async () => {
    // 6000 + 0 (refused) + 1500 (stopped at a hurdle: its perplexity is not a final one) + 6000 + 0 (the same program again)
    const a = await writeStudy('cmp-a.sqlite', 'evolution', [
      { fitness: 10, tokens: 1000, perToken: 6 },
      { fitness: null, tokens: 0 },
      { fitness: 5, status: 'hurdle', tokens: 250, perToken: 6 },
      { fitness: 8, tokens: 1000, perToken: 6 },
      { fitness: 8, tokens: 1000, sameProgramAs: 3 },
    ]);
    const b = await writeStudy('cmp-b.sqlite', 'random', [
      { fitness: 9.5, tokens: 1000, perToken: 6 },
      { fitness: 7, tokens: 1000, perToken: 6 },
      { fitness: 6.5, tokens: 1000, perToken: 6 },
    ]);
    const { chart, rows, axis } = await comparisonChart([{ store: a, label: 'evolution <1>' }, { store: b, label: 'random 1' }], 'svg');
    expect(axis).toBe('flops');
    expect(rows).toEqual([
      { label: 'evolution <1>', candidates: 5, trained: 3, flops: 13_500, best: 8, bestAtEqualCompute: 8 },
      // within A's 13,500 FLOPs: its first two (12,000), not the third (18,000)
      { label: 'random 1', candidates: 3, trained: 3, flops: 18_000, best: 6.5, bestAtEqualCompute: 7 },
    ]);
    const svg = chart as string;
    expect(svg).toMatch(/^<\?xml[^>]*>\n<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    // one line per study, the labels escaped as text, the equal-compute rule drawn
    expect((svg.match(/<path/g) ?? []).length).toBeGreaterThanOrEqual(2);
    expect(svg).toContain('evolution &lt;1&gt; (8.00)');
    expect(svg).not.toContain('evolution <1>');
    expect(svg).toContain('random 1 (6.50)');
    expect(svg).toContain('training FLOPs spent');
    expect(svg).toContain('dashed: the least compute any spent');

    // a trained result that does not record its FLOPs: against candidates, nothing claimed at equal compute
    const c = await writeStudy('cmp-c.sqlite', 'evolution', [{ fitness: 9, tokens: 1000, perToken: 6 }, { fitness: 7.5, tokens: 1000 }]);
    const old = await comparisonChart([{ store: a, label: 'a' }, { store: c, label: 'c' }], 'png');
    expect(old.axis).toBe('candidates');
    expect(old.rows.map((r) => [r.flops, r.best, r.bestAtEqualCompute])).toEqual([[13_500, 8, null], [null, 7.5, null]]);
    expect(Array.from((old.chart as Uint8Array).slice(0, 4))).toEqual([0x89, 0x50, 0x4e, 0x47]);
    for (const s of [a, b, c]) await s.close();
  }, 60_000);
});

