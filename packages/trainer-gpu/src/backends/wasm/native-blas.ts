/**
 * The native product path: the wasm backend's matrix products computed by the system's
 * OpenBLAS, in place on the wasm heap, through a small Node addon (`native/blas.c`). The addon
 * is compiled on first use with the machine's C compiler against Node's own headers, and cached;
 * the library is opened at run time, so nothing needs BLAS headers and nothing is linked at
 * build time. Where any piece is missing, products stay on wasm (XNNPACK) and the reason is
 * kept for the run's backend line.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { threadId } from 'node:worker_threads';

export interface NativeBlasAddon {
  load(path: string, threads: number): string;
  /** The kernels OpenBLAS chose for this CPU (e.g. SkylakeX, Haswell), or '' for another library. */
  core(): string;
  sgemm(heap: ArrayBufferLike, transA: boolean, transB: boolean, m: number, n: number, k: number, a: number, b: number, c: number, batch: number, strideA: number, strideB: number): void;
  /** y = exp(x) over `count` floats (offsets in floats). */
  exp(heap: ArrayBufferLike, x: number, y: number, count: number): void;
  /** The fused cross-entropy (see FUSED_CROSS_ENTROPY): returns the mean loss, writes the gradient at g. */
  xent(heap: ArrayBufferLike, z: number, t: number, g: number, n: number, v: number): number;
  /** One Adam update of `n` floats (see FUSED_ADAM) by the gradient `scale` g: v, m, s, g in; v2, m2, s2 out (offsets in floats). */
  adam(heap: ArrayBufferLike, v: number, m: number, s: number, g: number, v2: number, m2: number, s2: number, n: number, b1: number, b2: number, eps: number, lr: number, c1: number, c2: number, scale: number): void;
  /** The causal product's mask (see FUSED_CAUSAL_MASK) of `[batch, t, t]` scores at x into y; with `grad`, x * 0 above the diagonal instead of 0. */
  cmask(heap: ArrayBufferLike, x: number, y: number, batch: number, t: number, grad: number): void;
  /** The sum of the squares of `n` floats at x, accumulated in double. */
  sumsq(heap: ArrayBufferLike, x: number, n: number): number;
  /** y[j] = sum over rows of x[r * inner + j] (offsets in floats). */
  colsum(heap: ArrayBufferLike, x: number, y: number, outer: number, inner: number): void;
  /** Layer norm's normalisation (see FUSED_NORMALIZE) of `rows` rows of `w` floats at x into n, each row's denominator into r. */
  normalize(heap: ArrayBufferLike, x: number, n: number, r: number, rows: number, w: number, eps: number): void;
  /** Its backward into dx. */
  normalizeGrad(heap: ArrayBufferLike, dy: number, n: number, r: number, dx: number, rows: number, w: number): void;
  /** The causal depthwise convolution (see FUSED_DEPTHWISE_CONV) of [b, t, c] by [lanes, lags, c] kernels, lane = sequence / perLane. */
  dconv(heap: ArrayBufferLike, x: number, k: number, y: number, b: number, t: number, c: number, lags: number, perLane: number): void;
  /** Its backward into dx and dk. */
  dconvGrad(heap: ArrayBufferLike, dy: number, x: number, k: number, dx: number, dk: number, b: number, t: number, c: number, lags: number, perLane: number): void;
  /** The causal softmax (see FUSED_CAUSAL_SOFTMAX) of `[batch, t, w]` scores at x into y. */
  csoftmax(heap: ArrayBufferLike, x: number, y: number, batch: number, t: number, w: number, fill: number, cap: number, eps: number): void;
}

export type NativeBlasStatus =
  | {
      ok: true;
      library: string;
      addon: string;
      threads: number;
      /** OpenBLAS's kernels for this CPU ('' for another library), and whether we chose them (see openBlasCoreType). */
      core: string;
      coreChosen: boolean;
      addonModule: NativeBlasAddon;
    }
  | { ok: false; reason: string };

