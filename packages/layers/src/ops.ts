// Plain TensorFlow.js computations the hand-written layers share, written from the textbook
// definitions (the compiler's primitives are not used here, so tests comparing the two compare
// independent code).
import { tf, type Tensor } from './tf.js';

/** What the layer norms add to the variance before the square root (as the compiled blocks). */
export const NORM_EPS = 1e-6;
/** What masked attention scores become: exp of it is exactly 0 in float32. */
export const MASKED_SCORE = -1e9;

/** `[b, s, n] @ [n, m]`. */
export function dense(x: Tensor, w: Tensor): Tensor {
  const [b, s, n] = x.shape as [number, number, number];
  return tf.reshape(tf.matMul(tf.reshape(x, [b * s, n]), w), [b, s, w.shape[1] as number]);
}

/** Layer norm over the last axis: (x - mean) / sqrt(var + eps) * scale + shift. */
export function layerNorm(x: Tensor, scale: Tensor, shift: Tensor): Tensor {
  const centred = tf.sub(x, tf.mean(x, -1, true));
  const variance = tf.mean(tf.square(centred), -1, true);
  return tf.add(tf.mul(tf.div(centred, tf.sqrt(tf.add(variance, NORM_EPS))), scale), shift);
}

/** Primer's norm: (x - mean) / sqrt(|mean(x (x - mean))| + eps) * scale + shift. */
export function primerNorm(x: Tensor, scale: Tensor, shift: Tensor): Tensor {
  const centred = tf.sub(x, tf.mean(x, -1, true));
  const spread = tf.abs(tf.mean(tf.mul(x, centred), -1, true));
  return tf.add(tf.mul(tf.div(centred, tf.sqrt(tf.add(spread, NORM_EPS))), scale), shift);
}

/** x shifted `lag` positions later along the sequence axis, zeros before the start. */
function delayed(x: Tensor, lag: number): Tensor {
  const [b, s, c] = x.shape as [number, number, number];
  if (lag >= s) return tf.zeros([b, s, c]);
  return tf.concat([tf.zeros([b, lag, c]), tf.slice(x, [0, 0, 0], [b, s - lag, c])], 1);
}

/** Causal depthwise convolution: out[t, c] = sum over lags of kernel[lag, c] * x[t - lag, c]. */
export function causalDepthwiseConv(x: Tensor, kernel: Tensor): Tensor {
  const taps = tf.unstack(kernel, 0);
  let out = tf.mul(x, taps[0]!);
  for (let lag = 1; lag < taps.length; lag++) out = tf.add(out, tf.mul(delayed(x, lag), taps[lag]!));
  return out;
}

/** `[b, s, heads * w]` -> `[b, heads, s, w]`. */
export function splitHeads(x: Tensor, heads: number): Tensor {
  const [b, s, all] = x.shape as [number, number, number];
  return tf.transpose(tf.reshape(x, [b, s, heads, all / heads]), [0, 2, 1, 3]);
}

/** `[b, heads, s, w]` -> `[b, s, heads * w]`. */
export function mergeHeads(x: Tensor): Tensor {
  const [b, h, s, w] = x.shape as [number, number, number, number];
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [b, s, h * w]);
}

/** softmax(q k^T * scale, with key positions after the query's masked out) v, per head: `[b, h, s, w]`. */
export function causalAttention(q: Tensor, k: Tensor, v: Tensor, scale: number): Tensor {
  const s = q.shape[2] as number;
  const scores = tf.mul(tf.matMul(q, k, false, true), scale);
  const future = tf.sub(1, tf.linalg.bandPart(tf.ones([s, s]), -1, 0));
  return tf.matMul(tf.softmax(tf.add(scores, tf.mul(future, MASKED_SCORE)), -1), v);
}

export type Activation = 'relu' | 'squared-relu' | 'gelu';

export function activate(x: Tensor, kind: Activation): Tensor {
  switch (kind) {
    case 'relu':
      return tf.relu(x);
    case 'squared-relu':
      return tf.square(tf.relu(x));
    case 'gelu': {
      // the tanh approximation, as the baselines
      const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));
      return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
    }
  }
}
