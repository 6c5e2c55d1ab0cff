import { definePrimitive, type PrimitiveDescriptor } from '../descriptor.js';
import { alignWidth, causalZero } from '../tensor-helpers.js';
import { formatWidth, isTimeWidth, width } from '../width.js';

export const matrixPrimitives: PrimitiveDescriptor[] = [
  definePrimitive({
    name: 'MAT_MUL',
    doc:
      'Causal attention product: out[t] = sum over j <= t of input1[t, j] * input2[j]. input1 must be ' +
      '[batch, seq, seq] (scores); entries j > t are ignored. Output has input2\'s width.',
    category: 'matrix',
    arity: 2,
    sequenceMixing: 'causal',
    outputWidth: ([w1, w2]) =>
      isTimeWidth(w1!)
        ? { width: w2! }
        : {
            error: `MAT_MUL needs input1 of shape [batch, seq, seq] (attention scores), got width ${formatWidth(w1!)}`,
            field: 'input1',
          },
    flops: (s) => 2 * s.batch * s.seqLen * s.seqLen * s.outWidth,
    apply: (tf, [a, b], _p, s) =>
      tf.tidy(() => {
        return tf.matMul(causalZero(tf, a!), b!);
      }),
    code: ({ input1, input2 }) => `causalMatMul(${input1}, ${input2})`,
    emit: ({ inputs: [a, b] }) => `causalMatMul(tf, ${a}, ${b})`,
  }),
  definePrimitive({
    name: 'T_MAT_MUL',
    doc:
      'Causal scores: out[t, j] = sum over f of input1[t, f] * input2[j, f] for j <= t, and 0 for j > t. ' +
      'Output is [batch, seq, seq]; input2 is aligned to input1\'s width first.',
    category: 'matrix',
    arity: 2,
    sequenceMixing: 'causal',
    outputWidth: () => ({ width: width.time() }),
    flops: (s) => {
      const w = s.inWidths[0] === 1 ? (s.inWidths[1] ?? 1) : (s.inWidths[0] ?? 1);
      return 2 * s.batch * s.seqLen * s.seqLen * w;
    },
    apply: (tf, [a, b], _p, s) =>
      tf.tidy(() => {
        // Contract over the aligned feature width (same rule as elementwise ops).
        const wa = a!.shape[2] as number;
        const wb = b!.shape[2] as number;
        const target = wa === 1 ? wb : wa;
        const x = alignWidth(tf, a!, target, true);
        const y = alignWidth(tf, b!, target, true);
        const scores = tf.matMul(x, y, false, true);
        return causalZero(tf, scores);
      }),
    code: ({ input1, input2 }) => `causalMatMulT(${input1}, ${input2})`,
    emit: ({ inputs: [a, b] }) => `causalScores(tf, ${a}, ${b})`,
  }),
];
