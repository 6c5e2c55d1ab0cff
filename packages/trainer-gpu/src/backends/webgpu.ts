import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import { PrimerError } from '@primer-search/core';
import type { BackendActivation, BackendPlugin } from './registry.js';

/**
 * WebGPU in Node through Dawn (the npm package `webgpu`, an optional dependency) and
 * `@tensorflow/tfjs-backend-webgpu`. On a machine with a GPU Dawn drives it through Vulkan; on
 * one without, Dawn's OpenGL ES backend runs on Mesa's llvmpipe (slow, but exact enough to test
 * every kernel), which is used only when `webgpu` is asked for by name.
 */

/** What Dawn says about the adapter a run trains on. */
export interface WebGpuAdapter {
  /** One line: vendor, architecture, device and driver, or "software: llvmpipe ..." */
  description: string;
  /** A CPU rendering the GPU's work (llvmpipe, lavapipe, SwiftShader). */
  software: boolean;
  /** Dawn's backend that found it: `vulkan` (the default on Linux) or `opengles`. */
  dawnBackend: string;
  /** The largest buffer the device may create, in bytes. */
  maxBufferSize: number;
  /** The largest buffer one kernel may bind, in bytes: the largest tensor a kernel reads or writes. */
  maxStorageBufferBindingSize: number;
}

/** The slice of WebGPU's API this file touches (the package's own types come with it, and it is optional). */
interface GpuAdapterLike {
  info?: Record<string, unknown>;
  limits: { maxBufferSize: number; maxStorageBufferBindingSize: number; maxStorageBuffersPerShaderStage: number };
  features: { has(name: string): boolean };
  requestDevice(descriptor?: { requiredFeatures?: unknown[] } & Record<string, unknown>): Promise<unknown>;
}
interface GpuLike {
  requestAdapter(options?: Record<string, unknown>): Promise<GpuAdapterLike | null>;
}
interface DawnModule {
  create(flags: string[]): GpuLike;
  globals: Record<string, unknown>;
}

// optional dependencies, imported by name at run time only (their absence is a reason, not an error)
const DAWN_PACKAGE: string = 'webgpu';
const TFJS_WEBGPU_PACKAGE: string = '@tensorflow/tfjs-backend-webgpu';
const SOFTWARE = /llvmpipe|lavapipe|swiftshader|softpipe|software|microsoft basic render/i;

/** One line for the adapter, from what `GPUAdapterInfo` reports (Dawn fills `device` and `description`, vendors fill more). */
export function describeAdapter(info: Record<string, unknown> | undefined, dawnBackend: string): { description: string; software: boolean } {
  const field = (k: string) => (typeof info?.[k] === 'string' ? (info[k] as string).trim() : '');
  const parts = [field('vendor'), field('architecture'), field('device'), field('description')].filter((p, i, all) => p && all.indexOf(p) === i);
  const software = info?.isFallbackAdapter === true || parts.some((p) => SOFTWARE.test(p));
  const what = parts.join(', ') || 'an adapter that reports nothing about itself';
  return { description: `${software ? 'software: ' : ''}${what} (Dawn ${dawnBackend})`, software };
}

let started: { adapter: WebGpuAdapter } | undefined;
/** Why the backend cannot start in this process (a package that did not load, a lost device). */
let failed: string | undefined;

interface WebGpuBackendLike {
  device: {
    addEventListener(type: 'uncapturederror', listener: (e: { error: { message: string; constructor?: { name?: string } }; preventDefault(): void }) => void): void;
    lost: Promise<{ reason?: string; message?: string }>;
  };
  read(dataId: object): Promise<unknown>;
  runWebGPUProgram(program: { shaderKey: string; outputShape: number[] }, ...rest: unknown[]): unknown;
}

/**
 * tfjs-backend-webgpu 4.22's cumulative sum and product shader writes the length of the summed
 * axis into its code (as the reverse scan's bound) but leaves it out of the key its compiled
 * pipelines are cached under: a second cumsum or cumprod with another length reuses the first's
 * code and gives wrong values (Prod's gradient, a reverse exclusive cumprod, so RED_PROD's, did).
 * The length goes into the key here.
 */
