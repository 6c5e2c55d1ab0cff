// The example page in a real browser: Debian's Chromium driven by playwright-core (never a
// downloaded browser). Trains and exports a small Primer-EZ model, bundles and serves the
// page on 127.0.0.1, types a prompt and waits for generated text, and compares the page's
// logits with Node's.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { loadTokenizer } from '@primer-search/datasets';
import { nextTokenLogits } from '@primer-search/layers';
import { loadModel } from '@primer-search/layers/node';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPrimer } from '../../packages/cli/src/__fixtures__/run.js';
import { buildPage } from './build.mjs';
import { chromiumForTests, launchChromium } from './chromium.mjs';
import { servePage } from './serve.mjs';

const CHROMIUM = chromiumForTests('examples/browser');

const root = fileURLToPath(new URL('../../', import.meta.url));
// what the functions run inside the page see (this file compiles without the DOM library)
declare const document: { querySelector(s: string): { textContent: string | null } | null; body: { dataset: Record<string, string | undefined> } };
declare const window: { primerPage: { logits(text: string): number[]; roundTrip(text: string): Promise<number> } };

/** The largest difference between two logit vectors. */
const worstOf = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
};

/** Settings the page cannot use: said, the field marked, nothing generated; a good value again generates. */
async function refusesBadSettings(page: Page): Promise<void> {
  for (const [value, says] of [['0', /^tokens: a whole number from 1 to 1000, not 0$/], ['', /^tokens: a whole number from 1 to 1000 \(it is empty, or not a number\)$/], ['5000', /not 5000$/], ['2.5', /not 2\.5$/]] as const) {
    await page.fill('#tokens', value);
    await page.waitForFunction((re) => new RegExp(re).test(document.querySelector('#status')?.textContent ?? ''), says.source, { timeout: 10_000 });
    expect(await page.getAttribute('#tokens', 'aria-invalid')).toBe('true');
    expect(await page.getAttribute('#status', 'class')).toBe('error');
  }
  await page.fill('#temperature', '-1');
  await page.fill('#tokens', '12');
  await page.waitForFunction(() => /^temperature: /.test(document.querySelector('#status')?.textContent ?? ''), undefined, { timeout: 10_000 });
  const before = await page.getAttribute('body', 'data-generated');
  await page.fill('#temperature', '0.8');
  await page.waitForFunction((b) => document.body.dataset.generated !== b, before, { timeout: 60_000 });
  expect(await page.textContent('#status')).toMatch(/^\d+ tokens in [\d.]+ s/);
  expect(await page.getAttribute('#tokens', 'aria-invalid')).toBe('false');
}

