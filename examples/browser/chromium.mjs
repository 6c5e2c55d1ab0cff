// Finding and starting Debian's Chromium for playwright-core (which never downloads a browser here).
import { existsSync } from 'node:fs';

/** Where a Chromium is looked for, in order. */
export const CHROMIUM_PATHS = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];

/** $PRIMER_CHROMIUM, else the first of CHROMIUM_PATHS that exists; undefined when none does. */
export function findChromium() {
  return [process.env.PRIMER_CHROMIUM, ...CHROMIUM_PATHS].find((p) => p && existsSync(p));
}

/** Headless, no sandbox or GPU, and quiet on a closed network (else it floods it with refused connections). */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];

/**
 * The Chromium a test file runs on: its path, or undefined (after printing why the tests of
 * `what` are skipped). Throws where PRIMER_REQUIRE_CHROMIUM is set (.ci/run sets it once it
 * installed one), so CI never skips them silently.
 * @param {string} what
 */
export function chromiumForTests(what) {
  const path = findChromium();
  const looked = `$PRIMER_CHROMIUM, ${CHROMIUM_PATHS.join(', ')}`;
  if (!path && process.env.PRIMER_REQUIRE_CHROMIUM) throw new Error(`PRIMER_REQUIRE_CHROMIUM is set, but no Chromium was found (looked at ${looked})`);
  if (!path) console.warn(`${what}: SKIPPED, no Chromium found (looked at ${looked}). Install it with apt-get install -y chromium (.ci/run does), or point PRIMER_CHROMIUM at one.`);
  return path;
}

/**
 * Starts the Chromium at `executablePath` (default: the one found) headless with CHROMIUM_ARGS.
 * @param {import('playwright-core').BrowserType} chromium  playwright-core's `chromium`
 * @param {string} [executablePath]
 */
export function launchChromium(chromium, executablePath = findChromium()) {
  if (!executablePath) throw new Error(`no Chromium found (looked at $PRIMER_CHROMIUM, ${CHROMIUM_PATHS.join(', ')}): apt-get install -y chromium, or set PRIMER_CHROMIUM`);
  return chromium.launch({ executablePath, args: CHROMIUM_ARGS });
}
