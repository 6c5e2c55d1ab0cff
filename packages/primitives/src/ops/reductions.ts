import { definePrimitive, type PrimitiveDescriptor, type TF, type Tensor } from '../descriptor.js';
import { width } from '../width.js';

function reduction(name: string, what: string, fn: (tf: TF, x: Tensor) => Tensor, code: string): PrimitiveDescriptor {
  return definePrimitive({
    name,
    doc: `${what} over the feature (last) axis, kept as width 1: [batch, seq, w] -> [batch, seq, 1].`,
    category: 'reduction',
    arity: 1,
    sequenceMixing: 'none',
    outputWidth: () => ({ width: width.one() }),
    flops: (s) => s.batch * s.seqLen * (s.inWidths[0] ?? 1),
    apply: (tf, [x]) => fn(tf, x!),
    code: ({ input1 }) => `tf.${code}(${input1}, -1, true)`,
    emit: ({ inputs: [x] }) => `tf.${code}(${x}, ${LAST}, true)`,
  });
}

// A positive axis: tfjs 4.22's Prod gradient fails on axis -1.
const LAST = 2;

export const reductionPrimitives: PrimitiveDescriptor[] = [
  reduction('RED_MEAN', 'Mean', (tf, x) => tf.mean(x, LAST, true), 'mean'),
  reduction('RED_SUM', 'Sum', (tf, x) => tf.sum(x, LAST, true), 'sum'),
  reduction('RED_MIN', 'Minimum', (tf, x) => tf.min(x, LAST, true), 'min'),
  reduction('RED_MAX', 'Maximum', (tf, x) => tf.max(x, LAST, true), 'max'),
  reduction('RED_PROD', 'Product', (tf, x) => tf.prod(x, LAST, true), 'prod'),
];
