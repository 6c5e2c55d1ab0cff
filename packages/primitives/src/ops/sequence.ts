import { definePrimitive, type PrimitiveDescriptor } from '../descriptor.js';
import { causalMaskLike, delay } from '../tensor-helpers.js';
import { formatWidth, isTimeWidth } from '../width.js';

/** What MASK writes at future positions: EXP of it is exactly 0 in float32. */
export const MASK_FILL = -1e9;

export const sequencePrimitives: PrimitiveDescriptor[] = [
  definePrimitive({
    name: 'MASK',
    doc: `Causal mask of attention scores: entries [t, j] with j > t become ${MASK_FILL} (so EXP gives 0); input must be [batch, seq, seq].`,
    category: 'sequence',
    arity: 1,
    sequenceMixing: 'causal',
    outputWidth: ([w]) =>
      isTimeWidth(w!)
        ? { width: w! }
        : { error: `MASK needs a [batch, seq, seq] input (attention scores), got width ${formatWidth(w!)}`, field: 'input1' },
    flops: (s) => s.batch * s.seqLen * s.seqLen,
    apply: (tf, [x], _p, s) =>
      tf.tidy(() => {
        return tf.where(causalMaskLike(tf, x!.shape), x!, tf.fill(x!.shape, MASK_FILL));
      }),
    code: ({ input1 }) => `causalMask(${input1})`,
    emit: ({ inputs: [x] }) => `causalMask(tf, ${x})`,
  }),
  definePrimitive({
    name: 'CUM_SUM',
    doc: 'Cumulative sum over the sequence axis: out[t] = sum over j <= t of x[j] (causal).',
    category: 'sequence',
    arity: 1,
    sequenceMixing: 'causal',
    outputWidth: ([w]) => ({ width: w! }),
    flops: (s) => s.batch * s.seqLen * s.outWidth,
    // Along the last axis: tfjs 4.22's Cumsum gradient has the wrong shape for any other axis.
    apply: (tf, [x]) => tf.tidy(() => tf.transpose(tf.cumsum(tf.transpose(x!, [0, 2, 1]), 2), [0, 2, 1])),
    code: ({ input1 }) => `tf.cumsum(${input1}, 1)`,
    emit: ({ inputs: [x] }) => `cumsumSeq(tf, ${x})`,
  }),
  definePrimitive({
    name: 'CUM_PROD',
    doc: 'Cumulative product over the sequence axis: out[t] = product over j <= t of x[j] (causal).',
    category: 'sequence',
    arity: 1,
    sequenceMixing: 'causal',
    outputWidth: ([w]) => ({ width: w! }),
    flops: (s) => s.batch * s.seqLen * s.outWidth * Math.max(1, Math.ceil(Math.log2(s.seqLen))),
    // A log-depth scan of multiplies (tfjs has no Cumprod gradient, and a division-based
    // one breaks at zeros): after the step with offset d, y[t] is the product of x[t-2d+1..t].
    apply: (tf, [x], _p, s) =>
      tf.tidy(() => {
        let y = x!;
        for (let d = 1; d < s.seqLen; d *= 2) y = tf.mul(y, delay(tf, y, d, 1));
        return y;
      }),
    code: ({ input1 }) => `tf.cumprod(${input1}, 1)`,
    emit: ({ inputs: [x] }) => `cumprodSeq(tf, ${x})`,
  }),
];