function keyCumulativeShadersByLength(backend: WebGpuBackendLike): void {
  const run = backend.runWebGPUProgram.bind(backend);
  backend.runWebGPUProgram = (program, ...rest) => {
    if (program.shaderKey.startsWith('cum_') && !program.shaderKey.includes('_length')) program.shaderKey += `_length${program.outputShape.at(-1)}`;
    return run(program, ...rest);
  };
}

/** The first device error since the last read, as the error the next read throws. */
let pendingError: Error | undefined;

/**
 * A device error as a failure of the run: out of memory is the program's (it asked for more than
 * the GPU has, as on wasm), and so is a kernel the device refuses for this program's shapes (a
 * validation error: a dispatch or a buffer over the adapter's limits); an internal error says
 * nothing about the program.
 */
export function deviceErrorOf(kind: string | undefined, message: string): PrimerError {
  const first = message.split('\n')[0]!;
  if (kind === 'GPUOutOfMemoryError') return new PrimerError('OUT_OF_MEMORY', `out of memory on the GPU: ${first}`);
  if (kind === 'GPUValidationError') return new PrimerError('DEVICE_REFUSED', `the GPU refused a kernel of this program, so the results since are wrong: ${first}`);
  return new PrimerError('WEBGPU_DEVICE', `the GPU failed (${kind ?? 'an error of unknown kind'}), so the results since are wrong: ${first}`);
}

/**
 * tfjs-backend-webgpu lets the device's errors (a kernel the adapter cannot run, a buffer over
 * its limits, memory running out) pass unseen: the kernel's output is then garbage, and training
 * would go on with it. Here the first error since the last read fails the next read (every step
 * reads its loss). A lost device fails every read after it, and the backend does not start again
 * in this process.
 */
function surfaceDeviceErrors(backend: WebGpuBackendLike): void {
  backend.device.addEventListener('uncapturederror', (e) => {
    pendingError ??= deviceErrorOf(e.error.constructor?.name, e.error.message);
    e.preventDefault();
  });
  void backend.device.lost.then((info) => {
    failed = `the GPU device was lost (${info.reason ?? 'unknown'}: ${info.message ?? ''}); start a new process`;
    started = undefined;
  });
  const read = backend.read.bind(backend);
  backend.read = async (dataId) => {
    try {
      return await read(dataId);
    } finally {
      if (failed) throw new PrimerError('WEBGPU_DEVICE', failed); // eslint-disable-line no-unsafe-finally
      if (pendingError) {
        const error = pendingError;
        pendingError = undefined;
        // eslint-disable-next-line no-unsafe-finally
        throw error;
      }
    }
  };
}

/** The adapter the `webgpu` backend runs on, once it has started. */
export function webgpuAdapter(): WebGpuAdapter | undefined {
  return started?.adapter;
}

