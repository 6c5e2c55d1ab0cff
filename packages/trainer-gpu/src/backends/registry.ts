import * as tf from '@tensorflow/tfjs';
import { PrimerError, createRegistry, quote, type Registry } from '@primer-search/core';
import type { TF } from '@primer-search/primitives';
import { AUTO_BACKENDS, BACKENDS, type BackendChoice, type BuiltinBackend } from '@primer-search/study';

/** What starting a backend gave: what runs its products, or why it cannot run here. */
export type BackendActivation = { ok: true; products: string } | { ok: false; reason: string };

/**
 * A TensorFlow.js backend the trainer can run on, as an entry of the `backends` registry. The
 * built-in ones are `tfjs-node-gpu`, `tfjs-node`, `wasm` (our kernels, products on the system's
 * BLAS when it is present), `wasm-xnnpack`, `wasm-stock` and `cpu`; a plugin registers more
 * (`backends.register('my-backend', { ... })`) and picks one with `--backend` or
 * `selectBackend('my-backend')`.
 */
export interface BackendPlugin {
  /** Contract version of this entry, so the contract can evolve without breaking plugins. */
  specificationVersion: 1;
  /** One line for `--help` and the docs. */
  description: string;
  /**
   * Starts the backend (imports its package, registers its kernels, `tf.setBackend`) on the
   * tfjs instance it is given. Never throws for a backend that is merely absent: it answers
   * `{ ok: false, reason }`, and the next backend is tried. `automatic`: it is being tried in
   * `--backend auto`'s order rather than asked for by name (the `webgpu` entry then declines a
   * software adapter).
   */
  activate(tf: TF, options?: { automatic?: boolean }): Promise<BackendActivation>;
  /** The most bytes one training step may hold on it (the compiler refuses larger models). */
  memoryLimit(): number;
  /**
   * The largest single tensor it can hold, in bytes, once activated (a GPU's largest buffer
   * binding); none when absent. The compiler refuses a model with a larger tensor.
   */
  tensorLimit?(): number;
}

function checkPlugin(name: string, p: BackendPlugin): string | undefined {
  if (name === 'auto') return 'the name "auto" is taken (--backend auto: the first backend that starts)';
  if (p === null || typeof p !== 'object') return 'a backend is an object with activate() and memoryLimit()';
  if (p.specificationVersion !== 1) return `specificationVersion must be 1, got ${String(p.specificationVersion)}`;
  if (typeof p.activate !== 'function') return 'activate(tf) must be a function';
  if (typeof p.memoryLimit !== 'function') return 'memoryLimit() must be a function';
  if (typeof p.description !== 'string') return 'description must be a string';
  if (p.tensorLimit !== undefined && typeof p.tensorLimit !== 'function') return 'tensorLimit, when given, must be a function';
  return undefined;
}

/** The backends the trainer knows; plugins add theirs here. */
export const backends: Registry<BuiltinBackend, BackendPlugin> = createRegistry<BuiltinBackend, BackendPlugin>('backend', { validate: checkPlugin });

export interface SelectedBackend {
  /** The registry name of what was chosen. */
  choice: BackendChoice;
  /** tfjs's name of the backend ("tensorflow", "wasm", "cpu"). */
  tfBackend: string;
  tf: TF;
  /** Why the better options were skipped, for the record. */
  skipped: Array<{ choice: BackendChoice; reason: string }>;
  /** What runs the matrix products: the backend's own, or (on wasm) the system's BLAS; with why not, when it could have. */
  products: string;
}

/**
 * The most a training step may hold on a backend, for the compiler's estimate (the wasm heap
 * is 32-bit; the others are held to half the machine's memory, so a refused program fails in
 * milliseconds instead of swapping).
 */
export function trainingMemoryLimit(choice: BackendChoice): number {
  return backends.get(choice).memoryLimit();
}

/** The largest tensor a backend can hold, in bytes (Infinity where it sets no limit of its own). */
export function tensorMemoryLimit(choice: BackendChoice): number {
  return backends.get(choice).tensorLimit?.() ?? Infinity;
}

/**
 * Picks the fastest backend that works here, trying `BACKENDS` in order: tfjs-node-gpu, then
 * tfjs-node (optional peers; their absence is normal), then WebAssembly (with our training
 * kernels), then the pure-JS cpu backend; `auto` tries `AUTO_BACKENDS`, the same with a GPU
 * through WebGPU before WebAssembly. Any other `force` picks a registered backend by name and
 * fails if it cannot start.
 */
export async function selectBackend(force?: BackendChoice): Promise<SelectedBackend> {
  // The cpu backend greets Node users on first use; PROD silences that.
  tf.env().set('PROD', true);
  if (force === 'auto') return selectFrom(AUTO_BACKENDS.filter((b) => backends.has(b)), true);
  if (force !== undefined && !backends.has(force)) {
    const near = backends.suggest(force);
    throw new PrimerError(
      'BAD_BACKEND',
      `unknown backend ${quote(force)}${near.length ? ` (did you mean ${near.map((n) => quote(n)).join(' or ')}?)` : ''}; choose one of ${backends.names().join(', ')}`,
    );
  }
  if (force) {
    const started = await backends.get(force).activate(tf as unknown as TF);
    if (started.ok) return { choice: force, tfBackend: tf.getBackend(), tf: tf as unknown as TF, skipped: [], products: started.products };
    throw new PrimerError('BACKEND_UNAVAILABLE', `backend ${force} is not available: ${started.reason}`);
  }
  return selectFrom(BACKENDS.filter((b) => backends.has(b)), false);
}

async function selectFrom(order: readonly BackendChoice[], automatic: boolean): Promise<SelectedBackend> {
  const skipped: SelectedBackend['skipped'] = [];
  for (const choice of order) {
    const started = await backends.get(choice).activate(tf as unknown as TF, { automatic });
    if (started.ok) return { choice, tfBackend: tf.getBackend(), tf: tf as unknown as TF, skipped, products: started.products };
    skipped.push({ choice, reason: started.reason });
  }
  throw new PrimerError('BACKEND_UNAVAILABLE', `no TensorFlow.js backend started: ${skipped.map((s) => s.reason).join('; ')}`);
}
