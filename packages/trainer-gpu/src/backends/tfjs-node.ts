import { createRequire } from 'node:module';
import { totalmem } from 'node:os';
import type { BackendPlugin } from './registry.js';

async function tryPackage(pkg: string): Promise<string | undefined> {
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

/** `@tensorflow/tfjs-node` or `-gpu` (optional peers, loaded only when installed): libtensorflow's kernels, held to half the machine's memory. */
export function tfjsNodeBackend(name: 'tfjs-node' | 'tfjs-node-gpu'): BackendPlugin {
  return {
    specificationVersion: 1,
    description: `TensorFlow's C library through @tensorflow/${name}${name === 'tfjs-node-gpu' ? ' (CUDA)' : ''}, when installed`,
    async activate(tf) {
      const failed = await tryPackage(`@tensorflow/${name}`);
      if (failed) return { ok: false, reason: failed };
      return (await tf.setBackend('tensorflow'))
        ? { ok: true, products: 'TensorFlow (native)' }
        : { ok: false, reason: `${name} loaded but its "tensorflow" backend did not start` };
    },
    memoryLimit: () => totalmem() / 2,
  };
}
