import { totalmem } from 'node:os';
import type { BackendPlugin } from './registry.js';

/** tfjs's pure-JavaScript reference backend: slow, everywhere. */
export const cpuBackend: BackendPlugin = {
  specificationVersion: 1,
  description: "tfjs's pure-JavaScript backend (the reference every kernel of ours is tested against)",
  activate: async (tf) => ((await tf.setBackend('cpu')) ? { ok: true, products: 'JavaScript (cpu)' } : { ok: false, reason: 'the cpu backend did not start' }),
  memoryLimit: () => totalmem() / 2,
};
