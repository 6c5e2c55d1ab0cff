import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { openBlasCoreType } from './backends/wasm/native-blas.js';

const module = fileURLToPath(new URL('./backends/wasm/native-blas.ts', import.meta.url));

/** loadNativeBlas() in a fresh process (the library, once open, stays open in a process). */
function statusWith(env: Record<string, string | undefined>): { ok: boolean; reason?: string; library?: string; threads?: number; core?: string; coreChosen?: boolean } {
  const merged: Record<string, string | undefined> = { ...process.env, ...env };
  // undefined: left out of the child's environment
  for (const k of Object.keys(merged)) if (merged[k] === undefined) delete merged[k];
  const r = spawnSync(
    process.execPath,
    ['--conditions=@primer-search/source', '--import', 'tsx', '--input-type=module', '-e', `const m = await import(${JSON.stringify(module)}); console.log(JSON.stringify(m.loadNativeBlas()))`],
    { encoding: 'utf8', env: merged as NodeJS.ProcessEnv },
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

  it("asks OpenBLAS for the kernels the CPU's flags allow, not its model list's fallback, unless OPENBLAS_CORETYPE is set", () => {
    const wanted = openBlasCoreType(/^flags\s*:(.*)$/m.exec(existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '')?.[1] ?? '');
    const chosen = statusWith({ OPENBLAS_CORETYPE: undefined });
    if (!chosen.ok) return void console.warn(`native-blas.test.ts: not loaded here: ${chosen.reason}`);
    // called ours only where the library took it
    expect(chosen.coreChosen).toBe(wanted !== undefined && chosen.core?.toLowerCase() === wanted.toLowerCase());
    // never an SSE-era fallback on a CPU with AVX2 (Debian 12's OpenBLAS gave Prescott on a virtual CPU it did not know)
    if (wanted && chosen.core) expect(chosen.core).not.toMatch(/^(Prescott|Core2|Penryn|Dunnington|Nehalem|Atom|Katmai|Banias)$/i);
    // the user's choice wins, and is not called ours (where the library has dynamic kernels to choose from)
    const user = statusWith({ OPENBLAS_CORETYPE: 'Nehalem' });
    expect(user.coreChosen).toBe(false);
    if (chosen.coreChosen) expect(user.core).toBe('Nehalem');
  });

  it('maps CPU flags to OpenBLAS kernels', () => {
    expect(openBlasCoreType('fpu sse2 avx avx2 fma avx512f avx512dq avx512bw avx512vl avx512cd')).toBe('SkylakeX');
    // AVX-512 without BW/VL (Knights Landing) is not Skylake-X
    expect(openBlasCoreType('avx2 fma avx512f avx512cd avx512er')).toBe('Haswell');
    expect(openBlasCoreType('sse2 avx avx2 fma')).toBe('Haswell');
    expect(openBlasCoreType('sse2 avx avx2')).toBeUndefined();
    expect(openBlasCoreType('')).toBeUndefined();
  });
});

/** Runs `code` (an async function body given `m`, the native-blas module) in a fresh process; its last line of output, parsed. */
function inFresh(code: string, env: Record<string, string> = {}): unknown {
  const r = spawnSync(
    process.execPath,
    ['--conditions=@primer-search/source', '--import', 'tsx', '--input-type=module', '-e', `const m = await import(${JSON.stringify(module)}); const out = await (async () => { ${code} })(); console.log(JSON.stringify(out))`],
    { encoding: 'utf8', env: { ...process.env, ...env } },
  );
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!);
}

