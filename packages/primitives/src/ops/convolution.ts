import { definePrimitive, type PrimitiveDescriptor } from '../descriptor.js';
import { delay, project } from '../tensor-helpers.js';
import { width } from '../width.js';

export const CONV_WIDTHS = [3, 7, 15, 31] as const;

/** The released Primer MDHA initialisation: 0.5 on the current position, 0.5 / k on each earlier one. */
export function depthwiseInitRows(k: number): number[] {
  return Array.from({ length: k }, (_, lag) => (lag === 0 ? 0.5 : 0.5 / k));
}

const conv1x1 = definePrimitive({
  name: 'CONV_1X1',
  doc: 'Dense projection over features: x @ kernel, kernel [w, dimSize] (Glorot uniform, no bias).',
  category: 'projection',
  arity: 1,
  reads: { constant: false, dimSize: true },
  sequenceMixing: 'none',
  outputWidth: (_w, { dimSize }) => ({ width: width.units(dimSize) }),
  parameters: (s) => {
    const w = s.inWidths[0] as number;
    return [{ name: 'kernel', shape: [w, s.outWidth], init: { kind: 'glorot-uniform', fanIn: w, fanOut: s.outWidth } }];
  },
  flops: (s) => 2 * s.batch * s.seqLen * (s.inWidths[0] as number) * s.outWidth,
  apply: (tf, [x], [kernel]) => project(tf, x!, kernel!),
  code: ({ input1, dimSize }) => `dense(${input1}, ${dimSize})`,
  emit: ({ inputs: [x], params: [kernel] }) => `dense(tf, ${x}, ${kernel})`,
});

function causalConv(k: number): PrimitiveDescriptor {
  return definePrimitive({
    name: `CONV_${k}X1`,
    doc:
      `Causal convolution of width ${k} over the sequence: out[t] = sum over lag < ${k} of x[t - lag] @ kernel[lag] ` +
      `(zero before the start), kernel [${k}, w, dimSize] (Glorot uniform, no bias).`,
    category: 'convolution',
    arity: 1,
    reads: { constant: false, dimSize: true },
    sequenceMixing: 'causal',
    outputWidth: (_w, { dimSize }) => ({ width: width.units(dimSize) }),
    parameters: (s) => {
      const w = s.inWidths[0] as number;
      return [
        {
          name: 'kernel',
          shape: [k, w, s.outWidth],
          init: { kind: 'glorot-uniform', fanIn: k * w, fanOut: k * s.outWidth },
        },
      ];
    },
    flops: (s) => 2 * k * s.batch * s.seqLen * (s.inWidths[0] as number) * s.outWidth,
    apply: (tf, [x], [kernel], s) =>
      tf.tidy(() => {
        // Lags >= seqLen only ever see the zero fill: skip them (their gradient is 0 either way).
        const lags = Math.min(k, s.seqLen);
        const w = x!.shape[2] as number;
        const columns = tf.concat(
          Array.from({ length: lags }, (_, lag) => delay(tf, x!, lag)),
          2,
        );
        const used = lags === k ? kernel! : tf.slice(kernel!, [0, 0, 0], [lags, -1, -1]);
        return project(tf, columns, tf.reshape(used, [lags * w, s.outWidth]));
      }),
    code: ({ input1, dimSize }) => `causalConv(${input1}, ${k}, ${dimSize})`,
    emit: ({ inputs: [x], params: [kernel] }) => `causalConv(tf, ${x}, ${kernel})`,
  });
}

function depthwiseConv(k: number): PrimitiveDescriptor {
  return definePrimitive({
    name: `DCONV_${k}X1`,
    doc:
      `Causal depthwise convolution of width ${k}: out[t, c] = sum over lag < ${k} of kernel[lag, c] * x[t - lag, c] ` +
      `(zero before the start); kernel [${k}, w] initialised to 0.5 at lag 0 and 0.5/${k} at the other lags.`,
    category: 'convolution',
    arity: 1,
    sequenceMixing: 'causal',
    outputWidth: ([w]) => ({ width: w! }),
    parameters: (s) => [
      { name: 'kernel', shape: [k, s.outWidth], init: { kind: 'rows', rows: depthwiseInitRows(k) } },
    ],
    flops: (s) => 2 * k * s.batch * s.seqLen * s.outWidth,
    apply: (tf, [x], [kernel], s) =>
      tf.tidy(() => {
        const lags = Math.min(k, s.seqLen);
        const taps = tf.unstack(lags === k ? kernel! : tf.slice(kernel!, [0, 0], [lags, -1]), 0);
        let out = tf.mul(x!, taps[0]!);
        for (let lag = 1; lag < lags; lag++) out = tf.add(out, tf.mul(delay(tf, x!, lag), taps[lag]!));
        return out;
      }),
    code: ({ input1 }) => `depthwiseCausalConv(${input1}, ${k})`,
    emit: ({ inputs: [x], params: [kernel] }) => `depthwiseCausalConv(tf, ${x}, ${kernel})`,
  });
}

export const convolutionPrimitives: PrimitiveDescriptor[] = [
  conv1x1,
  ...CONV_WIDTHS.map(causalConv),
  ...CONV_WIDTHS.map(depthwiseConv),
];
