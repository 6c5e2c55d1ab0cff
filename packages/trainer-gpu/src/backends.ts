import { createRequire } from 'node:module';
import { totalmem } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { PrimerError, quote } from '@primer-search/core';
import type { TF } from '@primer-search/primitives';
import { registerWasmTrainingKernels } from './wasm-kernels.js';
import { setNativeProducts } from './wasm-matmul.js';

import { BACKENDS, type BackendChoice } from '@primer-search/study';

export interface SelectedBackend {
  /** What was chosen, in our terms. */
  choice: BackendChoice;
  /** tfjs's name of the backend ("tensorflow", "wasm", "cpu"). */
  tfBackend: string;
  tf: TF;
  /** Why the better options were skipped, for the record. */
  skipped: Array<{ choice: BackendChoice; reason: string }>;
  /** What runs the matrix products: the backend's own, or (on wasm) the system's BLAS; with why not, when it could have. */
  products: string;
}

let productsOnWasm = 'XNNPACK (wasm)';

/**
 * The most a training step may hold on a backend, for the compiler's estimate: the wasm heap
 * is 32-bit (4 GiB at most, less what tfjs itself uses); the others are held to half the
 * machine's memory, so a refused program fails in milliseconds instead of swapping.
 */
export function trainingMemoryLimit(choice: BackendChoice): number {
  return choice === 'wasm' ? 3.5 * 2 ** 30 : totalmem() / 2;
}

async function tryNative(pkg: string): Promise<string | undefined> {
  try {
    createRequire(import.meta.url).resolve(pkg);
  } catch {
    return `${pkg} is not installed`;
  }
  try {
    await import(/* @vite-ignore */ pkg);
    return undefined;
  } catch (e) {
    return `${pkg} failed to load: ${(e as Error).message.split('\n')[0]}`;
  }
}

async function activate(choice: BackendChoice): Promise<string | undefined> {
  switch (choice) {
    case 'tfjs-node-gpu':
    case 'tfjs-node': {
      const failed = await tryNative(`@tensorflow/${choice}`);
      if (failed) return failed;
      return (await tf.setBackend('tensorflow')) ? undefined : `${choice} loaded but its "tensorflow" backend did not start`;
    }
    case 'wasm': {
      await import('@tensorflow/tfjs-backend-wasm');
      registerWasmTrainingKernels();
      // the system's BLAS for the products, when it is here (PRIMER_BLAS=off keeps them on wasm)
      const native = setNativeProducts(true);
      productsOnWasm = native.on ? `native BLAS (${native.library})` : `XNNPACK (wasm): native BLAS off, ${native.reason}`;
      return (await tf.setBackend('wasm')) ? undefined : 'the wasm backend did not start';
    }
    case 'cpu':
      return (await tf.setBackend('cpu')) ? undefined : 'the cpu backend did not start';
  }
}

/**
 * Picks the fastest TensorFlow.js backend that works here: tfjs-node-gpu, then tfjs-node
 * (optional peers; their absence is normal), then WebAssembly (with our training kernels),
 * then the pure-JS cpu backend. `force` picks one and fails if it cannot start.
 */
export async function selectBackend(force?: BackendChoice): Promise<SelectedBackend> {
  // The cpu backend greets Node users on first use; PROD silences that.
  tf.env().set('PROD', true);
  if (force !== undefined && !BACKENDS.includes(force)) {
    throw new PrimerError('BAD_BACKEND', `unknown backend ${quote(force)}; choose one of ${BACKENDS.join(', ')}`);
  }
  const skipped: SelectedBackend['skipped'] = [];
  for (const choice of force ? [force] : BACKENDS) {
    const failed = await activate(choice);
    if (!failed) {
      const products = choice === 'wasm' ? productsOnWasm : choice === 'cpu' ? 'JavaScript (cpu)' : 'TensorFlow (native)';
      return { choice, tfBackend: tf.getBackend(), tf: tf as unknown as TF, skipped, products };
    }
    if (force) throw new PrimerError('BACKEND_UNAVAILABLE', `backend ${choice} is not available: ${failed}`);
    skipped.push({ choice, reason: failed });
  }
  throw new PrimerError('BACKEND_UNAVAILABLE', `no TensorFlow.js backend started: ${skipped.map((s) => s.reason).join('; ')}`);
}
