// The dashboard in Debian's headless Chromium (playwright-core; never a downloaded browser).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { openStudyStore, type SqliteStudyStore } from '@primer-search/store';
import Database from 'better-sqlite3';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_ARGS, chromiumForTests, launchChromium } from '../../../examples/browser/chromium.mjs';
import { candidate, evaluation, writeSyntheticFidelity, writeSyntheticRetrain, writeSyntheticStudy } from './__fixtures__/synthetic.js';
import { htmlReport, startDashboard, type Dashboard } from './index.js';

const CHROMIUM = chromiumForTests('packages/dashboard (browser tests)');

// what the functions run inside the page see (this file compiles without the DOM library)
declare const document: { body: { dataset: Record<string, string | undefined> }; querySelector(s: string): { textContent: string | null } | null };
declare const window: { marker?: string; dashboard: { charts: Record<string, { ctx: { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } }; bbox: { left: number; top: number; width: number; height: number }; data: Array<Array<number | null>> }> } };

/** For each chart: points with a value, and coloured (not grey) pixels in its plotting area. */
const drawnMarks = (page: Page) =>
  page.evaluate(() =>
    Object.fromEntries(
      Object.entries(window.dashboard.charts).map(([id, u]) => {
        const { left, top, width, height } = u.bbox;
        const px = u.ctx.getImageData(left, top, width, height).data;
        let coloured = 0;
        for (let i = 0; i < px.length; i += 4) if (px[i + 3]! > 0 && Math.max(Math.abs(px[i]! - px[i + 1]!), Math.abs(px[i + 1]! - px[i + 2]!)) > 40) coloured++;
        const values = u.data.slice(1).reduce((n, s) => n + s.filter((v) => v !== null && v !== undefined).length, 0);
        return [id, { values, coloured }];
      }),
    ),
  );