/**
 * The OpenBLAS kernels to ask for (OPENBLAS_CORETYPE) from a CPU's feature flags (as
 * /proc/cpuinfo lists them): SkylakeX where AVX-512 (F, BW, DQ, VL) is there, Haswell where
 * AVX2 and FMA are, else none (OpenBLAS's own detection). OpenBLAS 0.3.21 (Debian 12) detects
 * by CPU model, and on a virtual CPU whose model it does not know it falls back to Prescott's
 * SSE3 kernels: 3x slower products on an AVX-512 core, measured here.
 */
export function openBlasCoreType(flags: string): string | undefined {
  const has = new Set(flags.split(/\s+/));
  if (['avx512f', 'avx512bw', 'avx512dq', 'avx512vl'].every((f) => has.has(f))) return 'SkylakeX';
  if (has.has('avx2') && has.has('fma')) return 'Haswell';
  return undefined;
}

/** The CPU's feature flags (Linux), or '' where they cannot be read. */
function cpuFlags(): string {
  try {
    return /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '';
  } catch {
    return '';
  }
}

/** The libraries tried, in order (PRIMER_BLAS names another one, e.g. a path to MKL's or BLIS's CBLAS, or `off`). */
export const BLAS_LIBRARIES = ['libopenblas.so.0', 'libopenblas.so', 'libopenblas.0.dylib', 'libopenblas.dylib'];

/** `native/blas.c` of this package: found upwards from this module (src/backends/wasm in source, dist/ when built). */
const SOURCE = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++, dir = dirname(dir)) {
    const candidate = join(dir, 'native', 'blas.c');
    if (existsSync(candidate)) return candidate;
  }
  return join(dirname(fileURLToPath(import.meta.url)), '..', 'native', 'blas.c');
})();

function nodeHeaders(): string | undefined {
  const candidates = [
    process.env.PRIMER_NODE_HEADERS,
    join(dirname(process.execPath), '..', 'include', 'node'),
    '/usr/include/node',
    '/usr/local/include/node',
    join(homedir(), '.cache', 'node-gyp', process.versions.node, 'include', 'node'),
  ];
  return candidates.find((d): d is string => Boolean(d) && existsSync(join(d!, 'node_api.h')));
}

function cacheDir(): string {
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'primer-search', 'native');
}

/**
 * How the addon is compiled: optimised, with no contraction of a * b + c into one rounding (a
 * fused multiply-add would round differently from the composite ops the kernels must match).
 */
const COMPILE_FLAGS = ['-O3', '-ffp-contract=off', '-shared', '-fPIC'];

/** Compiles the addon (once per source, Node ABI and platform) and returns its path, or why not. */
function buildAddon(): { path: string } | { reason: string } {
  if (!existsSync(SOURCE)) return { reason: `the addon's source ${SOURCE} is missing from this install` };
  const source = readFileSync(SOURCE);
  // the compiler flags are part of what is built: a change of either builds anew
  const tag = createHash('sha256').update(source).update(JSON.stringify(COMPILE_FLAGS)).digest('hex').slice(0, 12);
  const dir = cacheDir();
  const target = join(dir, `blas-${tag}-abi${process.versions.modules}-${process.platform}-${process.arch}.node`);
  if (existsSync(target)) return { path: target };
  const headers = nodeHeaders();
  if (!headers) return { reason: "Node's headers (node_api.h) were not found (set PRIMER_NODE_HEADERS to their folder)" };
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    return { reason: `cannot create the cache folder ${dir}: ${(e as Error).message}` };
  }
  const tmp = `${target}.${process.pid}-${threadId}.tmp`;
  const flags = [...COMPILE_FLAGS, `-I${headers}`, SOURCE, '-o', tmp, ...(process.platform === 'darwin' ? ['-undefined', 'dynamic_lookup'] : ['-ldl', '-lpthread'])];
  let last = '';
  for (const cc of [process.env.CC, 'cc', 'gcc', 'clang'].filter((x): x is string => Boolean(x))) {
    const r = spawnSync(cc, flags, { encoding: 'utf8' });
    if (r.error) {
      last = `${cc}: ${(r.error as NodeJS.ErrnoException).code ?? r.error.message}`;
      continue;
    }
    if (r.status === 0) {
      // atomic: two workers building at once both end with a whole file
      renameSync(tmp, target);
      return { path: target };
    }
    last = `${cc} failed: ${r.stderr.trim().split('\n').slice(-2).join(' ')}`;
  }
  rmSync(tmp, { force: true });
  return { reason: `no C compiler built the addon (${last || 'none found'})` };
}

