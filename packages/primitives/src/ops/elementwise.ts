import { definePrimitive, type PrimitiveDescriptor, type TF, type Tensor } from '../descriptor.js';
import { SAFE_DENOMINATOR_EPS, alignWidth, perLane, safeDenominator } from '../tensor-helpers.js';
import { alignedWidth } from '../width.js';

const perElement = (s: { batch: number; seqLen: number; outWidth: number }) => s.batch * s.seqLen * s.outWidth;

function binary(
  name: string,
  doc: string,
  fn: (tf: TF, a: Tensor, b: Tensor) => Tensor,
  code: (a: string, b: string) => string,
  emit: (a: string, b: string) => string,
  /** Tile width-1 inputs explicitly: tfjs 4.22's Maximum/Minimum gradients do not reduce broadcast axes. */
  explicitBroadcast = false,
): PrimitiveDescriptor {
  return definePrimitive({
    name,
    doc: `${doc} Widths align as in every two-input op (see docs/primitives.md).`,
    category: 'binary',
    arity: 2,
    sequenceMixing: 'none',
    outputWidth: ([w1, w2]) => ({ width: alignedWidth(w1!, w2!) }),
    flops: perElement,
    apply: (tf, [a, b], _p, s) =>
      fn(tf, alignWidth(tf, a!, s.outWidth, explicitBroadcast), alignWidth(tf, b!, s.outWidth, explicitBroadcast)),
    code: ({ input1, input2 }) => code(input1, input2),
    emit: ({ inputs: [a, b], outWidth }) => {
      const t = explicitBroadcast ? ', true' : '';
      return emit(`align(tf, ${a}, ${outWidth}${t})`, `align(tf, ${b}, ${outWidth}${t})`);
    },
  });
}

function unary(
  name: string,
  doc: string,
  fn: (tf: TF, x: Tensor) => Tensor,
  code: (x: string) => string,
  emit: (x: string) => string = (x) => code(x),
): PrimitiveDescriptor {
  return definePrimitive({
    name,
    doc,
    category: 'unary',
    arity: 1,
    sequenceMixing: 'none',
    outputWidth: ([w]) => ({ width: w! }),
    flops: perElement,
    apply: (tf, [x]) => fn(tf, x!),
    code: ({ input1 }) => code(input1),
    emit: ({ inputs: [x] }) => emit(x!),
  });
}

export const EXP_INPUT_CAP = 30;
export const LOG_FLOOR = 1e-6;
export const ABS_ROOT_EPS = 1e-6;

