// Plain TensorFlow.js building blocks for the reference models. Written from the textbook
// definitions, sharing no code with the DNA compiler, so that equal outputs mean the
// compiler builds real Transformers.
import type { TF, Tensor } from '@primer-search/primitives';

export const EPS = 1e-6;

export interface NormWeights {
  scale: Tensor;
  shift?: Tensor;
}

export interface HeadWeights {
  /** Projections `[dModel, headWidth]` (for shared Q/K: `q` is `[headWidth, headWidth]`, applied to K). */
  q: Tensor;
  k: Tensor;
  v: Tensor;
  /** Depthwise kernels `[3, headWidth]`, row i weighting position t - i (MDHA). */
  qConv?: Tensor;
  kConv?: Tensor;
  vConv?: Tensor;
}

export interface AttentionWeights {
  heads: HeadWeights[];
  out: Tensor;
}

export interface FeedForwardWeights {
  w1: Tensor;
  b1?: Tensor;
  w2: Tensor;
  b2?: Tensor;
  /** SwiGLU's second input projection. */
  w3?: Tensor;
}

export function layerNorm(tf: TF, x: Tensor, w: NormWeights): Tensor {
  const mean = tf.mean(x, -1, true);
  const variance = tf.mean(tf.square(tf.sub(x, mean)), -1, true);
  const y = tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, EPS))), w.scale);
  return w.shift ? tf.add(y, w.shift) : y;
}

export function rmsNorm(tf: TF, x: Tensor, w: NormWeights): Tensor {
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), EPS))), w.scale);
}

/** Primer's norm: (x - mean) * rsqrt(mean(x * (x - mean)) + eps) * scale + shift. */
export function primerNorm(tf: TF, x: Tensor, w: NormWeights): Tensor {
  const centred = tf.sub(x, tf.mean(x, -1, true));
  const y = tf.mul(tf.mul(centred, tf.rsqrt(tf.add(tf.mean(tf.mul(x, centred), -1, true), EPS))), w.scale);
  return w.shift ? tf.add(y, w.shift) : y;
}

/** `[b, s, in] @ [in, out]`. */
export function dense(tf: TF, x: Tensor, w: Tensor): Tensor {
  const [b, s, n] = x.shape as [number, number, number];
  return tf.reshape(tf.matMul(tf.reshape(x, [b * s, n]), w), [b, s, w.shape[1] as number]);
}

/** Causal depthwise convolution over the sequence with tf.depthwiseConv2d (left zero padding). */
export function causalDepthwiseConv(tf: TF, x: Tensor, kernel: Tensor): Tensor {
  const [b, s, c] = x.shape as [number, number, number];
  const k = kernel.shape[0] as number;
  const padded = tf.pad(x, [[0, 0], [k - 1, 0], [0, 0]]);
  // depthwiseConv2d correlates: filter row k-1 meets the current position, row 0 the oldest.
  const filter = tf.reshape(tf.reverse(kernel, 0), [k, 1, c, 1]);
  const y = tf.depthwiseConv2d(tf.reshape(padded, [b, s + k - 1, 1, c]) as never, filter as never, 1, 'valid');
  return tf.reshape(y, [b, s, c]);
}

/** softmax(q k^T * scale, masked to j <= t) v */
export function causalAttention(tf: TF, q: Tensor, k: Tensor, v: Tensor, scale: number): Tensor {
  const s = q.shape[1] as number;
  const scores = tf.mul(tf.matMul(q, k, false, true), scale);
  const allowed = tf.cast(tf.linalg.bandPart(tf.ones([s, s]), -1, 0), 'bool');
  const masked = tf.where(tf.broadcastTo(allowed, scores.shape), scores, tf.fill(scores.shape, -1e9));
  return tf.matMul(tf.softmax(masked, -1), v);
}

/** Multi-head attention; `dconv` adds MDHA's depthwise convolutions, `sharedQk` makes K the shared projection and Q = K Wq. */
export function multiHeadAttention(
  tf: TF,
  x: Tensor,
  w: AttentionWeights,
  o: { scale: number; sharedQk?: boolean },
): Tensor {
  const conv = (t: Tensor, kernel?: Tensor) => (kernel ? causalDepthwiseConv(tf, t, kernel) : t);
  const heads = w.heads.map((h) => {
    const k = conv(dense(tf, x, h.k), h.kConv);
    const q = o.sharedQk ? dense(tf, k, h.q) : conv(dense(tf, x, h.q), h.qConv);
    const v = conv(dense(tf, x, h.v), h.vConv);
    return causalAttention(tf, q, k, v, o.scale);
  });
  return dense(tf, tf.concat(heads, -1), w.out);
}

export function gelu(tf: TF, x: Tensor): Tensor {
  const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));
  return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
}

export function feedForward(tf: TF, x: Tensor, w: FeedForwardWeights, activation: (h: Tensor) => Tensor): Tensor {
  let h = dense(tf, x, w.w1);
  if (w.b1) h = tf.add(h, w.b1);
  h = dense(tf, activation(h), w.w2);
  return w.b2 ? tf.add(h, w.b2) : h;
}
