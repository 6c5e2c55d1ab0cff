import * as tf from '@tensorflow/tfjs';
import { NORMALIZE_EPS } from '@primer-search/compiler';
import type { WasmBackend } from '../heap.js';
import { nativeAddon } from '../products.js';

/**
 * Layer norm's normalisation (see FUSED_NORMALIZE) row by row over the last axis: the mean
 * and the mean square of the centred row (in double precision), r = sqrt(var + eps) in float32,
 * n = (x - mean) / r. Outputs n and r (`[..., 1]`, kept for the backward).
 */
export function normalizeWasm(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo[] {
  const backend = args.backend as WasmBackend;
  const x = args.inputs.x!;
  const w = x.shape[x.shape.length - 1]!;
  const n = backend.makeOutput([...x.shape], 'float32');
  const r = backend.makeOutput([...x.shape.slice(0, -1), 1], 'float32');
  const X = backend.typedArrayFromHeap(x) as Float32Array;
  const N = backend.typedArrayFromHeap(n) as Float32Array;
  const R = backend.typedArrayFromHeap(r) as Float32Array;
  const rows = w === 0 ? 0 : X.length / w;
  const native = nativeAddon();
  if (native && X.length > 0) {
    native.normalize(X.buffer, X.byteOffset / 4, N.byteOffset / 4, R.byteOffset / 4, rows, w, NORMALIZE_EPS);
    return [n, r];
  }
  const f = Math.fround;
  for (let row = 0; row < rows; row++) {
    const o = row * w;
    let sum = 0;
    for (let j = 0; j < w; j++) sum += X[o + j]!;
    const mean = f(sum / w);
    let sq = 0;
    for (let j = 0; j < w; j++) {
      const c = f(X[o + j]! - mean);
      N[o + j] = c;
      sq += f(c * c);
    }
    const root = f(Math.sqrt(f(f(sq / w) + NORMALIZE_EPS)));
    R[row] = root;
    for (let j = 0; j < w; j++) N[o + j] = N[o + j]! / root;
  }
  return [n, r];
}

/** Its backward: dx = dc - mean(dc), dc = (dy - n mean(dy n)) / r, per row (the means in double precision). */
export function normalizeGradWasm(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const backend = args.backend as WasmBackend;
  const { dy, n, r } = args.inputs as Record<'dy' | 'n' | 'r', tf.TensorInfo>;
  const w = n.shape[n.shape.length - 1]!;
  const dx = backend.makeOutput([...n.shape], 'float32');
  const DY = backend.typedArrayFromHeap(dy) as Float32Array;
  const N = backend.typedArrayFromHeap(n) as Float32Array;
  const R = backend.typedArrayFromHeap(r) as Float32Array;
  const DX = backend.typedArrayFromHeap(dx) as Float32Array;
  const rows = w === 0 ? 0 : N.length / w;
  const native = nativeAddon();
  if (native && N.length > 0) {
    native.normalizeGrad(N.buffer, DY.byteOffset / 4, N.byteOffset / 4, R.byteOffset / 4, DX.byteOffset / 4, rows, w);
    return dx;
  }
  for (let row = 0; row < rows; row++) {
    const o = row * w;
    let dot = 0;
    for (let j = 0; j < w; j++) dot += DY[o + j]! * N[o + j]!;
    const k = dot / w;
    const inv = 1 / R[row]!;
    let sum = 0;
    for (let j = 0; j < w; j++) {
      const dc = (DY[o + j]! - N[o + j]! * k) * inv;
      DX[o + j] = dc;
      sum += DX[o + j]!;
    }
    const mean = sum / w;
    for (let j = 0; j < w; j++) DX[o + j] = DX[o + j]! - mean;
  }
  return dx;
}