function installed(pkg: string): boolean {
  try {
    createRequire(import.meta.url).resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

/** Dawn's default backend on this platform. */
const DEFAULT_DAWN_BACKEND = process.platform === 'darwin' ? 'metal' : process.platform === 'win32' ? 'd3d12' : 'vulkan';

/**
 * On Linux, whether the Vulkan loader is where the dynamic linker looks: without it Dawn's
 * default backend cannot find a GPU, and says so on stderr; asked here first, it is not asked.
 */
function vulkanLoaderPresent(): boolean {
  if (process.platform !== 'linux') return true;
  const multiarch = process.arch === 'x64' ? 'x86_64-linux-gnu' : process.arch === 'arm64' ? 'aarch64-linux-gnu' : `${process.arch}-linux-gnu`;
  const dirs = [...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean), `/usr/lib/${multiarch}`, `/lib/${multiarch}`, '/usr/lib64', '/lib64', '/usr/lib', '/lib', '/usr/local/lib'];
  return dirs.some((d) => existsSync(join(d, 'libvulkan.so.1')));
}

/**
 * Finds an adapter: Dawn's default backend first (Vulkan on Linux, Metal on macOS, D3D12 on
 * Windows); with `software`, then OpenGL ES in compatibility mode, which finds Mesa's llvmpipe
 * on a machine with no GPU (with EGL_PLATFORM=surfaceless, set here when unset).
 */
async function findAdapter(dawn: DawnModule, software: boolean): Promise<{ gpu: GpuLike; adapter: GpuAdapterLike; dawnBackend: string } | string> {
  const tried: string[] = [];
  const attempts: Array<{ flags: string[]; dawnBackend: string }> = [{ flags: [], dawnBackend: DEFAULT_DAWN_BACKEND }];
  if (software) attempts.push({ flags: ['backend=opengles'], dawnBackend: 'opengles' });
  for (const { flags, dawnBackend } of attempts) {
    if (dawnBackend === 'vulkan' && !vulkanLoaderPresent()) {
      tried.push('vulkan (no Vulkan loader, libvulkan.so.1)');
      continue;
    }
    if (dawnBackend === 'opengles') process.env.EGL_PLATFORM ??= 'surfaceless';
    const gpu = dawn.create(flags);
    for (const compatibility of [false, true]) {
      const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance', ...(compatibility ? { featureLevel: 'compatibility' } : {}) });
      if (adapter) return { gpu, adapter, dawnBackend };
    }
    tried.push(dawnBackend);
  }
  const linux = process.platform === 'linux';
  return `Dawn found no adapter (tried ${tried.join(', ')})${
    linux
      ? software
        ? "; a GPU needs its Vulkan driver (libvulkan1 and the vendor's ICD file); without a GPU, Mesa's llvmpipe needs libegl1, libegl-mesa0 and libgl1-mesa-dri"
        : "; a GPU needs its Vulkan driver (libvulkan1 and the vendor's ICD file)"
      : ''
  }`;
}

/** Why the webgpu backend was not taken, per mode, so a process asks Dawn once (automatic: hardware only). */
const declined = new Map<boolean, string>();

/**
 * Starts tfjs's WebGPU backend on the adapter found. `allowSoftware`: whether a software
 * adapter will do (yes when asked for by name; with `--backend auto` only a GPU is taken, as
 * llvmpipe is far slower than our wasm kernels).
 */
async function start(tf: Parameters<BackendPlugin['activate']>[0], allowSoftware: boolean): Promise<BackendActivation> {
  if (started) {
    if (started.adapter.software && !allowSoftware) return { ok: false, reason: `only a software adapter is here (${started.adapter.description}); --backend webgpu uses it` };
    // an error left from what ran before (a failed candidate) is not the next run's
    pendingError = undefined;
    return (await tf.setBackend('webgpu')) ? { ok: true, products: `WebGPU: ${started.adapter.description}` } : { ok: false, reason: 'the webgpu backend did not start again' };
  }
  if (failed) return { ok: false, reason: failed };
  const before = declined.get(allowSoftware);
  if (before) return { ok: false, reason: before };
  for (const pkg of [DAWN_PACKAGE, TFJS_WEBGPU_PACKAGE]) {
    if (!installed(pkg)) return { ok: false, reason: `${pkg} is not installed (npm install webgpu@0.6.2 @tensorflow/tfjs-backend-webgpu@4.22.0)` };
  }
  let dawn: DawnModule;
  try {
    dawn = (await import(/* @vite-ignore */ DAWN_PACKAGE)) as unknown as DawnModule;
  } catch (e) {
    failed = `webgpu failed to load: ${(e as Error).message.split('\n')[0]}`;
    return { ok: false, reason: failed };
  }
  const found = await findAdapter(dawn, allowSoftware);
  if (typeof found === 'string') {
    declined.set(allowSoftware, found);
    return { ok: false, reason: found };
  }
  const { description, software } = describeAdapter(found.adapter.info, found.dawnBackend);
  if (software && !allowSoftware) {
    declined.set(false, `only a software adapter is here (${description}); --backend webgpu uses it`);
    return { ok: false, reason: declined.get(false)! };
  }
  const adapter = found.adapter;
  // tfjs asks for an adapter itself: it gets the one found here, whose requestDevice takes the
  // features as a flat list (tfjs 4.22 pushes ['bgra8unorm-storage'], an array, which Dawn refuses)
  const requestDevice = adapter.requestDevice.bind(adapter);
  // and the adapter's own bound on a kernel's buffers (tfjs asks for none: the default, 8, cannot bind addN's inputs)
  adapter.requestDevice = (d = {}) =>
    requestDevice({
      ...d,
      requiredFeatures: (d.requiredFeatures ?? []).flat().filter((f) => adapter.features.has(String(f))),
      requiredLimits: { ...(d.requiredLimits as object | undefined), maxStorageBuffersPerShaderStage: adapter.limits.maxStorageBuffersPerShaderStage },
    });
  const gpu = found.gpu;
  gpu.requestAdapter = async () => adapter;
  // tfjs-backend-webgpu registers itself only where navigator.gpu exists, and uses the WebGPU
  // globals (GPUBufferUsage...) that Dawn provides
  for (const [k, v] of Object.entries(dawn.globals)) if (!(k in globalThis)) Object.defineProperty(globalThis, k, { value: v, configurable: true, writable: true });
  const navigator = (globalThis as { navigator?: object }).navigator;
  if (navigator) Object.defineProperty(navigator, 'gpu', { value: gpu, configurable: true });
  else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  try {
    await import(/* @vite-ignore */ TFJS_WEBGPU_PACKAGE);
  } catch (e) {
    failed = `@tensorflow/tfjs-backend-webgpu failed to load: ${(e as Error).message.split('\n')[0]}`;
    return { ok: false, reason: failed };
  }
  if (!(await tf.setBackend('webgpu'))) {
    failed = `the webgpu backend did not start on ${description}`;
    return { ok: false, reason: failed };
  }
  surfaceDeviceErrors(tf.backend() as unknown as WebGpuBackendLike);
  keyCumulativeShadersByLength(tf.backend() as unknown as WebGpuBackendLike);
  started = {
    adapter: {
      description,
      software,
      dawnBackend: found.dawnBackend,
      maxBufferSize: adapter.limits.maxBufferSize,
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
    },
  };
  return { ok: true, products: `WebGPU: ${description}` };
}

/**
 * The most a training step may hold on the GPU: `PRIMER_GPU_MEMORY` (bytes, or with a unit:
 * `24GiB`, `16GB`, `512MiB`) where set, since WebGPU does not say how much memory a GPU has;
 * else half the machine's memory (a software adapter's memory is the machine's). A step that
 * asks for more than the GPU has fails as out of memory, the program's failure, as on wasm.
 */
export function gpuMemoryLimit(env: string | undefined = process.env.PRIMER_GPU_MEMORY): number {
  if (env === undefined || env.trim() === '') return totalmem() / 2;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?\s*$/i.exec(env);
  const units: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40 };
  const bytes = m ? Number(m[1]) * units[(m[2] ?? 'b').toLowerCase()]! : NaN;
  if (!(bytes > 0)) throw new PrimerError('BAD_SETTING', `PRIMER_GPU_MEMORY: a size such as 24GiB or 16000000000, got ${JSON.stringify(env)}`);
  return bytes;
}

/**
 * The `webgpu` backend entry. Its memory limit for a whole step is `gpuMemoryLimit()`; its
 * tensor limit is the adapter's largest storage binding, so a model with a larger tensor is
 * refused before anything is allocated.
 */
export const webgpuBackend: BackendPlugin = {
  specificationVersion: 1,
  description: 'WebGPU through Dawn (npm: webgpu, @tensorflow/tfjs-backend-webgpu): a GPU through Vulkan, Metal or D3D12; on a machine without one, Mesa\'s llvmpipe (only when asked for by name)',
  activate: (tf, options) => start(tf, options?.automatic !== true),
  memoryLimit: () => gpuMemoryLimit(),
  tensorLimit: () => (started ? Math.min(started.adapter.maxBufferSize, started.adapter.maxStorageBufferBindingSize) : Infinity),
};
