import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));

/** Runs `code` (an ES module) in a fresh Node process from source; returns what it printed. */
function fresh(code: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'primer-controller-'));
  const r = spawnSync(process.execPath, ['--conditions=@primer-search/source', '--import', 'tsx', '--input-type=module', '-e', code], { cwd: root, encoding: 'utf8', env: { ...process.env, PRIMER_CACHE_DIR: dir } });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout.trim();
}

// tfjs-core keeps its engine in globalThis._tfengine from the moment it is loaded
const loadsTfjs = (specifier: string) => fresh(`await import(${JSON.stringify(specifier)}); console.log(typeof globalThis._tfengine);`) !== 'undefined';

describe('the controller side loads no TensorFlow.js', () => {
  it('the controller, the store, the shared study types and the strategies do not; the trainer does (the check can fail)', () => {
    expect(loadsTfjs('@primer-search/runner/controller')).toBe(false);
    expect(loadsTfjs('@primer-search/store')).toBe(false);
    expect(loadsTfjs('@primer-search/study')).toBe(false);
    expect(loadsTfjs('@primer-search/search-strategies')).toBe(false);
    expect(loadsTfjs('@primer-search/trainer-gpu')).toBe(true);
  });

  it('primer search (the controller; workers are other processes), study show, study retrain and dna show run without it', () => {
    const study = join(mkdtempSync(join(tmpdir(), 'primer-controller-')), 's.sqlite');
    const out = fresh(`
      import { readFileSync, writeFileSync } from 'node:fs';
      const { main } = await import('@primer-search/cli');
      const io = { stdout: () => {}, stderr: (t) => process.stderr.write(t), readFile: (p) => readFileSync(p, 'utf8'), writeFile: writeFileSync };
      const tiny = ['--layers', '1', '--d-model', '16', '--heads', '2', '--seq-len', '16', '--batch', '4', '--eval-windows', '2'];
      const codes = [
        await main(['search', '--candidates', '2', '--budget-per-candidate', '2steps', '--workers', '1', ...tiny, '--study', ${JSON.stringify(study)}], io),
        await main(['study', 'show', ${JSON.stringify(study)}], io),
        await main(['study', 'retrain', ${JSON.stringify(study)}, '--top', '1', '--seeds', '1', '--budget', '2steps', '--workers', '1'], io),
        await main(['dna', 'show', 'vanilla'], io),
      ];
      console.log(codes.join(','), typeof globalThis._tfengine);
    `);
    expect(out).toBe('0,0,0,0 undefined');
  });
});
