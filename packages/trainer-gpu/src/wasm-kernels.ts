import * as tf from '@tensorflow/tfjs';
import { CAUSAL_SOFTMAX_FILL, FUSED_CAUSAL_SOFTMAX, FUSED_CAUSAL_SOFTMAX_GRAD, FUSED_CROSS_ENTROPY } from '@primer-search/compiler';
import { EXP_INPUT_CAP, SAFE_DENOMINATOR_EPS } from '@primer-search/primitives';
import { FUSED_DEPTHWISE_CONV, FUSED_DEPTHWISE_CONV_GRAD } from '@primer-search/primitives';
import { nativeAddon, setNativeProducts, setWasmMatMul } from './wasm-matmul.js';

/** The part of the wasm backend's API our kernels use. */
interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  incRef(dataId: tf.DataId): void;
  typedArrayFromHeap(t: tf.TensorInfo): tf.TypedArray;
}

/**
 * UnsortedSegmentSum (the gradient of `gather`, so of every embedding lookup), which stock
 * tfjs-backend-wasm 4.22 lacks: out[s] = sum of x[i] over i with segmentIds[i] = s; ids
 * outside [0, numSegments) are dropped, as on the other backends.
 */
export function unsortedSegmentSumWasm(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const backend = args.backend as WasmBackend;
  const x = args.inputs.x!;
  const ids = args.inputs.segmentIds!;
  const numSegments = Number(args.attrs!.numSegments);
  const idRank = ids.shape.length;
  const innerShape = x.shape.slice(idRank);
  const inner = innerShape.reduce((a, b) => a * b, 1);
  const out = backend.makeOutput([numSegments, ...innerShape], x.dtype);
  // Views only after makeOutput: an allocation can grow the heap and detach older views.
  const o = backend.typedArrayFromHeap(out);
  const xs = backend.typedArrayFromHeap(x);
  const segments = backend.typedArrayFromHeap(ids);
  o.fill(0); // makeOutput memory is not zeroed
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    if (s < 0 || s >= numSegments) continue;
    const from = i * inner;
    const to = s * inner;
    for (let j = 0; j < inner; j++) o[to + j] += xs[from + j]!;
  }
  return out;
}

/** Row-major strides of `shape` aligned (right) to rank `rank`, 0 where the axis broadcasts. */
function broadcastStrides(shape: number[], outShape: number[]): number[] {
  const rank = outShape.length;
  const strides = new Array<number>(rank).fill(0);
  let stride = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const axis = rank - shape.length + i;
    strides[axis] = shape[i] === 1 && outShape[axis] !== 1 ? 0 : stride;
    stride *= shape[i]!;
  }
  return strides;
}

/** Whether `shape` is `outShape` with its last axis reduced to 1 (the max-gradient mask case). */
function isRowReduction(shape: number[], outShape: number[]): boolean {
  const padded = [...new Array<number>(outShape.length - shape.length).fill(1), ...shape];
  return padded.every((d, i) => (i === outShape.length - 1 ? d === 1 : d === outShape[i]));
}

/**
 * Equal with broadcasting. Stock wasm takes a slow generic path whenever the shapes differ,
 * which every max/min gradient hits (x == max(x) over a row): 7 ms for a [16, 64, 64] mask.
 */
