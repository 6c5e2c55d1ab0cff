// The screenshot of examples/browser in docs/: trains and exports a Primer-EZ model on the
// Brown corpus (or takes --model DIR), serves the page, types a prompt in headless Chromium,
// waits for the generated text and saves docs/browser-example.png.
// Usage: npm run example:browser:screenshot [-- --model DIR] [--budget 2m]
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { main } from '../packages/cli/src/index.js';
import { buildPage } from '../examples/browser/build.mjs';
import { launchChromium } from '../examples/browser/chromium.mjs';
import { servePage } from '../examples/browser/serve.mjs';

const { values } = parseArgs({ options: { model: { type: 'string' }, budget: { type: 'string', default: '2m' }, out: { type: 'string', default: 'docs/browser-example.png' } } });
let model = values.model;
if (!model) {
  model = join('runs', 'browser-model');
  const code = await main(['train', '--model', 'primer-ez', '--budget', values.budget!, '--save', model]);
  if (code !== 0) throw new Error(`training failed (exit ${code})`);
}
if (!existsSync(join(model, 'model.json'))) throw new Error(`--model: ${model} has no model.json`);
await buildPage();
const server = await servePage({ modelDir: model });
const browser = await launchChromium(chromium);
try {
  const page = await browser.newPage({ viewport: { width: 900, height: 620 } });
  await page.goto(server.url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  await page.fill('#prompt', '');
  await page.type('#prompt', 'The committee said that the', { delay: 30 });
  await page.waitForFunction(() => (globalThis as unknown as { document: { body: { dataset: Record<string, string> }; querySelector(s: string): { textContent: string } | null } }).document.querySelector('.prompt')?.textContent === 'The committee said that the', undefined, { timeout: 60_000 });
  await page.waitForFunction(() => /tokens in/.test((globalThis as unknown as { document: { querySelector(s: string): { textContent: string } } }).document.querySelector('#status').textContent), undefined, { timeout: 120_000 });
  await page.screenshot({ path: values.out!, fullPage: true });
  console.log(`wrote ${values.out} (model ${model}): ${await page.textContent('#about')}`);
} finally {
  await browser.close();
  await server.close();
}
