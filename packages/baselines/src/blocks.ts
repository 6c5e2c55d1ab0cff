// The baselines' building blocks, written as DNA subprograms. Each mirrors a function of
// references/common.ts, which computes the same thing in plain TensorFlow.js.
import type { DnaBuilder, Ref, SubprogramHandle, SubprogramWriter } from '@primer-search/dna';

export type Norm = 'layer' | 'rms' | 'primer';
export type Activation = 'relu' | 'gelu' | 'squared-relu';

/** (x - mean) / sqrt(var + 1e-6) * scale + shift */
export function layerNorm(b: DnaBuilder): SubprogramHandle {
  return b.subprogram('layer_norm', (s, x) => {
    const centred = s.op('DIFFERENCE', x, s.op('RED_MEAN', x));
    const variance = s.op('RED_MEAN', s.op('SQUARE', centred));
    const normed = s.op('DIVIDE', centred, s.op('ABS_ROOT', variance));
    return s.op('SHIFT', s.op('SCALE', normed));
  });
}

/** x / sqrt(mean(x^2) + 1e-6) * scale */
export function rmsNorm(b: DnaBuilder): SubprogramHandle {
  return b.subprogram('rms_norm', (s, x) => {
    const rms = s.op('ABS_ROOT', s.op('RED_MEAN', s.op('SQUARE', x)));
    return s.op('SCALE', s.op('DIVIDE', x, rms));
  });
}

/** Primer's norm: (x - mean) / sqrt(mean(x * (x - mean)) + 1e-6) * scale + shift */
export function primerNorm(b: DnaBuilder): SubprogramHandle {
  return b.subprogram('primer_norm', (s, x) => {
    const centred = s.op('DIFFERENCE', x, s.op('RED_MEAN', x));
    const spread = s.op('RED_MEAN', s.op('MULTIPLY', x, centred));
    return s.op('SHIFT', s.op('SCALE', s.op('DIVIDE', centred, s.op('ABS_ROOT', spread))));
  });
}

export function norm(b: DnaBuilder, kind: Norm): SubprogramHandle {
  return kind === 'layer' ? layerNorm(b) : kind === 'rms' ? rmsNorm(b) : primerNorm(b);
}

/** Softmax over key positions j <= t: exp(s - max) / sum, with future positions masked out. */
export function causalSoftmax(b: DnaBuilder): SubprogramHandle {
  return b.subprogram('causal_softmax', (s, scores) => {
    const masked = s.op('MASK', scores);
    const e = s.op('EXP', s.op('DIFFERENCE', masked, s.op('RED_MAX', masked)));
    return s.op('DIVIDE', e, s.op('RED_SUM', e));
  });
}

/** relu(x) = (x + |x|) / 2 */
function relu(s: SubprogramWriter, x: Ref): Ref {
  return s.op('C_MUL', s.op('ADD', x, s.op('ABS', x)), undefined, { constant: 0.5 });
}

export function activation(b: DnaBuilder, kind: Activation): SubprogramHandle {
  switch (kind) {
    case 'relu':
      return b.subprogram('relu', (s, x) => relu(s, x));
    case 'squared-relu':
      return b.subprogram('squared_relu', (s, x) => s.op('SQUARE', relu(s, x)));
    case 'gelu':
      // tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) = 0.5 (x + x tanh(...))
      return b.subprogram('gelu', (s, x) => {
        const cube = s.op('MULTIPLY', s.op('SQUARE', x), x);
        const inner = s.op('C_MUL', s.op('ADD', x, s.op('C_MUL', cube, undefined, { constant: 0.044715 })), undefined, {
          constant: Math.fround(Math.sqrt(2 / Math.PI)),
        });
        const t = s.op('TANH', inner);
        return s.op('C_MUL', s.op('ADD', x, s.op('MULTIPLY', x, t)), undefined, { constant: 0.5 });
      });
  }
}

/** swish(x) = x * sigmoid(x) */
export function swish(b: DnaBuilder): SubprogramHandle {
  return b.subprogram('swish', (s, x) => s.op('MULTIPLY', x, s.op('SIGMOID', x)));
}

export interface AttentionOptions {
  heads: 1 | 2 | 4 | 8;
  /** 1 / sqrt(head width in features). */
  scale: number;
  /** Primer's MDHA: a causal width-3 depthwise convolution after each Q, K and V projection. */
  dconv: boolean;
  /** Primer's shared Q/K: K = dconv(x Wqk), Q = K Wq. */
  sharedQk: boolean;
}

export function multiHeadAttention(b: DnaBuilder, o: AttentionOptions): SubprogramHandle {
  const headUnits = (8 / o.heads) as 1 | 2 | 4 | 8;
  const softmax = causalSoftmax(b);
  const project = (s: SubprogramWriter, x: Ref) => {
    const p = s.op('CONV_1X1', x, undefined, { dim: headUnits });
    return o.dconv ? s.op('DCONV_3X1', p) : p;
  };
  const head = b.subprogram('attention_head', (s, x) => {
    let q: Ref;
    let k: Ref;
    if (o.sharedQk) {
      k = project(s, x);
      q = s.op('CONV_1X1', k, undefined, { dim: headUnits });
    } else {
      q = project(s, x);
      k = project(s, x);
    }
    const v = project(s, x);
    const scores = s.op('C_MUL', s.op('T_MAT_MUL', q, k), undefined, { constant: o.scale });
    return s.op('MAT_MUL', s.call(softmax, scores), v);
  });
  return b.subprogram('multi_head_attention', (s, x) =>
    s.op('CONV_1X1', s.call(head, x, undefined, { branching: o.heads }), undefined, { dim: 8 }),
  );
}

export interface FeedForwardOptions {
  activation: Activation | 'swiglu';
  /** Hidden width in units (4 x dModel = 32u). */
  hidden: 8 | 12 | 16 | 24 | 32 | 48 | 64;
  bias: boolean;
}

export function feedForward(b: DnaBuilder, o: FeedForwardOptions): SubprogramHandle {
  if (o.activation === 'swiglu') {
    const sw = swish(b);
    return b.subprogram('feed_forward', (s, x) => {
      const gate = s.call(sw, s.op('CONV_1X1', x, undefined, { dim: o.hidden }));
      const up = s.op('CONV_1X1', x, undefined, { dim: o.hidden });
      return s.op('CONV_1X1', s.op('MULTIPLY', gate, up), undefined, { dim: 8 });
    });
  }
  const act = activation(b, o.activation);
  return b.subprogram('feed_forward', (s, x) => {
    let h = s.op('CONV_1X1', x, undefined, { dim: o.hidden });
    if (o.bias) h = s.op('SHIFT', h);
    h = s.op('CONV_1X1', s.call(act, h), undefined, { dim: 8 });
    return o.bias ? s.op('SHIFT', h) : h;
  });
}
