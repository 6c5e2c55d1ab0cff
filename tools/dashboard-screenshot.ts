// The screenshots of docs/dashboard.md: serves the dashboard of a study, opens it in headless
// Chromium, and saves the whole page, and the page with a candidate's diff selected.
// Usage: npm run dashboard:screenshot -- STUDY [--out docs/dashboard.png] [--candidate ID]
import { parseArgs } from 'node:util';
import { startDashboard } from '@primer-search/dashboard';
import { openStudyStore } from '@primer-search/store';
import { chromium } from 'playwright-core';
import { launchChromium } from '../examples/browser/chromium.mjs';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { out: { type: 'string', default: 'docs/dashboard.png' }, candidate: { type: 'string' } } });
const study = positionals[0];
if (!study) throw new Error('usage: npm run dashboard:screenshot -- STUDY [--out FILE] [--candidate ID]');
const dashboard = await startDashboard({ open: () => openStudyStore(study, { readonly: true, mustExist: true }), location: study, port: 0 });
const browser = await launchChromium(chromium);
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  // a still page (?static=1): rendered once, no event stream
  await page.goto(`${dashboard.url}?static=1`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
  await page.waitForTimeout(300);
  await page.screenshot({ path: values.out!, fullPage: true });
  console.log(`wrote ${values.out}`);
  if (values.candidate) {
    await page.click(`#candidates tbody tr[data-id="${values.candidate}"]`);
    await page.click('.tabs button[data-view="diffParent"]');
    await page.waitForTimeout(300);
    const out = values.out!.replace(/\.png$/, '-candidate.png');
    await (await page.$('.two'))!.screenshot({ path: out });
    console.log(`wrote ${out}`);
  }
} finally {
  await browser.close();
  await dashboard.close();
}