describe.skipIf(!CHROMIUM)('the dashboard in headless Chromium', () => {
  const dir = mkdtempSync(join(tmpdir(), 'primer-dashboard-browser-'));
  const small = join(dir, 'small.sqlite');
  const large = join(dir, 'large.sqlite');
  let browser: Browser;
  let writer: SqliteStudyStore;
  let dashboard: Dashboard;

  beforeAll(async () => {
    writer = await writeSyntheticStudy(small, 40, { pending: 3, sameAs: [6] });
    // a retraining of the seed and the best 2 over 2 seeds, its last run still to come
    await writeSyntheticRetrain(writer, { top: 2, seeds: [1, 2], runs: 5 });
    dashboard = await startDashboard({ open: () => openStudyStore(small, { readonly: true, mustExist: true }), location: small, port: 0, pollMs: 200 });
    browser = await launchChromium(chromium, CHROMIUM);
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await dashboard?.close();
    await writer?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('draws every chart, shows a clicked candidate\'s code, and shows a new result without a reload', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1600 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(dashboard.url);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
    const marks = await drawnMarks(page);
    expect(Object.keys(marks).sort()).toEqual(['chart-best', 'chart-curves', 'chart-flops', 'chart-params', 'chart-time']);
    for (const [id, m] of Object.entries(marks)) {
      expect(m.values, id).toBeGreaterThan(3);
      expect(m.coloured, id).toBeGreaterThan(20);
    }
    // every point inside its chart's scales with a margin (none cut at an edge), perplexity on a log scale, the key on one line, short axis numbers
    const geometry = await page.evaluate(() =>
      Object.fromEntries(
        Object.entries((window as unknown as { dashboard: { charts: Record<string, { data: Array<Array<number | null>>; scales: Record<string, { min: number; max: number; distr: number }>; root: { querySelector(s: string): { getBoundingClientRect(): { height: number } } | null; querySelectorAll(s: string): ArrayLike<{ textContent: string | null }> } }> } }).dashboard.charts).map(([id, u]) => {
          const ys = u.data.slice(1).flat().filter((v): v is number => v !== null && v !== undefined);
          const xs = u.data[0]!.filter((v): v is number => v !== null);
          return [id, { yIn: u.scales.y!.min < Math.min(...ys) && u.scales.y!.max > Math.max(...ys), xIn: u.scales.x!.min < Math.min(...xs) && u.scales.x!.max > Math.max(...xs), logY: u.scales.y!.distr === 3, legend: u.root.querySelector('.u-legend')?.getBoundingClientRect().height ?? 0, ticks: Array.from(u.root.querySelectorAll('.u-axis div')).map((d) => d.textContent ?? '') }];
        }),
      ),
    );
    for (const [id, g] of Object.entries(geometry)) {
      expect([g.yIn, g.xIn], id).toEqual([true, true]);
      if (id !== 'chart-curves') expect(g.logY, id).toBe(true);
      expect(g.legend, id).toBeLessThan(40);
      for (const t of g.ticks) expect(t.length, `${id} tick ${t}`).toBeLessThanOrEqual(7);
    }
    expect(await page.textContent('#table-range')).toBe('rows 1-40 of 40');
    // the hurdles: each rung with the candidates it stopped, and what a candidate cost on average
    expect(await page.textContent('#hurdles')).toMatch(/^rungs at 25% \(stopped \d+\), 50% \(stopped \d+\) of the budget, saving [\d.]+ candidate budgets \([\d.]+% of full training\): a candidate cost [\d.]+ of the full budget on average$/);
    expect(await page.textContent('#candidates tbody tr[data-id="6"]')).toContain('same function as candidate 0');
    expect(await page.isVisible('#retrains-section')).toBe(true);
    expect(await page.locator('#retrains table.retrain tbody tr').count()).toBe(3);
    expect(await page.textContent('#retrains')).toContain('5 of 6 runs recorded');
    expect(await page.textContent('#retrains')).toContain('not finished');

    // click a candidate in the table: its program, its facts and its diffs
    await page.click('#candidates tbody tr[data-id="5"]');
    await page.waitForFunction(() => document.querySelector('#program-title')?.textContent === 'Candidate 5');
    expect(await page.textContent('#program')).toContain('function main(h0)');
    await page.click('.tabs button[data-view="diffSeed"]');
    expect(await page.textContent('#program')).toMatch(/@@ seed line \d+ @@|the same code/);
    // and from the lineage of the best
    await page.click('#lineage button[data-id="0"]');
    await page.waitForFunction(() => document.querySelector('#program-title')?.textContent === 'Candidate 0 (the seed)');

    // a result and a new candidate written while the page is open appear without a reload
    await page.evaluate(() => void (window.marker = 'still the same page'));
    const pending = (await writer.candidates()).find((c) => !c.evaluation && !c.reused)!;
    await writer.addEvaluation(evaluation(pending, 1.5, { seconds: 500 }));
    await writer.advance({ told: 40, candidates: [candidate(40, pending.dna as never, pending.id, pending.hash)], strategyState: {} });
    await page.waitForFunction(() => document.querySelector('#table-range')?.textContent === 'rows 1-41 of 41', undefined, { timeout: 10_000 });
    await page.waitForFunction((id) => (document.querySelector('#headline')?.textContent ?? '').includes(`best: candidate ${id}, perplexity 1.500`), pending.id, { timeout: 10_000 });
    // the retraining's last run: the leaderboard says who won, and its program opens from there
    const plan = (await writer.retrains())[0]!;
    await writer.addRetrainRun({ ...(await writer.retrainRuns(plan.id)).find((r) => r.program === 2)!, seed: 2, fitness: 7.1 });
    await page.waitForFunction(() => (document.querySelector('#retrains')?.textContent ?? '').includes('6 of 6 runs recorded'), undefined, { timeout: 10_000 });
    const winner = plan.programs[2]!;
    expect(await page.textContent('#retrains')).toContain(`winner: ${winner.label}`);
    // the notes under the table say what the speedup is measured in
    expect(await page.textContent('#retrains')).toMatch(/speedup: the training (seconds|steps|tokens|FLOPs) the seed needed/);
    await page.click(`#retrains button[data-id="${winner.candidate}"]`);
    await page.waitForFunction((id) => document.querySelector('#program-title')?.textContent === `Candidate ${id}`, winner.candidate);
    expect(await page.evaluate(() => window.marker)).toBe('still the same page');
    expect(errors).toEqual([]);
    await page.close();
  }, 90_000);

  it('draws a fidelity measurement as a scatter of search against retrained perplexity, with the diagonal, and a Pareto search\'s front, in the live page and the report', async () => {
    const file = join(dir, 'fidelity.sqlite');
    const w = await writeSyntheticStudy(file, 30);
    const id = await writeSyntheticFidelity(w, { sample: 6, seeds: [1, 2] });
    // searched for perplexity and parameters: the summary holds its front
    await w.updateStudy({ ...(await w.config())!, strategy: 'pareto', objectives: ['perplexity', 'parameters'] });
    const store = await openStudyStore(file, { readonly: true, mustExist: true });
    const report = join(dir, 'fidelity.html');
    writeFileSync(report, await htmlReport(store, { top: 5 }));
    await store.close();
    await w.close();
    const d = await startDashboard({ open: () => openStudyStore(file, { readonly: true, mustExist: true }), location: file, port: 0 });
    try {
      for (const url of [d.url, pathToFileURL(report).href]) {
        const page = await browser.newPage({ viewport: { width: 1280, height: 1600 } });
        const errors: string[] = [];
        page.on('pageerror', (e) => errors.push(e.message));
        await page.goto(url);
        await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
        expect(await page.isVisible('#fidelity-section'), url).toBe(true);
        const chart = `chart-fidelity-${id}`;
        const marks = (await drawnMarks(page))[chart]!;
        // six programs and the diagonal through their six search perplexities
        expect(marks.values, url).toBe(12);
        expect(marks.coloured, url).toBeGreaterThan(20);
        const g = await page.evaluate((c) => {
          const u = (window as unknown as { dashboard: { charts: Record<string, { data: number[][]; scales: Record<string, { min: number; max: number; distr: number }> }> } }).dashboard.charts[c]!;
          return { x: u.data[0], diagonal: u.data[1], points: u.data[2], xLog: u.scales.x!.distr === 3, yLog: u.scales.y!.distr === 3, yIn: u.scales.y!.min < Math.min(...u.data[2]!) && u.scales.y!.max > Math.max(...u.data[1]!) };
        }, chart);
        expect(g.diagonal).toEqual(g.x);
        // the synthetic longer runs are half the search's perplexity (mean over two seeds), the best two swapped
        expect(g.points![2]).toBeCloseTo(g.x![2]! / 2 + 0.005, 9);
        expect(g.points![0]).toBeCloseTo(g.x![1]! / 2 + 0.005, 9);
        expect([g.xLog, g.yLog, g.yIn]).toEqual([true, true, true]);
        const text = (await page.textContent('#fidelity')) ?? '';
        expect(text).toContain(`fidelity ${id}: 6 programs spread over the search's range`);
        expect(text).toMatch(/Spearman's rho 0\.94 \[[-\d.]+, [-\d.]+\] \(bootstrap 95%\)/);
        expect(await page.locator('#fidelity table.fidelity tbody tr').count()).toBe(6);
        // the front: every completed program a point, the front's members a line and a table
        expect(await page.isVisible('#front-section'), url).toBe(true);
        const front = await page.evaluate(() => {
          const u = (window as unknown as { dashboard: { charts: Record<string, { data: Array<Array<number | null>> }> } }).dashboard.charts['chart-front']!;
          return { line: u.data[1]!.filter((v) => v !== null).length, points: u.data[2]!.filter((v) => v !== null).length };
        });
        const rows = await page.locator('#front tbody tr').count();
        expect(front.line, url).toBe(rows);
        expect(rows, url).toBeGreaterThan(0);
        expect(front.points, url).toBeGreaterThan(rows);
        expect(await page.textContent('#front-caption'), url).toMatch(new RegExp(`parameters against perplexity: ${rows} of ${front.points} completed programs on the front`));
        // a program opens from its row
        const first = await page.getAttribute('#fidelity table.fidelity tbody tr button', 'data-id');
        await page.click(`#fidelity button[data-id="${first}"]`);
        await page.waitForFunction((c) => (document.querySelector('#program-title')?.textContent ?? '').startsWith(`Candidate ${c}`), first);
        expect(errors, url).toEqual([]);
        await page.close();
      }
    } finally {
      await d.close();
    }
  }, 90_000);

  it('?static=1 renders once with no event stream, so the usual headless screenshot command finishes', async () => {
    const file = join(dir, 'still.sqlite');
    const w = await writeSyntheticStudy(file, 12);
    await w.close();
    const d = await startDashboard({ open: () => openStudyStore(file, { readonly: true, mustExist: true }), location: file, port: 0 });
    try {
      const page = await browser.newPage();
      const requests: string[] = [];
      page.on('request', (r) => requests.push(new URL(r.url()).pathname));
      await page.goto(`${d.url}?static=1`);
      await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
      expect(await page.textContent('#live')).toContain('a still view');
      expect(requests).not.toContain('/api/events');
      await page.close();
      // chromium --headless --screenshot --virtual-time-budget: it waits for the page to go quiet, which a live page never does
      const shot = join(dir, 'still.png');
      const t0 = performance.now();
      // (asynchronously: the server answering it runs in this process)
      const r = await promisify(execFile)(CHROMIUM!, [...CHROMIUM_ARGS, `--screenshot=${shot}`, '--window-size=1280,900', '--virtual-time-budget=10000', `${d.url}?static=1`], { timeout: 90_000 }).then(
        () => ({ code: 0, stderr: '' }),
        (e: { code: number | null; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
      );
      expect(r.code, r.stderr).toBe(0);
      expect(readFileSync(shot).subarray(1, 4).toString()).toBe('PNG');
      console.log(`headless screenshot of ?static=1 in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    } finally {
      await d.close();
    }
  }, 120_000);

  it('loads a study of 20,000 candidates in under 3 seconds', async () => {
    const w = await writeSyntheticStudy(large, 20_000, { distinct: 300 });
    await w.close();
    const big = await startDashboard({ open: () => openStudyStore(large, { readonly: true, mustExist: true }), location: large, port: 0 });
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    try {
      const t0 = performance.now();
      await page.goto(big.url);
      await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
      const seconds = (performance.now() - t0) / 1000;
      console.log(`20,000-candidate study: page ready in ${seconds.toFixed(2)} s`);
      // a guard against a page that slows with the study's size (a quadratic table, a chart per
      // row), not a speed target: it is ready in 1-2.5 s here, two test files sharing two cores
      expect(seconds).toBeLessThan(10);
      expect(await page.textContent('#table-range')).toBe('rows 1-50 of 20,000');
      await page.click('th[data-sort="fitness"]');
      await page.waitForFunction(() => document.querySelector('#candidates tbody tr td')?.textContent !== '0');
    } finally {
      await page.close();
      await big.close();
    }
  }, 120_000);

  it('a study with hostile text in every field runs no script, in the live page and in the report, and shows the text', async () => {
    const X = (field: string) => `<img src=x onerror="window.__xss=(window.__xss||[]).concat('${field}')">"'</script><script>window.__xss=['${field} script']</script>`;
    const file = join(dir, 'hostile.sqlite');
    const w = await writeSyntheticStudy(file, 12, { pending: 1 });
    await writeSyntheticRetrain(w, { top: 2, seeds: [1, 2], runs: 3 });
    const fidelityId = await writeSyntheticFidelity(w, { sample: 4, seeds: [1] });
    const config = (await w.config())!;
    await w.updateStudy({ ...config, strategy: X('strategy'), seedModel: X('seedModel'), settings: { ...(config.settings as object), dataset: X('dataset'), layers: X('layers') } });
    await w.registerWorker({ id: X('worker'), environment: { host: X('worker host'), backend: X('worker backend') } as never, plugins: [{ name: X('plugin') }], allowMixedHardware: false, startedAt: X('startedAt') });
    await w.close();
    const db = new Database(file);
    db.prepare("UPDATE evaluations SET reason = ?, machine = ?, backend = ?, budget = ? WHERE status = 'failed'").run(X('reason'), X('machine'), X('backend'), X('budget'));
    db.prepare('UPDATE evaluations SET machine = ?, environment = ?').run(X('machine'), JSON.stringify({ host: X('env host'), backend: X('env backend'), device: X('device') }));
    db.prepare('UPDATE candidates SET mutations = ? WHERE id > 0').run(JSON.stringify([{ description: X('mutation') }]));
    const { plan } = db.prepare('SELECT plan FROM retrains WHERE id = 1').get() as { plan: string };
    const hostilePlan = JSON.parse(plan);
    hostilePlan.top = X('top');
    hostilePlan.budget = X('plan budget');
    hostilePlan.seeds = [X('seed'), 2];
    hostilePlan.programs[1].label = X('label');
    db.prepare('UPDATE retrains SET plan = ? WHERE id = 1').run(JSON.stringify(hostilePlan));
    const fidelityPlan = JSON.parse((db.prepare('SELECT plan FROM retrains WHERE id = ?').get(fidelityId) as { plan: string }).plan);
    fidelityPlan.budget = X('fidelity budget');
    fidelityPlan.sample = X('sample');
    fidelityPlan.programs[1].label = X('fidelity label');
    fidelityPlan.programs[2].searchFitness = X('search fitness');
    db.prepare('UPDATE retrains SET plan = ? WHERE id = ?').run(JSON.stringify(fidelityPlan), fidelityId);
    db.close();

    const live = await startDashboard({ open: () => openStudyStore(file, { readonly: true, mustExist: true }), location: file, port: 0 });
    const report = join(dir, 'hostile.html');
    const store = await openStudyStore(file, { readonly: true, mustExist: true });
    writeFileSync(report, await htmlReport(store, { top: 5 }));
    await store.close();
    try {
      for (const url of [live.url, pathToFileURL(report).href]) {
        const page = await browser.newPage({ viewport: { width: 1280, height: 1600 } });
        const errors: string[] = [];
        page.on('pageerror', (e) => errors.push(e.message));
        await page.goto(url);
        await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
        // open the failed candidate (a hostile mutation and reason) and its diff view
        await page.click('#candidates tbody tr:has(td.status-failed)');
        // (a report holds the programs of the best and their lineages only: it says so for this one)
        const shown = url === live.url ? "concat('reason')" : 'is not in this report';
        await page.waitForFunction((t) => (document.querySelector('#program-facts')?.textContent ?? '').includes(t), shown);
        await page.click('.tabs button[data-view="diffParent"]');
        const text = (await page.textContent('body')) ?? '';
        await page.click('#lineage button[data-id="0"]');
        await page.waitForFunction(() => document.querySelector('#program-title')?.textContent === 'Candidate 0 (the seed)');
        for (const field of ['strategy', 'seedModel', 'dataset', 'layers', ...(url === live.url ? ['reason'] : []), 'mutation', 'env host', 'env backend', 'top', 'plan budget', 'seed', 'label', 'fidelity budget', 'fidelity label']) {
          expect(text, `${url}: ${field}`).toContain(`window.__xss=(window.__xss||[]).concat('${field}')`);
        }
        expect(await page.evaluate(() => (window as unknown as { __xss?: string[] }).__xss), url).toBeUndefined();
        expect(await page.locator('img').count(), url).toBe(0);
        expect(errors, url).toEqual([]);
        await page.close();
      }
    } finally {
      await live.close();
    }
  }, 90_000);

  it('the report opens from a file with no network, and draws its charts', async () => {
    const file = join(dir, 'report.html');
    writeFileSync(file, await htmlReport(writer, { top: 3 }));
    const page = await browser.newPage({ viewport: { width: 1280, height: 1600 } });
    const fetched: string[] = [];
    await page.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith('file:') || url.startsWith('data:')) return route.continue();
      fetched.push(url);
      return route.abort();
    });
    await page.goto(pathToFileURL(file).href);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
    expect(fetched).toEqual([]);
    expect(await page.textContent('#live')).toMatch(/a report written .*; it does not update/);
    for (const [id, m] of Object.entries(await drawnMarks(page))) expect(m.coloured, id).toBeGreaterThan(20);
    await page.close();
  }, 60_000);
});