let status: NativeBlasStatus | undefined;

/**
 * Loads the native product path once per process (thread): builds or finds the addon, opens
 * the BLAS library with PRIMER_BLAS_THREADS threads (default 1: the search runs one candidate
 * per core). Never throws; `ok: false` says why it is off.
 */
export function loadNativeBlas(): NativeBlasStatus {
  if (status) return status;
  const wanted = process.env.PRIMER_BLAS;
  if (wanted === 'off' || wanted === '0') return (status = { ok: false, reason: 'turned off (PRIMER_BLAS=off)' });
  const threads = Math.max(1, Number(process.env.PRIMER_BLAS_THREADS) || 1);
  // OpenBLAS sizes its thread pool when it loads: one thread unless told otherwise
  process.env.OPENBLAS_NUM_THREADS ??= String(threads);
  // and picks its kernels when it loads: by the CPU's flags, not a model list it may not know (a set OPENBLAS_CORETYPE wins)
  const asked = process.env.OPENBLAS_CORETYPE === undefined ? openBlasCoreType(cpuFlags()) : undefined;
  if (asked) process.env.OPENBLAS_CORETYPE = asked;
  const built = buildAddon();
  if ('reason' in built) return (status = { ok: false, reason: built.reason });
  let addon: NativeBlasAddon;
  try {
    addon = createRequire(import.meta.url)(built.path) as NativeBlasAddon;
  } catch (e) {
    // a cached build that no longer loads (a damaged file, another system library): built once more
    rmSync(built.path, { force: true });
    const again = buildAddon();
    try {
      if ('reason' in again) throw new Error(again.reason);
      addon = createRequire(import.meta.url)(again.path) as NativeBlasAddon;
    } catch (e2) {
      return (status = { ok: false, reason: `the addon ${built.path} did not load (${(e as Error).message.split('\n')[0]}), nor did a fresh build: ${(e2 as Error).message.split('\n')[0]}` });
    }
  }
  const tried: string[] = [];
  for (const lib of wanted ? [wanted] : BLAS_LIBRARIES) {
    try {
      const library = addon.load(lib, threads);
      const core = addon.core();
      // ours only where the library took it (a worker thread's environment, a build without dynamic kernels, another library: not)
      return (status = { ok: true, library, addon: built.path, threads, core, coreChosen: asked !== undefined && core.toLowerCase() === asked.toLowerCase(), addonModule: addon });
    } catch (e) {
      tried.push(`${lib}: ${(e as Error).message.split(':').slice(-1)[0]!.trim()}`);
    }
  }
  return (status = {
    ok: false,
    reason: wanted ? `PRIMER_BLAS=${wanted} did not load (${tried.join('; ')})` : 'no OpenBLAS library found (on Debian or Ubuntu: apt-get install libopenblas0-pthread)',
  });
}

/**
 * Sets the BLAS library's threads for the whole process (OpenBLAS's pool is process-wide):
 * data-parallel replicas already use a core each, so they run with 1; afterwards the configured
 * count (PRIMER_BLAS_THREADS) comes back. Returns the count before. A no-op where the native path is off.
 */
export function setBlasThreads(threads: number): number {
  const s = loadNativeBlas();
  if (!s.ok) return threads;
  const before = s.threads;
  s.addonModule.load(s.library, threads);
  s.threads = threads;
  return before;
}

/** For tests: forget what was loaded (the library stays open in the process). */
export function resetNativeBlasForTests(): void {
  status = undefined;
}
