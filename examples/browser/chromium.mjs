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