export const elementwisePrimitives: PrimitiveDescriptor[] = [
  binary('ADD', 'input1 + input2.', (tf, a, b) => tf.add(a, b), (a, b) => `tf.add(${a}, ${b})`, (a, b) => `tf.add(${a}, ${b})`),
  binary('DIFFERENCE', 'input1 - input2.', (tf, a, b) => tf.sub(a, b), (a, b) => `tf.sub(${a}, ${b})`, (a, b) => `tf.sub(${a}, ${b})`),
  binary('MULTIPLY', 'input1 * input2.', (tf, a, b) => tf.mul(a, b), (a, b) => `tf.mul(${a}, ${b})`, (a, b) => `tf.mul(${a}, ${b})`),
  binary(
    'DIVIDE',
    `Safe division: input1 / d, where d = input2 if |input2| >= ${SAFE_DENOMINATOR_EPS}, else ±${SAFE_DENOMINATOR_EPS} with input2's sign (+ at 0).`,
    (tf, a, b) => tf.div(a, safeDenominator(tf, b)),
    (a, b) => `safeDiv(${a}, ${b})`,
    (a, b) => `tf.div(${a}, safeDenominator(tf, ${b}))`,
  ),
  binary('MAX', 'Elementwise maximum of input1 and input2.', (tf, a, b) => tf.maximum(a, b), (a, b) => `tf.maximum(${a}, ${b})`, (a, b) => `tf.maximum(${a}, ${b})`, true),
  binary('MIN', 'Elementwise minimum of input1 and input2.', (tf, a, b) => tf.minimum(a, b), (a, b) => `tf.minimum(${a}, ${b})`, (a, b) => `tf.minimum(${a}, ${b})`, true),

  unary(
    'ABS_ROOT',
    `sqrt(|x| + ${ABS_ROOT_EPS}) (the epsilon keeps the gradient finite at 0).`,
    (tf, x) => tf.sqrt(tf.add(tf.abs(x), ABS_ROOT_EPS)),
    (x) => `absRoot(${x})`,
    (x) => `tf.sqrt(tf.add(tf.abs(${x}), ${ABS_ROOT_EPS}))`,
  ),
  unary('SQUARE', 'x * x.', (tf, x) => tf.square(x), (x) => `tf.square(${x})`),
  unary(
    'EXP',
    `Safe exponential: exp(min(x, ${EXP_INPUT_CAP})) (finite in float32; exact for x <= ${EXP_INPUT_CAP}).`,
    (tf, x) => tf.exp(tf.minimum(x, EXP_INPUT_CAP)),
    (x) => `safeExp(${x})`,
    (x) => `tf.exp(tf.minimum(${x}, ${EXP_INPUT_CAP}))`,
  ),
  unary(
    'LOG',
    `Safe logarithm: ln(max(|x|, ${LOG_FLOOR})) (defined for every input).`,
    (tf, x) => tf.log(tf.maximum(tf.abs(x), LOG_FLOOR)),
    (x) => `safeLog(${x})`,
    (x) => `tf.log(tf.maximum(tf.abs(${x}), ${LOG_FLOOR}))`,
  ),
  unary('ABS', '|x|.', (tf, x) => tf.abs(x), (x) => `tf.abs(${x})`),
  unary(
    'RECIP',
    `Safe reciprocal: 1 / d, where d = x if |x| >= ${SAFE_DENOMINATOR_EPS}, else ±${SAFE_DENOMINATOR_EPS} with x's sign (+ at 0).`,
    (tf, x) => tf.div(1, safeDenominator(tf, x)),
    (x) => `safeRecip(${x})`,
    (x) => `tf.div(1, safeDenominator(tf, ${x}))`,
  ),
  unary('SIGN', 'sign(x): -1, 0 or 1 (zero gradient).', (tf, x) => tf.sign(x), (x) => `tf.sign(${x})`),
  unary('COS', 'cos(x).', (tf, x) => tf.cos(x), (x) => `tf.cos(${x})`),
  unary('SIN', 'sin(x).', (tf, x) => tf.sin(x), (x) => `tf.sin(${x})`),
  unary('TANH', 'tanh(x).', (tf, x) => tf.tanh(x), (x) => `tf.tanh(${x})`),
  unary('SIGMOID', '1 / (1 + exp(-x)).', (tf, x) => tf.sigmoid(x), (x) => `tf.sigmoid(${x})`),

  definePrimitive({
    name: 'C_MUL',
    doc: 'x * c, with c the bank constant the instruction names.',
    category: 'scalar',
    arity: 1,
    reads: { constant: true, dimSize: false },
    sequenceMixing: 'none',
    outputWidth: ([w]) => ({ width: w! }),
    flops: perElement,
    apply: (tf, [x], _p, s) => tf.mul(x!, s.constant),
    code: ({ input1, constant }) => `tf.mul(${input1}, ${constant})`,
    emit: ({ inputs: [x], constant }) => `tf.mul(${x}, ${constant})`,
  }),
  definePrimitive({
    name: 'SCALE',
    doc: 'x * scale, with scale a learned vector over the last axis (initialised to 1).',
    category: 'scalar',
    arity: 1,
    sequenceMixing: 'none',
    outputWidth: ([w]) => ({ width: w! }),
    parameters: (s) => [{ name: 'scale', shape: [s.outWidth], init: { kind: 'constant', value: 1 } }],
    flops: perElement,
    apply: (tf, [x], [scale]) => tf.mul(x!, scale!),
    applyLanes: (tf, [x], ps) => perLane(tf, 'mul', x!, ps.map((p) => p[0]!)),
    code: ({ input1 }) => `tf.mul(${input1}, scale)`,
    emit: ({ inputs: [x], params: [scale] }) => `tf.mul(${x}, ${scale})`,
  }),
  definePrimitive({
    name: 'SHIFT',
    doc: 'x + shift, with shift a learned vector over the last axis (initialised to 0).',
    category: 'scalar',
    arity: 1,
    sequenceMixing: 'none',
    outputWidth: ([w]) => ({ width: w! }),
    parameters: (s) => [{ name: 'shift', shape: [s.outWidth], init: { kind: 'constant', value: 0 } }],
    flops: perElement,
    apply: (tf, [x], [shift]) => tf.add(x!, shift!),
    applyLanes: (tf, [x], ps) => perLane(tf, 'add', x!, ps.map((p) => p[0]!)),
    code: ({ input1 }) => `tf.add(${input1}, shift)`,
    emit: ({ inputs: [x], params: [shift] }) => `tf.add(${x}, ${shift})`,
  }),
];
