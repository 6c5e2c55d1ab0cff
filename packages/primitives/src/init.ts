import { PrimerError, type Rng } from '@primer-search/core';
import type { InitSpec, ParamSpec } from './descriptor.js';

/** The initial values of one parameter, drawn from `rng` (row-major, float32). Backend-independent. */
export function initialValues(spec: ParamSpec, rng: Rng): Float32Array {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const init: InitSpec = spec.init;
  switch (init.kind) {
    case 'constant':
      return new Float32Array(n).fill(init.value);
    case 'glorot-uniform': {
      const limit = Math.sqrt(6 / (init.fanIn + init.fanOut));
      return rng.uniformArray(n, -limit, limit);
    }
    case 'normal':
      return rng.normalArray(n, init.mean, init.std);
    case 'rows': {
      const rows = spec.shape[0] ?? 1;
      if (init.rows.length !== rows) {
        throw new PrimerError(
          'BAD_INIT',
          `Parameter "${spec.name}": a 'rows' initialiser needs ${rows} values (one per row), got ${init.rows.length}.`,
        );
      }
      const per = n / rows;
      const out = new Float32Array(n);
      for (let r = 0; r < rows; r++) out.fill(init.rows[r] as number, r * per, (r + 1) * per);
      return out;
    }
    default:
      throw new PrimerError('BAD_INIT', `Parameter "${spec.name}": unknown initialiser ${JSON.stringify(init)}.`);
  }
}
