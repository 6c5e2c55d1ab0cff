/**
 * The helpers a generated block module defines before its own code (see
 * `PrimitiveDescriptor.emit`). Plain TensorFlow.js, embedded as text so the generated
 * module needs nothing but tfjs. Equality with the in-memory implementations is tested by
 * compiling generated modules and comparing outputs.
 */
export const CODEGEN_PRELUDE = String.raw`type Tensor = tfc.Tensor;
type TF = typeof tfc;

/** Width alignment of two-input ops: keep, broadcast width 1 (tiled when asked), truncate, or zero-pad to width w. */
function align(tf: TF, x: Tensor, w: number, tile = false): Tensor {
  const n = x.shape[2] as number;
  if (n === w) return x;
  if (n === 1) return tile ? tf.tile(x, [1, 1, w]) : x;
  if (n > w) return tf.slice(x, [0, 0, 0], [-1, -1, w]);
  return tf.pad(x, [[0, 0], [0, 0], [0, w - n]]);
}

/** y where |y| >= 1e-6, else ±1e-6 with y's sign (+ at 0). */
function safeDenominator(tf: TF, y: Tensor): Tensor {
  const s = tf.sign(y);
  return tf.mul(tf.add(s, tf.sub(1, tf.abs(s))), tf.maximum(tf.abs(y), 1e-6));
}

/** [batch, seq, w] @ [w, out]. */
function dense(tf: TF, x: Tensor, kernel: Tensor): Tensor {
  const [b, s, w] = x.shape as number[];
  return tf.reshape(tf.matMul(tf.reshape(x, [b * s, w]), kernel), [b, s, kernel.shape[1] as number]);
}

/** x delayed by lag positions along the sequence, filled with fill at the start. */
function delay(tf: TF, x: Tensor, lag: number, fill = 0): Tensor {
  if (lag === 0) return x;
  return tf.slice(tf.pad(x, [[0, 0], [lag, 0], [0, 0]], fill), [0, 0, 0], [-1, x.shape[1] as number, -1]);
}

/** Causal convolution: sum over lag of x[t - lag] @ kernel[lag]; kernel [k, w, out]. */
function causalConv(tf: TF, x: Tensor, kernel: Tensor): Tensor {
  const [k, w, out] = kernel.shape as number[];
  const lags = Math.min(k, x.shape[1] as number);
  const columns = tf.concat(Array.from({ length: lags }, (_, lag) => delay(tf, x, lag)), 2);
  const used = tf.slice(kernel, [0, 0, 0], [lags, -1, -1]);
  return dense(tf, columns, tf.reshape(used, [lags * w, out]));
}

/** Causal depthwise convolution: sum over lag of kernel[lag] * x[t - lag]; kernel [k, w]. */
function depthwiseCausalConv(tf: TF, x: Tensor, kernel: Tensor): Tensor {
  const lags = Math.min(kernel.shape[0] as number, x.shape[1] as number);
  let out = tf.mul(x, tf.reshape(tf.slice(kernel, [0, 0], [1, -1]), [-1]));
  for (let lag = 1; lag < lags; lag++) out = tf.add(out, tf.mul(delay(tf, x, lag), tf.reshape(tf.slice(kernel, [lag, 0], [1, -1]), [-1])));
  return out;
}

/** [batch, seq, seq] booleans: key j <= query t. */
function allowed(tf: TF, like: Tensor): Tensor {
  const s = like.shape[1] as number;
  return tf.broadcastTo(tf.cast(tf.linalg.bandPart(tf.ones([s, s]), -1, 0), 'bool'), like.shape);
}

/** out[t] = sum over j <= t of a[t, j] * b[j]. */
function causalMatMul(tf: TF, a: Tensor, b: Tensor): Tensor {
  return tf.matMul(tf.where(allowed(tf, a), a, tf.zerosLike(a)), b);
}

/** out[t, j] = a[t] . b[j] for j <= t, else 0 (b aligned to a's width). */
function causalScores(tf: TF, a: Tensor, b: Tensor): Tensor {
  const w = a.shape[2] === 1 ? (b.shape[2] as number) : (a.shape[2] as number);
  const scores = tf.matMul(align(tf, a, w, true), align(tf, b, w, true), false, true);
  return tf.where(allowed(tf, scores), scores, tf.zerosLike(scores));
}

/** Attention-score mask: entries j > t become -1e9. */
function causalMask(tf: TF, x: Tensor): Tensor {
  return tf.where(allowed(tf, x), x, tf.fill(x.shape, -1e9));
}

/** Cumulative sum over the sequence axis. */
function cumsumSeq(tf: TF, x: Tensor): Tensor {
  return tf.transpose(tf.cumsum(tf.transpose(x, [0, 2, 1]), 2), [0, 2, 1]);
}

/** Cumulative product over the sequence axis (a log-depth scan of multiplies). */
function cumprodSeq(tf: TF, x: Tensor): Tensor {
  let y = x;
  for (let d = 1; d < (x.shape[1] as number); d *= 2) y = tf.mul(y, delay(tf, y, d, 1));
  return y;
}

/** n parallel copies, concatenated on the feature axis. */
function branch(tf: TF, n: number, f: (b: number) => Tensor): Tensor {
  return n === 1 ? f(0) : tf.concat(Array.from({ length: n }, (_, b) => f(b)), 2);
}
`;
