import type { InitSpec } from '@primer-search/primitives';
import { tf } from './tf.js';

type Initializer = ReturnType<typeof tf.initializers.zeros>;
// tfjs-layers does not export its Initializer base class; it is Zeros' parent.
const InitializerBase = Object.getPrototypeOf(tf.initializers.zeros().constructor) as new () => Initializer;

/** Row i of the first axis filled with rows[i] (e.g. a depthwise kernel: one value per lag). */
export class RowsInitializer extends InitializerBase {
  static className = 'PrimerRows';
  constructor(readonly config: { rows: number[] }) {
    super();
  }
  override apply(shape: number[]): ReturnType<Initializer['apply']> {
    const rows = shape[0] ?? 1;
    if (rows !== this.config.rows.length) {
      throw new Error(`PrimerRows: the initialiser has ${this.config.rows.length} rows, the weight ${rows} (shape [${shape.join(', ')}])`);
    }
    const per = shape.slice(1).reduce((a, b) => a * b, 1);
    const values = new Float32Array(rows * per);
    for (let r = 0; r < rows; r++) values.fill(this.config.rows[r]!, r * per, (r + 1) * per);
    return tf.tensor(values, shape);
  }
  override getConfig() {
    return { rows: [...this.config.rows] };
  }
}
tf.serialization.registerClass(RowsInitializer as never);

/** The tfjs-layers initializer that draws what an InitSpec describes (the same distribution; tfjs's own random stream). */
export function initializerFor(init: InitSpec): Initializer {
  switch (init.kind) {
    case 'constant':
      return tf.initializers.constant({ value: init.value });
    case 'glorot-uniform': {
      const limit = Math.sqrt(6 / (init.fanIn + init.fanOut));
      return tf.initializers.randomUniform({ minval: -limit, maxval: limit });
    }
    case 'normal':
      return tf.initializers.randomNormal({ mean: init.mean, stddev: init.std });
    case 'rows':
      return new RowsInitializer({ rows: init.rows });
    default:
      throw new Error(`unknown initialiser ${JSON.stringify(init)}`);
  }
}

/** Glorot uniform for one `[fanIn, fanOut]` projection, whatever the weight's shape (heads side by side). */
export const glorot = (fanIn: number, fanOut: number) => initializerFor({ kind: 'glorot-uniform', fanIn, fanOut });

/** tfjs-layers weight names match this (no `:`, `[` or `]`). */
export const WEIGHT_NAME = /^[A-Za-z0-9][-A-Za-z0-9._/]*$/;

/**
 * A compiled block's parameter path as a tfjs-layers weight name: `h2[0]:attention_head` ->
 * `h2.0-attention_head`, `h2:CONV_1X1.kernel` -> `h2-CONV_1X1.kernel`. Reversible for the paths
 * the compiler writes (`h<state>[<branch>]:<subprogram>/.../h<state>:<OP>.<param>`).
 */
export function weightName(path: string): string {
  const name = path.replace(/\[(\d+)\]:/g, '.$1-').replace(/:/g, '-');
  if (!WEIGHT_NAME.test(name)) throw new Error(`the parameter "${path}" has no valid tfjs-layers weight name (got "${name}")`);
  return name;
}

/** The inverse of `weightName`. */
export function parameterPath(name: string): string {
  return name.replace(/(^|\/)(h\d+)\.(\d+)-/g, '$1$2[$3]:').replace(/(^|\/)(h\d+)-/g, '$1$2:');
}
