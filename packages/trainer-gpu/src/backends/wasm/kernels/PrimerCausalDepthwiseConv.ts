import * as tf from '@tensorflow/tfjs';
import type { WasmBackend } from '../heap.js';
import { nativeAddon } from '../products.js';

/**
 * A depthwise kernel's taps and lanes: `[lags, c]`, or `[lanes, lags, c]` with the batch stacking
 * lanes lane-major. Checked here, before any loop or the addon reads memory by these numbers: a
 * batch the lanes do not divide, or channels that differ from x's, would read past the kernel.
 */
function depthwiseLanes(kernel: tf.TensorInfo, x: tf.TensorInfo): { lags: number; perLane: number } {
  const [batch, , c] = x.shape as [number, number, number];
  const lanes = kernel.shape.length === 3 ? kernel.shape[0]! : 1;
  const bad = (why: string) => new Error(`PrimerCausalDepthwiseConv: ${why} (x [${x.shape}], kernel [${kernel.shape}])`);
  if (x.shape.length !== 3 || (kernel.shape.length !== 2 && kernel.shape.length !== 3)) throw bad('x must be [batch, seq, c] and the kernel [lags, c] or [lanes, lags, c]');
  if (kernel.shape.at(-1) !== c) throw bad("the kernel's channels differ from x's");
  if (lanes < 1 || batch % lanes !== 0) throw bad(`a batch of ${batch} cannot be split into ${lanes} lanes`);
  return { lags: kernel.shape[kernel.shape.length - 2]!, perLane: batch / lanes };
}

/**
 * The causal depthwise convolution forward (see FUSED_DEPTHWISE_CONV): out[b, t] = sum over lags
 * of kernel[lag] * x[b, t - lag] (kernel of b's lane), in float32 and in the composite's order
 * (lag 0 first), including the taps that see the zero fill before the start, as the composite
 * multiplies them: kernel * 0 is NaN where the kernel is not finite.
 */
export function depthwiseConvWasm(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const backend = args.backend as WasmBackend;
  const { x, kernel } = args.inputs as { x: tf.TensorInfo; kernel: tf.TensorInfo };
  const [b, t, c] = x.shape as [number, number, number];
  const { lags, perLane } = depthwiseLanes(kernel, x);
  const out = backend.makeOutput([b, t, c], 'float32');
  const X = backend.typedArrayFromHeap(x) as Float32Array;
  const K = backend.typedArrayFromHeap(kernel) as Float32Array;
  const O = backend.typedArrayFromHeap(out) as Float32Array;
  const native = nativeAddon();
  if (native && O.length > 0 && K.length > 0) {
    native.dconv(O.buffer, X.byteOffset / 4, K.byteOffset / 4, O.byteOffset / 4, b, t, c, lags, perLane);
    return out;
  }
  for (let s = 0; s < b; s++) {
    const k0 = Math.floor(s / perLane) * lags * c;
    for (let p = 0; p < t; p++) {
      const o = (s * t + p) * c;
      for (let j = 0; j < c; j++) O[o + j] = K[k0 + j]! * X[o + j]!;
      for (let lag = 1; lag < lags; lag++) {
        const kl = k0 + lag * c;
        if (lag > p) {
          for (let j = 0; j < c; j++) O[o + j] = O[o + j]! + Math.fround(K[kl + j]! * 0);
          continue;
        }
        const i = o - lag * c;
        for (let j = 0; j < c; j++) O[o + j] = O[o + j]! + Math.fround(K[kl + j]! * X[i + j]!);
      }
    }
  }
  return out;
}

/**
 * Its backward: dx[b, t] = sum over lags of kernel[lag] * dy[b, t + lag]; dkernel[lag] = sum over
 * b, t of dy[b, t] * x[b, t - lag] (per lane, summed in double precision), the zero fill included
 * (dy * 0, NaN where dy is not finite, as the composite has it).
 */
export function depthwiseConvGradWasm(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo[] {
  const backend = args.backend as WasmBackend;
  const { dy, x, kernel } = args.inputs as { dy: tf.TensorInfo; x: tf.TensorInfo; kernel: tf.TensorInfo };
  const [b, t, c] = x.shape as [number, number, number];
  const { lags, perLane } = depthwiseLanes(kernel, x);
  const dx = backend.makeOutput([b, t, c], 'float32');
  const dk = backend.makeOutput([...kernel.shape], 'float32');
  const DY = backend.typedArrayFromHeap(dy) as Float32Array;
  const X = backend.typedArrayFromHeap(x) as Float32Array;
  const K = backend.typedArrayFromHeap(kernel) as Float32Array;
  const DX = backend.typedArrayFromHeap(dx) as Float32Array;
  const native = nativeAddon();
  if (native && DX.length > 0 && K.length > 0) {
    const DK = backend.typedArrayFromHeap(dk) as Float32Array;
    native.dconvGrad(DX.buffer, DY.byteOffset / 4, X.byteOffset / 4, K.byteOffset / 4, DX.byteOffset / 4, DK.byteOffset / 4, b, t, c, lags, perLane);
    return [dx, dk];
  }
  const acc = new Float64Array(K.length);
  for (let s = 0; s < b; s++) {
    const k0 = Math.floor(s / perLane) * lags * c;
    for (let p = 0; p < t; p++) {
      const o = (s * t + p) * c;
      for (let j = 0; j < c; j++) DX[o + j] = K[k0 + j]! * DY[o + j]!;
      for (let lag = 1; lag < lags && p + lag < t; lag++) {
        const i = o + lag * c;
        const kl = k0 + lag * c;
        for (let j = 0; j < c; j++) DX[o + j] = DX[o + j]! + Math.fround(K[kl + j]! * DY[i + j]!);
      }
      for (let lag = 0; lag < lags; lag++) {
        const kl = k0 + lag * c;
        if (lag > p) {
          for (let j = 0; j < c; j++) acc[kl + j] = acc[kl + j]! + DY[o + j]! * 0;
          continue;
        }
        const i = o - lag * c;
        // each product in float32 (as the native path and the composite), summed in double
        for (let j = 0; j < c; j++) acc[kl + j] = acc[kl + j]! + Math.fround(DY[o + j]! * X[i + j]!);
      }
    }
  }
  (backend.typedArrayFromHeap(dk) as Float32Array).set(acc);
  return [dx, dk];
}