export function equalWasm(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const backend = args.backend as WasmBackend;
  const a = args.inputs.a!;
  const b = args.inputs.b!;
  const outShape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
  const rank = outShape.length;
  const out = backend.makeOutput(outShape, 'bool');
  const o = backend.typedArrayFromHeap(out);
  const av = backend.typedArrayFromHeap(a);
  const bv = backend.typedArrayFromHeap(b);
  const n = o.length;
  if (av.length === n && bv.length === n) {
    for (let i = 0; i < n; i++) o[i] = av[i] === bv[i] ? 1 : 0;
  } else if (tf.util.arraysEqual(a.shape, outShape) && isRowReduction(b.shape, outShape)) {
    // the max-gradient case: b is a with its last axis reduced (a must be the whole output:
    // [1, 4, 4] against [2, 4, 1] has a's rank but broadcasts a too)
    const row = outShape[rank - 1]!;
    for (let r = 0, i = 0; r < bv.length; r++) {
      const v = bv[r];
      for (let j = 0; j < row; j++, i++) o[i] = av[i] === v ? 1 : 0;
    }
  } else {
    const sa = broadcastStrides(a.shape, outShape);
    const sb = broadcastStrides(b.shape, outShape);
    const index = new Array<number>(rank).fill(0);
    for (let i = 0; i < n; i++) {
      let ia = 0;
      let ib = 0;
      for (let d = 0; d < rank; d++) {
        ia += index[d]! * sa[d]!;
        ib += index[d]! * sb[d]!;
      }
      o[i] = av[ia] === bv[ib] ? 1 : 0;
      for (let d = rank - 1; d >= 0; d--) {
        if (++index[d]! < outShape[d]!) break;
        index[d] = 0;
      }
    }
  }
  return out;
}


/**
 * Transpose that swaps the last two axes (what matmuls and their gradients need) with a
 * cache-blocked loop over the wasm heap: 0.44 ms instead of 0.81 ms for [1024, 128]. Other
 * permutations, and small tensors, go to the stock kernel.
 */
export function transposeWasm(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const backend = args.backend as WasmBackend;
  const x = args.inputs.x!;
  const perm = (args.attrs!.perm as number[]) ?? [];
  const r = x.shape.length;
  const swapsLastTwo = r >= 2 && perm.every((p, i) => (i < r - 2 ? p === i : i === r - 2 ? p === r - 1 : p === r - 2));
  // Below ~64K elements the stock kernel is as fast or faster (measured: [1024, 32] 0.12 ms stock, 0.16 ms here).
  const elements = x.shape.reduce((a, b) => a * b, 1);
  if (!swapsLastTwo || elements < 65_536 || (x.dtype !== 'float32' && x.dtype !== 'int32')) {
    return stockKernel('Transpose')(args as never) as tf.TensorInfo;
  }
  const rows = x.shape[r - 2]!;
  const cols = x.shape[r - 1]!;
  const batch = x.shape.slice(0, -2).reduce((a, b) => a * b, 1);
  const out = backend.makeOutput([...x.shape.slice(0, -2), cols, rows], x.dtype);
  const o = backend.typedArrayFromHeap(out);
  const v = backend.typedArrayFromHeap(x);
  const B = 32;
  for (let n = 0; n < batch; n++) {
    const base = n * rows * cols;
    for (let i0 = 0; i0 < rows; i0 += B) {
      const i1 = Math.min(i0 + B, rows);
      for (let j0 = 0; j0 < cols; j0 += B) {
        const j1 = Math.min(j0 + B, cols);
        for (let i = i0; i < i1; i++) {
          const src = base + i * cols;
          for (let j = j0; j < j1; j++) o[base + j * rows + i] = v[src + j]!;
        }
      }
    }
  }
  return out;
}


/** Exp: glibc's expf through the native addon while the native path is on (wasm's is a scalar loop too, and slower); stock otherwise. */
export function expWasm(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const native = nativeAddon();
  const x = args.inputs.x!;
  if (!native || x.dtype !== 'float32') return stockKernel('Exp')(args as never) as tf.TensorInfo;
  const backend = args.backend as WasmBackend;
  const out = backend.makeOutput(x.shape, 'float32');
  const X = backend.typedArrayFromHeap(x);
  const Y = backend.typedArrayFromHeap(out);
  if (X.length > 0) native.exp(Y.buffer, X.byteOffset / 4, Y.byteOffset / 4, X.length);
  return out;
}

/**
 * Identity without a copy: the output shares the input's memory and counts a reference, as
 * Reshape does on wasm and Identity does on the cpu and WebGL backends (stock wasm copies; a
 * training step calls it some 300-500 times, from gradients and scopes). Safe because no
 * kernel writes into its inputs.
 */
