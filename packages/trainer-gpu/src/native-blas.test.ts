import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const module = fileURLToPath(new URL('./backends/wasm/native-blas.ts', import.meta.url));

/** loadNativeBlas() in a fresh process (the library, once open, stays open in a process). */
function statusWith(env: Record<string, string>): { ok: boolean; reason?: string; library?: string; threads?: number } {
  const r = spawnSync(
    process.execPath,
    ['--conditions=@primer-search/source', '--import', 'tsx', '--input-type=module', '-e', `const m = await import(${JSON.stringify(module)}); console.log(JSON.stringify(m.loadNativeBlas()))`],
    { encoding: 'utf8', env: { ...process.env, ...env } },
  );
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!);
}

describe('the native product path says why it is off', () => {
  it('PRIMER_BLAS=off, a library that is not there, a cache folder that cannot be made', () => {
    expect(statusWith({ PRIMER_BLAS: 'off' })).toEqual({ ok: false, reason: 'turned off (PRIMER_BLAS=off)' });
    const missing = statusWith({ PRIMER_BLAS: '/no/such/libcblas.so' });
    expect(missing.ok).toBe(false);
    // either the addon could not be built here, or it was and the library is missing
    expect(missing.reason).toMatch(/PRIMER_BLAS=\/no\/such\/libcblas\.so did not load|C compiler|headers/);
    const file = join(mkdtempSync(join(tmpdir(), 'primer-native-')), 'a-file');
    spawnSync('touch', [file]);
    const noCache = statusWith({ XDG_CACHE_HOME: file });
    expect(noCache).toEqual({ ok: false, reason: expect.stringMatching(/cannot create the cache folder/) });
  });

  it('where OpenBLAS is installed (CI installs it), it loads with one thread unless told otherwise', () => {
    const s = statusWith({ PRIMER_BLAS_THREADS: '' });
    if (!s.ok) {
      if (process.env.PRIMER_REQUIRE_NATIVE_BLAS) throw new Error(`PRIMER_REQUIRE_NATIVE_BLAS is set but: ${s.reason}`);
      console.warn(`native-blas.test.ts: not loaded here: ${s.reason}`);
      expect(s.reason).toMatch(/OpenBLAS|compiler|headers/);
      return;
    }
    expect(s).toMatchObject({ ok: true, library: 'libopenblas.so.0', threads: 1 });
    expect(statusWith({ PRIMER_BLAS_THREADS: '2' })).toMatchObject({ ok: true, threads: 2 });
  });
});
