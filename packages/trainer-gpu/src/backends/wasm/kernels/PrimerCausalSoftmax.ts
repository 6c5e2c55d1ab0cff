import * as tf from '@tensorflow/tfjs';
import { CAUSAL_SOFTMAX_FILL } from '@primer-search/compiler';
import { EXP_INPUT_CAP, SAFE_DENOMINATOR_EPS } from '@primer-search/primitives';
import type { WasmBackend } from '../heap.js';
import { nativeAddon } from '../products.js';

/**
 * The causal softmax (see FUSED_CAUSAL_SOFTMAX) of `[batch, seq, seq]` scores, row by row as
 * the primitives compute it: the max over the row with masked entries at the fill, exp(min(x -
 * max, cap)), the sum (in double precision) through the safe denominator. Masked entries are
 * exp(fill - max), which is 0 in float32 unless the max is within ~100 of the fill; only then
 * are they computed. Causal rows need only t + 1 exponentials, half the composite's.
 *
 * Non-finite scores give what the composite gives: a NaN in a row makes the max NaN (as tfjs's
 * Max does) and so the whole row NaN, masked entries included; +infinity gives inf - inf = NaN
 * the same way; a row of -infinity with nothing masked has max -infinity and is NaN; min(NaN,
 * cap) is NaN (not the cap), and a NaN sum stays NaN through the safe denominator.
 */
export function causalSoftmaxWasm(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const backend = args.backend as WasmBackend;
  const x = args.inputs.x!;
  const [b, t, w] = x.shape as [number, number, number];
  const out = backend.makeOutput([b, t, w], 'float32');
  const X = backend.typedArrayFromHeap(x) as Float32Array;
  const Y = backend.typedArrayFromHeap(out) as Float32Array;
  const fill = CAUSAL_SOFTMAX_FILL;
  const native = nativeAddon();
  if (native && Y.length > 0) {
    // the whole kernel in the addon (exponentials eight at a time): a few times faster than this loop
    native.csoftmax(Y.buffer, X.byteOffset / 4, Y.byteOffset / 4, b, t, w, fill, EXP_INPUT_CAP, SAFE_DENOMINATOR_EPS);
    return out;
  }
  for (let s = 0; s < b; s++) {
    for (let p = 0; p < t; p++) {
      const o = (s * t + p) * w;
      const open = Math.min(p + 1, w);
      let max = open < w ? fill : -Infinity;
      for (let j = 0; j < open; j++) {
        const v = X[o + j]!;
        if (v > max || v !== v) max = v;
        if (max !== max) break;
      }
      let sum = 0;
      for (let j = 0; j < open; j++) {
        const e = Math.fround(Math.exp(Math.min(Math.fround(X[o + j]! - max), EXP_INPUT_CAP)));
        Y[o + j] = e;
        sum += e;
      }
      const masked = open < w ? Math.fround(Math.exp(Math.min(Math.fround(fill - max), EXP_INPUT_CAP))) : 0;
      sum += masked * (w - open);
      const z = Math.fround(sum);
      const inv = 1 / (z !== z || Math.abs(z) >= SAFE_DENOMINATOR_EPS ? z : SAFE_DENOMINATOR_EPS);
      for (let j = 0; j < open; j++) Y[o + j] = Y[o + j]! * inv;
      const rest = masked * inv;
      for (let j = open; j < w; j++) Y[o + j] = rest;
    }
  }
  return out;
}

/**
 * Its backward: dx = y * (dy - sum(dy * y)) on the row's open positions, 0 where masked (MASK's
 * gradient: 0 times what reached the entry, so NaN where that is not finite, as the composite). The dot runs over the whole row, masked entries included: they carry probability
 * when the open scores are near the fill (in double precision).
 */
export function causalSoftmaxGradWasm(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const backend = args.backend as WasmBackend;
  const { dy, y } = args.inputs as { dy: tf.TensorInfo; y: tf.TensorInfo };
  const [b, t, w] = y.shape as [number, number, number];
  const dx = backend.makeOutput([b, t, w], 'float32');
  const DY = backend.typedArrayFromHeap(dy) as Float32Array;
  const Y = backend.typedArrayFromHeap(y) as Float32Array;
  const DX = backend.typedArrayFromHeap(dx) as Float32Array;
  for (let s = 0; s < b; s++) {
    for (let p = 0; p < t; p++) {
      const o = (s * t + p) * w;
      const open = Math.min(p + 1, w);
      let dot = 0;
      for (let j = 0; j < w; j++) dot += DY[o + j]! * Y[o + j]!;
      for (let j = 0; j < open; j++) DX[o + j] = Y[o + j]! * (DY[o + j]! - dot);
      // MASK's gradient: zero, times what reached the masked entry (NaN stays NaN, as tf.where's gradient multiplies)
      for (let j = open; j < w; j++) DX[o + j] = Y[o + j]! * (DY[o + j]! - dot) * 0;
    }
  }
  return dx;
}