export function identityWasm(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const x = args.inputs.x!;
  if (x.dtype === 'string') return stockKernel('Identity')(args as never) as tf.TensorInfo;
  (args.backend as WasmBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}

/** Cast to the dtype a tensor already has is an Identity (stock wasm copies); other casts stay stock. */
export function castWasm(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const x = args.inputs.x!;
  if (args.attrs?.dtype !== x.dtype || x.dtype === 'string') return stockKernel('Cast')(args as never) as tf.TensorInfo;
  return identityWasm(args);
}

/** `shape` as [outer, axis, inner] around `axis`. */
const around = (shape: number[], axis: number) => ({
  outer: shape.slice(0, axis).reduce((a, b) => a * b, 1),
  inner: shape.slice(axis + 1).reduce((a, b) => a * b, 1),
});
const copyable = (t: tf.TensorInfo) => t.dtype === 'float32' || t.dtype === 'int32';

/**
 * SplitV as block copies over the wasm heap. Stock wasm slices each piece separately, which
 * along the last axis took ~6 ms to split a [16, 64, 384] projection into 12 heads' inputs.
 */
export function splitVWasm(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo[] {
  const backend = args.backend as WasmBackend;
  const x = args.inputs.x!;
  const axis = tf.util.parseAxisParam(args.attrs!.axis as number, x.shape)[0]!;
  if (!copyable(x)) return stockKernel('SplitV')(args as never) as tf.TensorInfo[];
  const sizes = tf.backend_util.prepareSplitSize(x as never, args.attrs!.numOrSizeSplits as number[] | number, axis);
  const { outer, inner } = around(x.shape, axis);
  const outs = sizes.map((n) => backend.makeOutput(x.shape.map((d, i) => (i === axis ? n : d)), x.dtype));
  // views only after every allocation: one can grow the heap and detach older views
  const src = backend.typedArrayFromHeap(x);
  const total = x.shape[axis]!;
  let start = 0;
  outs.forEach((out, k) => {
    const o = backend.typedArrayFromHeap(out);
    const block = sizes[k]! * inner;
    for (let r = 0; r < outer; r++) {
      const from = (r * total + start) * inner;
      o.set(src.subarray(from, from + block), r * block);
    }
    start += sizes[k]!;
  });
  return outs;
}

const kernels: tf.KernelConfig[] = [
  { kernelName: 'UnsortedSegmentSum', backendName: 'wasm', kernelFunc: unsortedSegmentSumWasm as unknown as tf.KernelFunc },
];

/** Kernels that replace stock wasm ones (registered over them). */
const replacements: tf.KernelConfig[] = [
  { kernelName: 'Equal', backendName: 'wasm', kernelFunc: equalWasm as unknown as tf.KernelFunc },
  { kernelName: 'Transpose', backendName: 'wasm', kernelFunc: transposeWasm as unknown as tf.KernelFunc },
  { kernelName: 'SplitV', backendName: 'wasm', kernelFunc: splitVWasm as unknown as tf.KernelFunc },
  { kernelName: 'Exp', backendName: 'wasm', kernelFunc: expWasm as unknown as tf.KernelFunc },
  { kernelName: 'Identity', backendName: 'wasm', kernelFunc: identityWasm as unknown as tf.KernelFunc },
  { kernelName: 'Cast', backendName: 'wasm', kernelFunc: castWasm as unknown as tf.KernelFunc },
];

/**
 * The LM's loss in one pass over the wasm heap (see FUSED_CROSS_ENTROPY in the compiler):
 * per row, the max, the exponentials (kept as the gradient), their sum; sums in double
 * precision. Outputs the mean cross-entropy and (softmax - onehot) / n.
 */
export function softmaxCrossEntropyWasm(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo[] {
  const backend = args.backend as WasmBackend;
  const logits = args.inputs.logits!;
  const targets = args.inputs.targets!;
  const [n, v] = logits.shape as [number, number];
  const loss = backend.makeOutput([], 'float32');
  const grad = backend.makeOutput([n, v], 'float32');
  // views after allocating: an allocation can grow (and detach) the heap
  const z = backend.typedArrayFromHeap(logits) as Float32Array;
  const t = backend.typedArrayFromHeap(targets) as Int32Array;
  const g = backend.typedArrayFromHeap(grad) as Float32Array;
  const native = nativeAddon();
  if (native && n > 0 && v > 0) {
    (backend.typedArrayFromHeap(loss) as Float32Array)[0] = native.xent(g.buffer, z.byteOffset / 4, t.byteOffset / 4, g.byteOffset / 4, n, v);
    return [loss, grad];
  }
  let total = 0;
  const inv = 1 / n;
  for (let r = 0; r < n; r++) {
    const o = r * v;
    let max = -Infinity;
    for (let j = 0; j < v; j++) if (z[o + j]! > max) max = z[o + j]!;
    let sum = 0;
    for (let j = 0; j < v; j++) {
      const e = Math.exp(z[o + j]! - max);
      g[o + j] = e;
      sum += e;
    }
    const scale = inv / sum;
    for (let j = 0; j < v; j++) g[o + j] = g[o + j]! * scale;
    const target = t[r]!;
    total += Math.log(sum) + max;
    if (target >= 0 && target < v) {
      total -= z[o + target]!;
      g[o + target] = g[o + target]! - inv;
    }
  }
  (backend.typedArrayFromHeap(loss) as Float32Array)[0] = total * inv;
  return [loss, grad];
}

/** A depthwise kernel's taps and lanes: `[lags, c]`, or `[lanes, lags, c]` with the batch stacking lanes lane-major. */
function depthwiseLanes(kernel: tf.TensorInfo, batch: number): { lags: number; perLane: number } {
  const lanes = kernel.shape.length === 3 ? kernel.shape[0]! : 1;
  return { lags: kernel.shape[kernel.shape.length - 2]!, perLane: batch / lanes };
}

/** The causal depthwise convolution forward (see FUSED_DEPTHWISE_CONV): out[b, t] = sum over lags of kernel[lag] * x[b, t - lag] (kernel of b's lane). */
export function depthwiseConvWasm(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const backend = args.backend as WasmBackend;
  const { x, kernel } = args.inputs as { x: tf.TensorInfo; kernel: tf.TensorInfo };
  const [b, t, c] = x.shape as [number, number, number];
  const { lags, perLane } = depthwiseLanes(kernel, b);
  const out = backend.makeOutput([b, t, c], 'float32');
  const X = backend.typedArrayFromHeap(x) as Float32Array;
  const K = backend.typedArrayFromHeap(kernel) as Float32Array;
  const O = backend.typedArrayFromHeap(out) as Float32Array;
  for (let s = 0; s < b; s++) {
    const k0 = Math.floor(s / perLane) * lags * c;
    for (let p = 0; p < t; p++) {
      const o = (s * t + p) * c;
      for (let j = 0; j < c; j++) O[o + j] = K[k0 + j]! * X[o + j]!;
      for (let lag = 1; lag < lags && lag <= p; lag++) {
        const i = o - lag * c;
        const kl = k0 + lag * c;
        for (let j = 0; j < c; j++) O[o + j] = O[o + j]! + K[kl + j]! * X[i + j]!;
      }
    }
  }
  return out;
}

/** Its backward: dx[b, t] = sum over lags of kernel[lag] * dy[b, t + lag]; dkernel[lag] = sum over b, t of dy[b, t] * x[b, t - lag] (per lane, summed in double precision). */
export function depthwiseConvGradWasm(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo[] {
  const backend = args.backend as WasmBackend;
  const { dy, x, kernel } = args.inputs as { dy: tf.TensorInfo; x: tf.TensorInfo; kernel: tf.TensorInfo };
  const [b, t, c] = x.shape as [number, number, number];
  const { lags, perLane } = depthwiseLanes(kernel, b);
  const dx = backend.makeOutput([b, t, c], 'float32');
  const dk = backend.makeOutput([...kernel.shape], 'float32');
  const DY = backend.typedArrayFromHeap(dy) as Float32Array;
  const X = backend.typedArrayFromHeap(x) as Float32Array;
  const K = backend.typedArrayFromHeap(kernel) as Float32Array;
  const DX = backend.typedArrayFromHeap(dx) as Float32Array;
  const acc = new Float64Array(K.length);
  for (let s = 0; s < b; s++) {
    const k0 = Math.floor(s / perLane) * lags * c;
    for (let p = 0; p < t; p++) {
      const o = (s * t + p) * c;
      for (let j = 0; j < c; j++) DX[o + j] = K[k0 + j]! * DY[o + j]!;
      for (let lag = 1; lag < lags && p + lag < t; lag++) {
        const i = o + lag * c;
        const kl = k0 + lag * c;
        for (let j = 0; j < c; j++) DX[o + j] = DX[o + j]! + K[kl + j]! * DY[i + j]!;
      }
      for (let lag = 0; lag < lags && lag <= p; lag++) {
        const i = o - lag * c;
        const kl = k0 + lag * c;
        for (let j = 0; j < c; j++) acc[kl + j] = acc[kl + j]! + DY[o + j]! * X[i + j]!;
      }
    }
  }
  (backend.typedArrayFromHeap(dk) as Float32Array).set(acc);
  return [dx, dk];
}

/**
 * The causal softmax (see FUSED_CAUSAL_SOFTMAX) of `[batch, seq, seq]` scores, row by row as
 * the primitives compute it: the max over the row with masked entries at the fill, exp(min(x -
 * max, cap)), the sum (in double precision) through the safe denominator. Masked entries are
 * exp(fill - max), which is 0 in float32 unless the max is within ~100 of the fill; only then
 * are they computed. Causal rows need only t + 1 exponentials, half the composite's.
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
    // the exponents first, then every exponential in one native call (glibc's expf), then the sums
    for (let r = 0; r < b * t; r++) {
      const o = r * w;
      const open = Math.min((r % t) + 1, w);
      let max = open < w ? fill : -Infinity;
      for (let j = 0; j < open; j++) if (X[o + j]! > max) max = X[o + j]!;
      for (let j = 0; j < open; j++) Y[o + j] = Math.min(Math.fround(X[o + j]! - max), EXP_INPUT_CAP);
      const masked = Math.min(Math.fround(fill - max), EXP_INPUT_CAP);
      for (let j = open; j < w; j++) Y[o + j] = masked;
    }
    native.exp(Y.buffer, Y.byteOffset / 4, Y.byteOffset / 4, Y.length);
    for (let r = 0; r < b * t; r++) {
      const o = r * w;
      let sum = 0;
      for (let j = 0; j < w; j++) sum += Y[o + j]!;
      const z = Math.fround(sum);
      const inv = 1 / (Math.abs(z) >= SAFE_DENOMINATOR_EPS ? z : SAFE_DENOMINATOR_EPS);
      for (let j = 0; j < w; j++) Y[o + j] = Y[o + j]! * inv;
    }
    return out;
  }
  for (let s = 0; s < b; s++) {
    for (let p = 0; p < t; p++) {
      const o = (s * t + p) * w;
      const open = Math.min(p + 1, w);
      let max = open < w ? fill : -Infinity;
      for (let j = 0; j < open; j++) if (X[o + j]! > max) max = X[o + j]!;
      let sum = 0;
      for (let j = 0; j < open; j++) {
        const e = Math.fround(Math.exp(Math.min(Math.fround(X[o + j]! - max), EXP_INPUT_CAP)));
        Y[o + j] = e;
        sum += e;
      }
      const masked = open < w ? Math.fround(Math.exp(Math.min(Math.fround(fill - max), EXP_INPUT_CAP))) : 0;
      sum += masked * (w - open);
      const z = Math.fround(sum);
      const inv = 1 / (Math.abs(z) >= SAFE_DENOMINATOR_EPS ? z : SAFE_DENOMINATOR_EPS);
      for (let j = 0; j < open; j++) Y[o + j] = Y[o + j]! * inv;
      const rest = masked * inv;
      for (let j = open; j < w; j++) Y[o + j] = rest;
    }
  }
  return out;
}

/** Its backward: dx = y * (dy - sum(dy * y)) on the row's open positions (the dot in double precision), 0 where masked. */
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
      for (let j = 0; j < open; j++) dot += DY[o + j]! * Y[o + j]!;
      for (let j = 0; j < open; j++) DX[o + j] = Y[o + j]! * (DY[o + j]! - dot);
      for (let j = open; j < w; j++) DX[o + j] = 0;
    }
  }
  return dx;
}

/** Kernels of our own that stock wasm does not have, on while `fast`. */
const additions: tf.KernelConfig[] = [
  { kernelName: FUSED_CROSS_ENTROPY, backendName: 'wasm', kernelFunc: softmaxCrossEntropyWasm as unknown as tf.KernelFunc },
  { kernelName: FUSED_DEPTHWISE_CONV, backendName: 'wasm', kernelFunc: depthwiseConvWasm as unknown as tf.KernelFunc },
  { kernelName: FUSED_DEPTHWISE_CONV_GRAD, backendName: 'wasm', kernelFunc: depthwiseConvGradWasm as unknown as tf.KernelFunc },
  { kernelName: FUSED_CAUSAL_SOFTMAX, backendName: 'wasm', kernelFunc: causalSoftmaxWasm as unknown as tf.KernelFunc },
  { kernelName: FUSED_CAUSAL_SOFTMAX_GRAD, backendName: 'wasm', kernelFunc: causalSoftmaxGradWasm as unknown as tf.KernelFunc },
];

const stockConfigs = new Map<string, tf.KernelConfig>();
/** The stock wasm kernel our replacement of `name` falls back to. */
const stockKernel = (name: string): tf.KernelFunc => stockConfigs.get(name)!.kernelFunc;

/**
 * Chooses between our wasm kernels (`fast`: Equal, Transpose, SplitV and the XNNPACK-only
 * BatchMatMul) and tfjs's own (`stock`), e.g. to benchmark them side by side. The missing
 * training kernels (UnsortedSegmentSum) stay registered either way.
 */
export function setWasmKernels(kind: 'fast' | 'stock'): void {
  for (const k of replacements) {
    if (!stockConfigs.has(k.kernelName)) {
      const current = tf.getKernel(k.kernelName, k.backendName);
      if (!current) throw new Error('the wasm backend is not registered');
      stockConfigs.set(k.kernelName, current);
    }
    const stock = stockConfigs.get(k.kernelName)!;
    tf.unregisterKernel(k.kernelName, k.backendName);
    // ours keep the stock kernel's setup (it binds the wasm function the fallbacks call)
    tf.registerKernel(kind === 'stock' ? stock : { ...k, setupFunc: stock.setupFunc });
  }
  setWasmMatMul(kind);
  // stock means stock: no native products, no fused kernels either
  if (kind === 'stock') setNativeProducts(false);
  for (const k of additions) {
    const there = tf.getKernel(k.kernelName, k.backendName);
    if (kind === 'stock' && there) tf.unregisterKernel(k.kernelName, k.backendName);
    if (kind === 'fast' && !there) tf.registerKernel(k);
  }
}

/**
 * Registers the training kernels stock wasm lacks and (unless `fast` is false) our faster
 * kernels. Safe to call more than once.
 */
export function registerWasmTrainingKernels(options: { fast?: boolean } = {}): void {
  for (const k of kernels) {
    if (!tf.getKernel(k.kernelName, k.backendName)) tf.registerKernel(k);
  }
  setWasmKernels(options.fast === false ? 'stock' : 'fast');
}
