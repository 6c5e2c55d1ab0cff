// The dashboard in Debian's headless Chromium (playwright-core; never a downloaded browser).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { openStudyStore, type SqliteStudyStore } from '@primer-search/store';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumForTests, launchChromium } from '../../../examples/browser/chromium.mjs';
import { candidate, evaluation, writeSyntheticRetrain, writeSyntheticStudy } from './__fixtures__/synthetic.js';
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
    expect(await page.textContent('#table-range')).toBe('rows 1-40 of 40');
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
    await page.click(`#retrains button[data-id="${winner.candidate}"]`);
    await page.waitForFunction((id) => document.querySelector('#program-title')?.textContent === `Candidate ${id}`, winner.candidate);
    expect(await page.evaluate(() => window.marker)).toBe('still the same page');
    expect(errors).toEqual([]);
    await page.close();
  }, 90_000);

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
      expect(seconds).toBeLessThan(3);
      expect(await page.textContent('#table-range')).toBe('rows 1-50 of 20,000');
      await page.click('th[data-sort="fitness"]');
      await page.waitForFunction(() => document.querySelector('#candidates tbody tr td')?.textContent !== '0');
    } finally {
      await page.close();
      await big.close();
    }
  }, 120_000);

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
