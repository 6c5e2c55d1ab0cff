import { createRequire } from 'node:module';
import { totalmem } from 'node:os';
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
const SOFTWARE = /llvmpipe|lavapipe|swiftshader|softpipe|software/i;

/** One line for the adapter, from what `GPUAdapterInfo` reports (Dawn fills `device` and `description`, vendors fill more). */
export function describeAdapter(info: Record<string, unknown> | undefined, dawnBackend: string): { description: string; software: boolean } {
  const field = (k: string) => (typeof info?.[k] === 'string' ? (info[k] as string).trim() : '');
  const parts = [field('vendor'), field('architecture'), field('device'), field('description')].filter((p, i, all) => p && all.indexOf(p) === i);
  const software = info?.isFallbackAdapter === true || parts.some((p) => SOFTWARE.test(p));
  const what = parts.join(', ') || 'an adapter that reports nothing about itself';
  return { description: `${software ? 'software: ' : ''}${what} (Dawn ${dawnBackend})`, software };
}

let started: { adapter: WebGpuAdapter } | undefined;

interface WebGpuBackendLike {
  device: { addEventListener(type: 'uncapturederror', listener: (e: { error: { message: string }; preventDefault(): void }) => void): void };
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

/**
 * tfjs-backend-webgpu lets the device's errors (a kernel the adapter cannot run, a buffer over
 * its limits) pass unseen: the kernel's output is then garbage, and training would go on with
 * it. Here the first error since the last read fails the next read (every step reads its loss),
 * naming the error.
 */
function surfaceDeviceErrors(backend: WebGpuBackendLike): void {
  let error: string | undefined;
  backend.device.addEventListener('uncapturederror', (e) => {
    error ??= e.error.message.split('\n')[0]!;
    e.preventDefault();
  });
  const read = backend.read.bind(backend);
  backend.read = async (dataId) => {
    const values = await read(dataId);
    if (error !== undefined) {
      const message = error;
      error = undefined;
      throw new PrimerError('WEBGPU_DEVICE', `the WebGPU device refused a kernel, so the results since are wrong: ${message}`);
    }
    return values;
  };
}
let failed: string | undefined;

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

/**
 * Finds an adapter: Dawn's default backend first (Vulkan on Linux, Metal on macOS, D3D12 on
 * Windows); with `software`, then OpenGL ES in compatibility mode, which finds Mesa's llvmpipe
 * on a machine with no GPU (with EGL_PLATFORM=surfaceless, set here when unset).
 */
async function findAdapter(dawn: DawnModule, software: boolean): Promise<{ gpu: GpuLike; adapter: GpuAdapterLike; dawnBackend: string; compatibility: boolean } | string> {
  const tried: string[] = [];
  const attempts: Array<{ flags: string[]; dawnBackend: string }> = [{ flags: [], dawnBackend: 'default (Vulkan on Linux)' }];
  if (software) attempts.push({ flags: ['backend=opengles'], dawnBackend: 'opengles' });
  for (const { flags, dawnBackend } of attempts) {
    if (flags.includes('backend=opengles')) process.env.EGL_PLATFORM ??= 'surfaceless';
    const gpu = dawn.create(flags);
    for (const compatibility of [false, true]) {
      const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance', ...(compatibility ? { featureLevel: 'compatibility' } : {}) });
      if (adapter) return { gpu, adapter, dawnBackend: dawnBackend.startsWith('default') ? 'vulkan' : dawnBackend, compatibility };
    }
    tried.push(dawnBackend);
  }
  return `Dawn found no adapter (tried ${tried.join(', ')})${software ? '; on Linux without a GPU install libegl1 and libegl-mesa0 (Mesa\'s llvmpipe); with one, its Vulkan driver (libvulkan1 and the vendor\'s ICD)' : '; on Linux a GPU needs its Vulkan driver (libvulkan1 and the vendor\'s ICD file)'}`;
}

/**
 * Starts tfjs's WebGPU backend on the adapter found. `allowSoftware`: whether a software
 * adapter will do (yes when asked for by name; with `--backend auto` only a GPU is taken, as
 * llvmpipe is far slower than our wasm kernels).
 */
async function start(tf: Parameters<BackendPlugin['activate']>[0], allowSoftware: boolean): Promise<BackendActivation> {
  if (started) {
    if (started.adapter.software && !allowSoftware) return { ok: false, reason: `only a software adapter is here (${started.adapter.description}); --backend webgpu uses it` };
    return (await tf.setBackend('webgpu')) ? { ok: true, products: `WebGPU: ${started.adapter.description}` } : { ok: false, reason: 'the webgpu backend did not start again' };
  }
  if (failed) return { ok: false, reason: failed };
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
  if (typeof found === 'string') return { ok: false, reason: found };
  const { description, software } = describeAdapter(found.adapter.info, found.dawnBackend);
  if (software && !allowSoftware) return { ok: false, reason: `only a software adapter is here (${description}); --backend webgpu uses it` };
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
 * The `webgpu` backend entry. Its memory limit for a whole step is half the machine's memory
 * (WebGPU does not say how much memory a GPU has); its tensor limit is the adapter's largest
 * storage binding, so a model with a larger tensor is refused before anything is allocated.
 */
export const webgpuBackend: BackendPlugin = {
  specificationVersion: 1,
  description: 'WebGPU through Dawn (npm: webgpu, @tensorflow/tfjs-backend-webgpu): a GPU through Vulkan; on a machine without one, Mesa\'s llvmpipe (only when asked for by name)',
  activate: (tf, options) => start(tf, options?.automatic !== true),
  memoryLimit: () => totalmem() / 2,
  tensorLimit: () => (started ? Math.min(started.adapter.maxBufferSize, started.adapter.maxStorageBufferBindingSize) : Infinity),
};
