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

  it.skipIf(!loads && !process.env.PRIMER_REQUIRE_NATIVE_BLAS)("the loss's and the causal softmax's vectorised exponentials agree with double precision, edge cases included", () => {
    // widths 1, 7, 9 and 61 (under, around and over the kernels' 8-wide blocks), each row's
    // largest entry in a tail lane, values spread over [-95, 25] by the golden ratio (so the
    // reduced arguments cover their range); a softmax whose scores sit at the mask's fill (its
    // masked entries then count); loss targets out of range (-1 and v) and a -infinity logit;
    // then a NaN as a row's first logit, and one in a tail. References in double precision from
    // the float32 differences x - max, as the kernels take them.
    const fill = -1e9;
    const spread = (i: number) => -95 + 120 * ((i * 0.6180339887) % 1);
    const row = (w: number, shift: number) => Array.from({ length: w }, (_, j) => Math.fround(j === w - 2 || w === 1 ? 25 : spread(j + shift)));
    const widths = [1, 7, 9, 61];
    const softIn = widths.map((w) => Array.from({ length: w }, (_, p) => row(w, p)));
    // at the fill: a row's max is the fill itself, so every masked entry is exp(0)
    const nearFill = [Array.from({ length: 9 }, (_, p) => Array.from({ length: 9 }, (_, j) => Math.fround(fill - 64 * ((p + j) % 3))))];
    const lossIn = widths.map((w) => [0, 1, 2].map((r) => row(w, 7 * r + 1)));
    lossIn[3]![2]![5] = -Infinity;
    const targets = widths.map((w) => [0, -1, w]);
    const nanRows = [[NaN, 1, 2, 3, 4, 5, 6, 7, 8, 9], [0, 1, 2, 3, 4, 5, 6, 7, 8, NaN]];
    const out = inFresh(`
      const a = m.loadNativeBlas().addonModule;
      const input = ${JSON.stringify({ softIn: [...softIn, ...nearFill], lossIn, targets, nanRows }, (_, q) => (typeof q === 'number' && !Number.isFinite(q) ? String(q) : q))};
      const numbers = (rows) => rows.flat().map(Number);
      const show = (xs) => Array.from(xs, (q) => (Number.isNaN(q) ? 'NaN' : q));
      const heap = new ArrayBuffer(1 << 20);
      const f = new Float32Array(heap), t = new Int32Array(heap);
      const soft = input.softIn.map((scores) => {
        const w = scores.length;
        f.set(numbers(scores), 0);
        a.csoftmax(heap, 0, 4096, 1, w, w, ${fill}, 30, 1e-6);
        return show(f.subarray(4096, 4096 + w * w));
      });
      const run = (rows, tg) => {
        const v = rows[0].length, n = rows.length;
        f.set(numbers(rows), 0);
        t.set(tg, 8192);
        const loss = a.xent(heap, 0, 8192, 16384, n, v);
        return { loss: Number.isNaN(loss) ? 'NaN' : loss, grads: show(f.subarray(16384, 16384 + n * v)) };
      };
      const losses = input.lossIn.map((rows, i) => run(rows, input.targets[i]));
      const nans = input.nanRows.map((r) => run([r], [3]));
      return { soft, losses, nans };
    `) as { soft: Array<Array<number | 'NaN'>>; losses: Array<{ loss: number; grads: number[] }>; nans: Array<{ loss: string; grads: string[] }> };
    const bad: string[] = [];
    const near = (what: string, got: number | 'NaN', want: number, slack: number) => {
      if (got === 'NaN' || !(Math.abs(got - want) <= 4e-7 * Math.abs(want) + slack)) bad.push(`${what}: ${got} against ${want}`);
    };
    // the causal softmax as the primitives define it: max over the open entries and the fill, masked entries exp(fill - max)
    [...softIn, ...nearFill].forEach((scores, k) => {
      const w = scores.length;
      scores.forEach((xs, p) => {
        const open = Math.min(p + 1, w);
        const max = Math.max(...xs.slice(0, open), ...(open < w ? [fill] : []));
        const e = xs.slice(0, open).map((q) => Math.exp(Math.fround(q - max)));
        const masked = open < w ? Math.exp(Math.fround(fill - max)) : 0;
        const sum = e.reduce((s, q) => s + q, 0) + masked * (w - open);
        for (let j = 0; j < w; j++) near(`softmax ${k}, row ${p}, entry ${j}`, out.soft[k]![p * w + j]!, (j < open ? e[j]! : masked) / sum, 1e-44);
      });
    });
    // the loss: the mean over rows of log-sum-exp minus the target's logit (none out of range); gradients (softmax - onehot) / rows
    lossIn.forEach((rows, k) => {
      const n = rows.length, v = rows[0]!.length;
      let loss = 0;
      rows.forEach((xs, r) => {
        const max = Math.max(...xs);
        const e = xs.map((q) => Math.exp(Math.fround(q - max)));
        const sum = e.reduce((s, q) => s + q, 0);
        const target = targets[k]![r]!;
        loss += (Math.log(sum) + max - (target >= 0 && target < v ? xs[target]! : 0)) / n;
        e.forEach((q, j) => near(`loss ${k}, gradient ${r},${j}`, out.losses[k]!.grads[r * v + j]!, (q / sum - (j === target ? 1 : 0)) / n, 1.2e-7 / n));
      });
      near(`loss ${k}`, out.losses[k]!.loss, loss, 0);
    });
    expect(bad).toEqual([]);
    // a NaN logit, first in its row or in a tail lane, makes the loss and the row's gradients NaN, as the composite's
    for (const r of out.nans) expect(r).toEqual({ loss: 'NaN', grads: Array(10).fill('NaN') });
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
