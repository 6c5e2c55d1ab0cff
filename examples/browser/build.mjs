// Bundles the page's script (tfjs, its wasm backend and @primer-search/layers, from the
// workspace's sources) into dist/app.js, and copies the wasm binaries beside it.
// Usage: node examples/browser/build.mjs [outdir]
import { copyFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));

/** Builds into `outdir` (default examples/browser/dist); returns esbuild's metafile. */
export async function buildPage(outdir = join(here, 'dist')) {
  mkdirSync(outdir, { recursive: true });
  const result = await build({
    entryPoints: [join(here, 'app.ts')],
    outfile: join(outdir, 'app.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    // the workspace packages' TypeScript sources, as the tests use them
    conditions: ['@primer-search/source', 'browser', 'module', 'import'],
    sourcemap: true,
    metafile: true,
    logLevel: 'warning',
  });
  const wasmDir = dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json'));
  for (const f of ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm']) {
    copyFileSync(join(wasmDir, 'dist', f), join(outdir, f));
  }
  return result.metafile;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = process.argv[2] ? resolve(process.argv[2]) : undefined;
  await buildPage(out);
  console.log(`built ${out ?? join(here, 'dist')}/app.js`);
}
