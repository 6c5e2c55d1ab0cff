import type { TF, Tensor } from './descriptor.js';

/**
 * Bring `x` ([batch, seq, w]) to `target` features by the alignment rule of two-input
 * ops: equal or width 1 (broadcasts) stays; wider is truncated; narrower is zero-padded.
 * With `broadcast`, a width-1 input is tiled explicitly (for ops that do not broadcast).
 */
export function alignWidth(tf: TF, x: Tensor, target: number, broadcast = false): Tensor {
  const w = x.shape[2] as number;
  if (w === target) return x;
  if (w === 1) return broadcast ? tf.tile(x, [1, 1, target]) : x;
  if (w > target) return tf.slice(x, [0, 0, 0], [-1, -1, target]);
  return tf.pad(x, [
    [0, 0],
    [0, 0],
    [0, target - w],
  ]);
}

/** `[1, seq, seq]` boolean: true where key position j <= query position t. A constant: no gradient flows into it. */
export function causalMask(tf: TF, seqLen: number): Tensor {
  return tf.tidy(() => tf.expandDims(tf.cast(tf.linalg.bandPart(tf.ones([seqLen, seqLen]), -1, 0), 'bool'), 0));
}

const maskCache = new Map<string, Tensor>();
const MASK_CACHE_SIZE = 32;

/**
 * The causal mask broadcast to `[batch, seq, seq]`, kept per backend and shape: building it
 * on every call costs a Tile as large as the attention scores (slow on wasm).
 */
export function causalMaskLike(tf: TF, shape: readonly number[]): Tensor {
  const key = `${tf.getBackend()}|${shape.join('x')}`;
  const hit = maskCache.get(key);
  if (hit && !hit.isDisposed) return hit;
  const mask = tf.keep(tf.tidy(() => tf.broadcastTo(causalMask(tf, shape[1] as number), [...shape])));
  maskCache.set(key, mask);
  if (maskCache.size > MASK_CACHE_SIZE) {
    const [oldest] = maskCache.keys();
    maskCache.get(oldest!)!.dispose();
    maskCache.delete(oldest!);
  }
  return mask;
}

/** Drops the cached masks (for tests that count tensors). */
export function clearMaskCache(): void {
  for (const m of maskCache.values()) m.dispose();
  maskCache.clear();
}

/** `x` delayed by `lag` positions along the sequence axis, zero-filled at the start: position t holds x[t - lag]. */
export function delay(tf: TF, x: Tensor, lag: number, fill = 0): Tensor {
  if (lag === 0) return x;
  const seqLen = x.shape[1] as number;
  const padded = tf.pad(
    x,
    [
      [0, 0],
      [lag, 0],
      [0, 0],
    ],
    fill,
  );
  return tf.slice(padded, [0, 0, 0], [-1, seqLen, -1]);
}

/** The denominator DIVIDE and RECIP use: y where |y| >= 1e-6, else ±1e-6 with y's sign (+ at 0). */
export const SAFE_DENOMINATOR_EPS = 1e-6;
export function safeDenominator(tf: TF, y: Tensor): Tensor {
  const s = tf.sign(y);
  const signOrOne = tf.add(s, tf.sub(1, tf.abs(s)));
  return tf.mul(signOrOne, tf.maximum(tf.abs(y), SAFE_DENOMINATOR_EPS));
}

/** `[batch, seq, w] x [w, out]` as one 2-D matMul (tfjs cannot differentiate a 3-D by 2-D matMul). */
export function project(tf: TF, x: Tensor, kernel: Tensor): Tensor {
  const [b, s, w] = x.shape as [number, number, number];
  const out = kernel.shape[1] as number;
  return tf.reshape(tf.matMul(tf.reshape(x, [b * s, w]), kernel), [b, s, out]);
}

/**
 * `x` stacked lane-major (`[lanes * batch, seq, w]`) combined with one `[w]` vector per lane
 * (`op` is tf.mul or tf.add): lane i's rows with `vectors[i]`.
 */
export function perLane(tf: TF, op: 'mul' | 'add', x: Tensor, vectors: Tensor[]): Tensor {
  const lanes = vectors.length;
  const w = x.shape[2] as number;
  const v = tf.reshape(tf.stack(vectors), [lanes, 1, w]);
  return tf.reshape(tf[op](tf.reshape(x, [lanes, -1, w]), v), x.shape);
}

/**
 * An optional fused kernel: the causal product's mask of `[batch, t, t]` scores (input `x`,
 * attr `grad`): entries with key j > query t become 0 and the others are copied, as
 * where(causal, x, 0) computes; with `grad` true they become x * 0 instead (NaN and infinities
 * stay NaN), as where's gradient dy * cast(causal) computes. A backend that registers it (the
 * trainer does for wasm) masks in one pass each way instead of Select, a zero fill and, in the
 * backward, casts and products; elsewhere the composite runs.
 */
export const FUSED_CAUSAL_MASK = 'PrimerCausalMask';

/**
 * where(causal, x, 0) for `[batch, t, t]` scores, with its gradient: the fused kernel where the
 * backend registers it, else the composite.
 */
export function causalZero(tf: TF, x: Tensor): Tensor {
  if (x.rank === 3 && x.dtype === 'float32' && x.shape[1] === x.shape[2] && tf.getKernel(FUSED_CAUSAL_MASK, tf.getBackend())) {
    const f = tf.customGrad(((xs: Tensor) => ({
      value: tf.engine().runKernel(FUSED_CAUSAL_MASK, { x: xs } as never, { grad: false } as never) as unknown as Tensor,
      gradFunc: (dy: Tensor) => tf.engine().runKernel(FUSED_CAUSAL_MASK, { x: dy } as never, { grad: true } as never) as unknown as Tensor,
    })) as unknown as Parameters<TF['customGrad']>[0]);
    return f(x);
  }
  return tf.tidy(() => tf.where(causalMaskLike(tf, x.shape), x, tf.zerosLike(x)));
}