describe.skipIf(!CHROMIUM)('examples/browser in headless Chromium', () => {
  const dir = mkdtempSync(join(tmpdir(), 'primer-browser-'));
  const modelDir = join(dir, 'model');
  let server: { url: string; close(): Promise<void> };
  let browser: Browser;
  let inputs: string[];
  /** What our own sources in the bundle import that is not a file (a Node built-in the bundler had to leave out). */
  let builtins: string[];

  const bpeDir = join(dir, 'model-bpe');
  let bpeServer: { url: string; close(): Promise<void> };

  beforeAll(async () => {
    process.env.PRIMER_CACHE_DIR = join(dir, 'cache');
    const small = ['--model', 'primer-ez', '--d-model', '32', '--seq-len', '32', '--batch', '8', '--layers', '2', '--eval-windows', '4'];
    const trained = await runPrimer(['train', ...small, '--budget', '30steps', '--save', modelDir]);
    expect(trained.code, trained.stderr).toBe(0);
    const bpe = await runPrimer(['train', ...small, '--budget', '4steps', '--tokenizer', 'bpe', '--vocab-size', '300', '--save', bpeDir]);
    expect(bpe.code, bpe.stderr).toBe(0);
    const meta = await buildPage(join(dir, 'dist'));
    inputs = Object.keys(meta.inputs).map((f) => relative(root, join(root, f)));
    builtins = Object.entries(meta.inputs)
      .filter(([f]) => f.startsWith('packages/'))
      .flatMap(([f, i]) => i.imports.filter((m) => m.path.startsWith('node:') || m.path.startsWith('(disabled)') || m.external).map((m) => `${f} -> ${m.path}`));
    server = await servePage({ modelDir, distDir: join(dir, 'dist') });
    bpeServer = await servePage({ modelDir: bpeDir, distDir: join(dir, 'dist') });
    browser = await launchChromium(chromium, CHROMIUM);
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await bpeServer?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("bundles the browser entries of @primer-search/layers and datasets, which import nothing of Node", () => {
    expect(inputs).toContain('packages/layers/src/index.ts');
    expect(inputs).toContain('packages/compiler/src/block.ts');
    expect(inputs).toContain('packages/datasets/src/browser.ts');
    expect(inputs.filter((f) => f === 'packages/layers/src/node.ts' || f === 'packages/datasets/src/index.ts' || f.startsWith('packages/trainer-gpu/'))).toEqual([]);
    expect(builtins).toEqual([]);
  });

  it('loads the exported model, generates as the user types, and computes the logits Node computes (1e-4)', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(server.url);
    await page.waitForSelector('body[data-ready]', { timeout: 60_000 });
    expect(await page.getAttribute('body', 'data-ready'), await page.textContent('#status') ?? '').toBe('true');
    expect(await page.textContent('#about')).toMatch(/primer-ez: [\d,]+ parameters, 2 layers, context 32 tokens, trained on brown \(byte tokens\), validation perplexity [\d.]+ · TensorFlow\.js 4\.22\.0 on wasm/);
    // the first generation, of the page's own prompt
    await page.waitForSelector('body[data-generated]', { timeout: 60_000 });

    await page.fill('#prompt', '');
    await page.type('#prompt', 'She told the committee', { delay: 20 });
    await page.waitForFunction(() => document.querySelector('.prompt')?.textContent === 'She told the committee' && (document.querySelector('#continuation')?.textContent ?? '').length > 0, undefined, { timeout: 60_000 });
    const run = await page.getAttribute('body', 'data-generated');
    await page.waitForFunction((before) => document.body.dataset.generated !== before, run, { timeout: 60_000 }).catch(() => undefined);
    expect(await page.textContent('#status')).toMatch(/^\d+ tokens in [\d.]+ s/);
    expect((await page.textContent('#continuation'))!.length).toBeGreaterThan(0);

    await refusesBadSettings(page);

    const prompt = 'The Fulton County Grand Jury said';
    const inPage = await page.evaluate((p) => window.primerPage.logits(p), prompt);
    await tf.setBackend('cpu');
    const model = await loadModel(modelDir);
    const inNode = nextTokenLogits(model, Array.from(new TextEncoder().encode(prompt)));
    expect(inPage).toHaveLength(257);
    expect(worstOf(inPage, inNode)).toBeLessThan(1e-4);
    // saved in the page and loaded back: the same model
    expect(await page.evaluate((p) => window.primerPage.roundTrip(p), prompt)).toBe(0);
    expect(errors).toEqual([]);
    await page.close();
  }, 180_000);

  it('loads a model trained with the BPE tokenizer, with its vocabulary, and computes the logits Node computes', async () => {
    const page = await browser.newPage();
    await page.goto(bpeServer.url);
    await page.waitForSelector('body[data-ready]', { timeout: 60_000 });
    expect(await page.getAttribute('body', 'data-ready'), (await page.textContent('#status')) ?? '').toBe('true');
    expect(await page.textContent('#about')).toContain('(bpe tokens)');
    await page.waitForSelector('body[data-generated]', { timeout: 60_000 });
    await refusesBadSettings(page);

    const prompt = 'The Fulton County Grand Jury said';
    const inPage = await page.evaluate((p) => window.primerPage.logits(p), prompt);
    await tf.setBackend('cpu');
    const tokenizer = await loadTokenizer(bpeDir);
    expect(tokenizer.name).toBe('bpe');
    const inNode = nextTokenLogits(await loadModel(bpeDir), Array.from(tokenizer.encode(prompt)));
    expect(inPage).toHaveLength(300);
    expect(worstOf(inPage, inNode)).toBeLessThan(1e-4);
    await page.close();
  }, 120_000);
});
