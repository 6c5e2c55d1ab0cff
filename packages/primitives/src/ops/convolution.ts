import { definePrimitive, type PrimitiveDescriptor, type Tensor, type TF } from '../descriptor.js';
import { delay, perLane, project } from '../tensor-helpers.js';
import { width } from '../width.js';

export const CONV_WIDTHS = [3, 7, 15, 31] as const;

/** The released Primer MDHA initialisation: 0.5 on the current position, 0.5 / k on each earlier one. */
export function depthwiseInitRows(k: number): number[] {
  return Array.from({ length: k }, (_, lag) => (lag === 0 ? 0.5 : 0.5 / k));
}

/**
 * Optional fused kernels for the causal depthwise convolution, `[batch, seq, w]` by a
 * `[lags, w]` kernel, or by a `[lanes, lags, w]` kernel when the batch stacks `lanes` calls
 * lane-major (sequence b uses kernel b / (batch / lanes)): the forward (`x`, `kernel` -> out)
 * and the backward (`dy`, `x`, `kernel` -> dx, dkernel of the kernel's shape). A backend that registers both (the trainer does for wasm) gets each DCONV in
 * one kernel call each way instead of the delays, products and sums of the composite;
 * elsewhere the composite runs, and is the reference the fused kernels are tested against.
 */
export const FUSED_DEPTHWISE_CONV = 'PrimerCausalDepthwiseConv';
export const FUSED_DEPTHWISE_CONV_GRAD = 'PrimerCausalDepthwiseConvGrad';

function fusedDepthwiseConv(tf: TF, x: Tensor, kernel: Tensor): Tensor {
  type Save = (ts: Tensor[]) => void;
  const f = tf.customGrad(((xs: Tensor, ks: Tensor, save: Save) => {
    save([xs, ks]);
    return {
      value: tf.engine().runKernel(FUSED_DEPTHWISE_CONV, { x: xs, kernel: ks } as never, {}) as unknown as Tensor,
      gradFunc: (dy: Tensor, saved: Tensor[]) => tf.engine().runKernel(FUSED_DEPTHWISE_CONV_GRAD, { dy, x: saved[0]!, kernel: saved[1]! } as never, {}) as unknown as Tensor[],
    };
  }) as unknown as Parameters<TF['customGrad']>[0]);
  return f(x, kernel);
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
  // lanes: one batched product, [lanes, batch * seq, w] x [lanes, w, out]
  applyLanes: (tf, [x], ps, s) => {
    const w = x!.shape[2] as number;
    const y = tf.matMul(tf.reshape(x!, [s.lanes, s.batch * s.seqLen, w]), tf.stack(ps.map((p) => p[0]!)));
    return tf.reshape(y, [s.lanes * s.batch, s.seqLen, s.outWidth]);
  },
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

/**
 * The causal depthwise convolution of `x` by `kernels` (`[k, w]` each; one, or one per lane of
 * a lane-major stacked `x`), using its first `lags` taps (later ones only see the zero fill).
 */
function depthwise(tf: TF, x: Tensor, kernels: Tensor[], lags: number): Tensor {
  return tf.tidy(() => {
    const k = kernels[0]!.shape[0] as number;
    const used = kernels.map((kernel) => (lags === k ? kernel : tf.slice(kernel, [0, 0], [lags, -1])));
    const backend = tf.getBackend();
    if (x.rank === 3 && x.dtype === 'float32' && tf.getKernel(FUSED_DEPTHWISE_CONV, backend) && tf.getKernel(FUSED_DEPTHWISE_CONV_GRAD, backend)) {
      return fusedDepthwiseConv(tf, x, used.length === 1 ? used[0]! : tf.stack(used));
    }
    const taps = used.map((u) => tf.unstack(u, 0));
    const tap = (t: Tensor, lag: number) => (taps.length === 1 ? tf.mul(t, taps[0]![lag]!) : perLane(tf, 'mul', t, taps.map((l) => l[lag]!)));
    let out = tap(x, 0);
    for (let lag = 1; lag < lags; lag++) out = tf.add(out, tap(delay(tf, x, lag), lag));
    return out;
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
    apply: (tf, [x], [kernel], s) => depthwise(tf, x!, [kernel!], Math.min(k, s.seqLen)),
    applyLanes: (tf, [x], ps, s) => depthwise(tf, x!, ps.map((p) => p[0]!), Math.min(k, s.seqLen)),
    code: ({ input1 }) => `depthwiseCausalConv(${input1}, ${k})`,
    emit: ({ inputs: [x], params: [kernel] }) => `depthwiseCausalConv(tf, ${x}, ${kernel})`,
  });
}

export const convolutionPrimitives: PrimitiveDescriptor[] = [
  conv1x1,
  ...CONV_WIDTHS.map(causalConv),
  ...CONV_WIDTHS.map(depthwiseConv),
];