describe('the native addon trusts no caller', () => {
  const status = statusWith({});
  const loads = status.ok;
  // skipped only where the native path cannot load (no OpenBLAS, no compiler); CI installs it and requires it
  if (!loads && !process.env.PRIMER_REQUIRE_NATIVE_BLAS) console.warn(`native-blas.test.ts: the addon's input checks are not tested here: ${status.reason}`);
  it.skipIf(!loads && !process.env.PRIMER_REQUIRE_NATIVE_BLAS)('refuses sizes that overflow, operands outside the heap, a library path it would have to cut', () => {
    const refusals = inFresh(`
      const s = m.loadNativeBlas();
      const a = s.addonModule;
      const heap = new ArrayBuffer(4096);
      const big = 2 ** 31;
      const tries = {
        softmax: () => a.csoftmax(heap, 0, 0, big, big, big, -1e9, 30, 1e-6),
        sgemm: () => a.sgemm(heap, false, false, big, big, big, 0, 0, 0, 1, 0, 0),
        sgemmBatch: () => a.sgemm(heap, false, false, 2, 2, 2, 0, 0, 0, 2 ** 62, 4, 4),
        dconv: () => a.dconv(heap, 0, 0, 0, 3, 2, 2, 2, 2),
        exp: () => a.exp(heap, 1000, 0, 100),
        normalize: () => a.normalize(heap, 0, 0, 0, big, big, 1e-6),
        longPath: () => a.load('/'.repeat(600) + 'libopenblas.so.0', 1),
      };
      const out = {};
      for (const [k, f] of Object.entries(tries)) {
        try { f(); out[k] = 'accepted'; } catch (e) { out[k] = e.message; }
      }
      return out;`);
    expect(refusals).toEqual({
      softmax: 'csoftmax: an operand lies outside the heap',
      sgemm: 'sgemm: an operand lies outside the heap',
      sgemmBatch: 'sgemm: an operand lies outside the heap',
      dconv: 'dconv: an operand lies outside the heap',
      exp: 'exp: an operand lies outside the heap',
      normalize: 'normalize: an operand lies outside the heap',
      longPath: "load(path, threads): the library's path is longer than 511 bytes",
    });
  }, 120_000);

  it.skipIf(!loads && !process.env.PRIMER_REQUIRE_NATIVE_BLAS)("the loss's and the softmax's vectorised exponentials agree with Math.exp in double precision", () => {
    // a softmax row of width 61 (8-wide blocks and a tail) open to its last position, and three
    // loss rows, over inputs from -95 to 30 (below float32's least normal, up to the softmax's
    // cap), a -infinity among them: every entry and the loss within 1e-6 relative of double
    // precision; a fourth loss row holding a NaN gives a NaN loss and NaN gradients
    const w = 61;
    // spread by the golden ratio, so the reduced arguments r = d - n ln 2 cover [-ln 2 / 2, ln 2 / 2]
    const value = (i: number) => (i === 0 ? 30 : -95 + 125 * ((i * 0.6180339887) % 1));
    const logits = [0, 1, 2].map((r) => Array.from({ length: w }, (_, j) => (r === 2 && j === 5 ? -Infinity : (value(j) * (r + 1)) / 3)));
    const targets = [0, 11, 22];
    const input = Array.from({ length: w }, (_, i) => Math.fround(value(i)));
    const out = inFresh(`
      const a = m.loadNativeBlas().addonModule;
      const w = ${w}, input = ${JSON.stringify(input)}, logits = ${JSON.stringify(logits).replace(/null/g, '-Infinity')}, targets = ${JSON.stringify(targets)};
      const heap = new ArrayBuffer(4 * (2 * w * w + 4 * w + 4 + 4 * w));
      const f = new Float32Array(heap), t = new Int32Array(heap);
      const x = 0, y = w * w, z = 2 * w * w, g = z + 3 * w, tg = g + 3 * w, nz = tg + 4;
      f.set(input, x + (w - 1) * w);
      a.csoftmax(heap, x, y, 1, w, w, -1e9, 30, 1e-6);
      logits.forEach((row, r) => f.set(row, z + r * w));
      t.set(targets, tg);
      const loss = a.xent(heap, z, tg, g, 3, w);
      // the NaN row, alone: its logits over the first row's gradients' place
      f.fill(-1, nz, nz + w);
      f[nz + 7] = NaN;
      const nanLoss = a.xent(heap, nz, tg, nz, 1, w);
      return { soft: Array.from(f.subarray(y + (w - 1) * w, y + w * w)), grads: Array.from(f.subarray(g, g + 3 * w)), loss, nanLoss: String(nanLoss), nanGrads: Array.from(f.subarray(nz, nz + w), String) };
    `) as { soft: number[]; grads: number[]; loss: number; nanLoss: string; nanGrads: string[] };
    const close = (got: number, want: number) => Math.abs(got - want) <= 1e-6 * Math.abs(want) + 1e-37;
    const bad: string[] = [];
    // the softmax row in double precision from the float32 differences x - max, as the kernels take
    // them (every entry open; the cap, 30 above the max, is not reached)
    const max = Math.max(...input);
    const e = input.map((q) => Math.exp(Math.fround(q - max)));
    const sum = e.reduce((p, q) => p + q, 0);
    out.soft.forEach((q, i) => close(q, e[i]! / sum) || bad.push(`softmax ${i}: ${q} against ${e[i]! / sum}`));
    // the loss: the mean over rows of log-sum-exp minus the target's logit; gradients (softmax - onehot) / rows
    let loss = 0;
    logits.forEach((raw, r) => {
      const row = raw.map(Math.fround);
      const m = Math.max(...row);
      const ex = row.map((q) => Math.exp(Math.fround(q - m)));
      const s = ex.reduce((p, q) => p + q, 0);
      loss += (Math.log(s) + m - row[targets[r]!]!) / 3;
      ex.forEach((q, j) => {
        const want = (q / s - (j === targets[r] ? 1 : 0)) / 3;
        const got = out.grads[r * w + j]!;
        if (!close(got, want)) bad.push(`loss gradient ${r},${j}: ${got} against ${want}`);
      });
    });
    expect(bad).toEqual([]);
    expect(Math.abs(out.loss - loss)).toBeLessThan(1e-6 * loss);
    expect(out.nanLoss).toBe('NaN');
    expect(out.nanGrads).toEqual(Array(w).fill('NaN'));
  }, 120_000);

  it.skipIf(!loads && !process.env.PRIMER_REQUIRE_NATIVE_BLAS)('rebuilds a cached addon that no longer loads', () => {
    // a cached addon that no longer loads is built again, not blamed forever
    const cache = mkdtempSync(join(tmpdir(), 'primer-native-cache-'));
    const first = inFresh('return m.loadNativeBlas().addon', { XDG_CACHE_HOME: cache }) as string;
    writeFileSync(first, 'not a shared object');
    const second = inFresh('const s = m.loadNativeBlas(); return { ok: s.ok, addon: s.addon }', { XDG_CACHE_HOME: cache });
    expect(second).toEqual({ ok: true, addon: first });
  }, 120_000);
});
