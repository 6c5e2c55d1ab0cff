// The example page in a real browser: Debian's Chromium driven by playwright-core (never a
// downloaded browser). Trains and exports a small Primer-EZ model, bundles and serves the
// page on 127.0.0.1, types a prompt and waits for generated text, and compares the page's
// logits with Node's.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { nextTokenLogits } from '@primer-search/layers';
import { loadModel } from '@primer-search/layers/node';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPrimer } from '../../packages/cli/src/__fixtures__/run.js';
import { buildPage } from './build.mjs';
import { CHROMIUM_ARGS, CHROMIUM_PATHS, findChromium } from './chromium.mjs';
import { servePage } from './serve.mjs';

const CHROMIUM = findChromium();
if (!CHROMIUM && process.env.PRIMER_REQUIRE_CHROMIUM) throw new Error(`PRIMER_REQUIRE_CHROMIUM is set, but no Chromium was found at $PRIMER_CHROMIUM or ${CHROMIUM_PATHS.join(', ')}`);
if (!CHROMIUM) {
  console.warn(
    `examples/browser: SKIPPED, no Chromium found (looked at $PRIMER_CHROMIUM, ${CHROMIUM_PATHS.join(', ')}). ` +
      'Install it with apt-get install -y chromium (.ci/run does), or point PRIMER_CHROMIUM at one.',
  );
}

const root = fileURLToPath(new URL('../../', import.meta.url));
// what the functions run inside the page see (this file compiles without the DOM library)
declare const document: { querySelector(s: string): { textContent: string | null } | null; body: { dataset: Record<string, string | undefined> } };
declare const window: { primerPage: { logits(text: string): number[] } };

describe.skipIf(!CHROMIUM)('examples/browser in headless Chromium', () => {
  const dir = mkdtempSync(join(tmpdir(), 'primer-browser-'));
  const modelDir = join(dir, 'model');
  let server: { url: string; close(): Promise<void> };
  let browser: Browser;
  let inputs: string[];
  /** What our own sources in the bundle import that is not a file (a Node built-in the bundler had to leave out). */
  let builtins: string[];

  beforeAll(async () => {
    const trained = await runPrimer(['train', '--model', 'primer-ez', '--budget', '30steps', '--d-model', '32', '--seq-len', '32', '--batch', '8', '--layers', '2', '--eval-windows', '4', '--save', modelDir]);
    expect(trained.code, trained.stderr).toBe(0);
    const meta = await buildPage(join(dir, 'dist'));
    inputs = Object.keys(meta.inputs).map((f) => relative(root, join(root, f)));
    builtins = Object.entries(meta.inputs)
      .filter(([f]) => f.startsWith('packages/'))
      .flatMap(([f, i]) => i.imports.filter((m) => m.path.startsWith('node:') || m.path.startsWith('(disabled)') || m.external).map((m) => `${f} -> ${m.path}`));
    server = await servePage({ modelDir, distDir: join(dir, 'dist') });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("bundles @primer-search/layers' browser entry, which imports nothing of Node", () => {
    expect(inputs).toContain('packages/layers/src/index.ts');
    expect(inputs).toContain('packages/compiler/src/block.ts');
    expect(inputs.filter((f) => f === 'packages/layers/src/node.ts' || f.startsWith('packages/datasets/') || f.startsWith('packages/trainer-gpu/'))).toEqual([]);
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

    const prompt = 'The Fulton County Grand Jury said';
    const inPage = await page.evaluate((p) => window.primerPage.logits(p), prompt);
    await tf.setBackend('cpu');
    const model = await loadModel(modelDir);
    const inNode = nextTokenLogits(model, Array.from(new TextEncoder().encode(prompt)));
    expect(inPage).toHaveLength(257);
    let worst = 0;
    inPage.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - inNode[i]!))));
    expect(worst).toBeLessThan(1e-4);
    expect(errors).toEqual([]);
    await page.close();
  }, 180_000);
});
