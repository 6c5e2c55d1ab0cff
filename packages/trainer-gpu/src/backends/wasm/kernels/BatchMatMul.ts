import * as tf from '@tensorflow/tfjs';
import { stockKernel, useKernel, type Kernel, type WasmBackend } from '../heap.js';
import type { NativeBlasAddon } from '../native-blas.js';
import { nativeAddon } from '../products.js';

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * How the batch axes of a product broadcast (numpy's rule, as tf.matMul's shapes say): the
 * output's batch shape, and for each output batch the batch of `a` and of `b` it multiplies.
 * `layout` names the cases with a single stride: every batch with its own (`same`), one `a` for
 * every `b` (`shared-a`), one `b` for every `a` (`shared-b`); anything else is `general`, one
 * product per pair.
 */
export function batchPairs(aBatch: number[], bBatch: number[]): { shape: number[]; pairs: Array<[number, number]>; layout: 'same' | 'shared-a' | 'shared-b' | 'general' } {
  const shape = tf.backend_util.assertAndGetBroadcastShape(aBatch, bBatch);
  const rank = shape.length;
  const pad = (s: number[]) => [...Array<number>(rank - s.length).fill(1), ...s];
  const [pa, pb] = [pad(aBatch), pad(bBatch)];
  const pairs: Array<[number, number]> = [];
  for (let flat = 0; flat < size(shape); flat++) {
    let rest = flat;
    let ia = 0;
    let ib = 0;
    let sa = 1;
    let sb = 1;
    for (let d = rank - 1; d >= 0; d--) {
      const i = rest % shape[d]!;
      rest = Math.floor(rest / shape[d]!);
      if (pa[d] !== 1) ia += i * sa;
      if (pb[d] !== 1) ib += i * sb;
      sa *= pa[d]!;
      sb *= pb[d]!;
    }
    pairs.push([ia, ib]);
  }
  const layout = pairs.every(([i, j], o) => i === o && j === o)
    ? 'same'
    : pairs.every(([i, j], o) => i === 0 && j === o)
      ? 'shared-a'
      : pairs.every(([i, j], o) => i === o && j === 0)
        ? 'shared-b'
        : 'general';
  return { shape, pairs, layout };
}

/**
 * One BatchMatMul by the system's BLAS, in place on the wasm heap: transposes as flags, a
 * batch as strides (no copies), a batch against one shared right-hand matrix as one product,
 * and any other broadcast as one product per pair of batches.
 */
function nativeBatchMatMul(native: NativeBlasAddon, backend: WasmBackend, a: tf.TensorInfo, b: tf.TensorInfo, ta: boolean, tb: boolean): tf.TensorInfo {
  const r = (t: tf.TensorInfo, i: number) => t.shape[t.shape.length + i]!;
  const m = ta ? r(a, -1) : r(a, -2);
  const k = ta ? r(a, -2) : r(a, -1);
  const n = tb ? r(b, -2) : r(b, -1);
  const { shape, pairs, layout } = batchPairs(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const out = backend.makeOutput([...shape, m, n], 'float32');
  if (pairs.length * m * n === 0) return out;
  // views after allocating: an allocation can grow (and detach) the heap
  const A = backend.typedArrayFromHeap(a);
  const B = backend.typedArrayFromHeap(b);
  const C = backend.typedArrayFromHeap(out);
  if (k === 0) {
    C.fill(0);
    return out;
  }
  const [a0, b0, c0] = [A.byteOffset / 4, B.byteOffset / 4, C.byteOffset / 4];
  if (layout === 'general') {
    pairs.forEach(([i, j], o) => native.sgemm(C.buffer, ta, tb, m, n, k, a0 + i * m * k, b0 + j * k * n, c0 + o * m * n, 1, 0, 0));
    return out;
  }
  const fold = layout === 'shared-b' && !ta; // [batch * m, k] x [k, n]
  native.sgemm(C.buffer, ta, tb, fold ? pairs.length * m : m, n, k, a0, b0, c0, fold ? 1 : pairs.length, layout === 'shared-a' ? 0 : m * k, layout === 'shared-b' ? 0 : k * n);
  return out;
}

/**
 * BatchMatMul on wasm that always takes XNNPACK's fast path. Stock tfjs-wasm 4.22 uses
 * XNNPACK only for a non-transposed product with batch 1, and a naive loop (10-35x slower)
 * for everything a backward pass needs (and gets broadcast batches wrong). Here transposed
 * operands are transposed explicitly, a batch against one shared matrix is folded into a
 * single 2-D product, and any other batch runs as 2-D products one pair at a time.
 */
export function fastBatchMatMulWasm(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const backend = args.backend as WasmBackend;
  const matMul = stockKernel('BatchMatMul') as unknown as Kernel;
  // whichever Transpose is registered (ours, once the trainer set wasm up)
  const transpose = tf.getKernel('Transpose', 'wasm')!.kernelFunc as unknown as Kernel;
  let a = args.inputs.a!;
  let b = args.inputs.b!;
  const transposeA = Boolean(args.attrs?.transposeA);
  const transposeB = Boolean(args.attrs?.transposeB);
  const native = nativeAddon();
  if (native && a.dtype === 'float32' && b.dtype === 'float32') return nativeBatchMatMul(native, backend, a, b, transposeA, transposeB);
  const { shape: outBatchShape, pairs, layout } = batchPairs(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const temps: tf.TensorInfo[] = [];
  const view = (t: tf.TensorInfo, shape: number[]): tf.TensorInfo => ({ ...t, shape });
  const swapLast = (t: tf.TensorInfo) => {
    const r = t.shape.length;
    const perm = Array.from({ length: r }, (_, i) => (i === r - 2 ? r - 1 : i === r - 1 ? r - 2 : i));
    const out = transpose({ inputs: { x: t }, backend, attrs: { perm } });
    temps.push(out);
    return out;
  };
  const m0 = transposeA ? a.shape.at(-1)! : a.shape.at(-2)!;
  const n0 = transposeB ? b.shape.at(-2)! : b.shape.at(-1)!;
  if (pairs.length * m0 * n0 === 0) return backend.makeOutput([...outBatchShape, m0, n0], 'float32');

  // A single product can also be computed as C = (op(B)^T op(A)^T)^T, which transposes the
  // other operands and the result instead: pick whichever moves fewer floats (e.g. a weight
  // gradient x^T dy with x [1024, 128] and dy [1024, 32] transposes dy and a small result).
  if (pairs.length === 1 && (transposeA || transposeB)) {
    const outSize = m0 * n0;
    const direct = (transposeA ? size(a.shape) : 0) + (transposeB ? size(b.shape) : 0);
    const flipped = (transposeA ? 0 : size(a.shape)) + (transposeB ? 0 : size(b.shape)) + outSize;
    if (flipped < direct) {
      const bt = transposeB ? b : swapLast(b); // op(B)^T
      const at = transposeA ? a : swapLast(a); // op(A)^T
      const [p, q] = bt.shape.slice(-2) as [number, number];
      const r = at.shape.at(-1)!;
      const ct = matMul({ inputs: { a: view(bt, [1, p, q]), b: view(at, [1, q, r]) }, backend, attrs: { transposeA: false, transposeB: false } });
      const c = transpose({ inputs: { x: ct }, backend, attrs: { perm: [0, 2, 1] } });
      backend.disposeData(ct.dataId);
      for (const t of temps) backend.disposeData(t.dataId);
      return view(c, [...outBatchShape, r, p]);
    }
  }
  if (transposeA) a = swapLast(a);
  if (transposeB) b = swapLast(b);

  const [m, k] = a.shape.slice(-2) as [number, number];
  const n = b.shape[b.shape.length - 1]!;
  if (k === 0) {
    // a sum of nothing: XNNPACK would leave the output as it found the memory
    for (const t of temps) backend.disposeData(t.dataId);
    const z = backend.makeOutput([...outBatchShape, m, n], 'float32');
    backend.typedArrayFromHeap(z).fill(0);
    return z;
  }
  const nn = { transposeA: false, transposeB: false };

  let out: tf.TensorInfo;
  try {
    if (pairs.length === 1 || layout === 'shared-b') {
      // One product: [batch * m, k] x [k, n].
      const r = matMul({ inputs: { a: view(a, [1, pairs.length * m, k]), b: view(b, [1, k, n]) }, backend, attrs: nn });
      out = view(r, [...outBatchShape, m, n]);
    } else {
      out = backend.makeOutput([...outBatchShape, m, n], 'float32');
      pairs.forEach(([i, j], o) => {
        // Fresh operand tensors for every product: XNNPACK caches the packed right-hand
        // operand by tensor id, so refilling one buffer would reuse the first product's.
        const ai = backend.makeOutput([1, m, k], 'float32');
        const bi = backend.makeOutput([1, k, n], 'float32');
        // Views after allocating: an allocation can grow (and detach) the heap.
        backend.typedArrayFromHeap(ai).set(backend.typedArrayFromHeap(a).subarray(i * m * k, (i + 1) * m * k));
        backend.typedArrayFromHeap(bi).set(backend.typedArrayFromHeap(b).subarray(j * k * n, (j + 1) * k * n));
        const ri = matMul({ inputs: { a: ai, b: bi }, backend, attrs: nn });
        backend.typedArrayFromHeap(out).set(backend.typedArrayFromHeap(ri), o * m * n);
        backend.disposeData(ai.dataId);
        backend.disposeData(bi.dataId);
        backend.disposeData(ri.dataId);
      });
    }
  } finally {
    for (const t of temps) backend.disposeData(t.dataId);
  }
  return out;
}

/**
 * Chooses wasm's BatchMatMul: `fast` (the default once the trainer starts wasm) or `stock`
 * (tfjs's own, for side-by-side benchmarks). The stock kernel stays in use underneath the
 * fast one.
 */
export function setWasmMatMul(kind: 'fast' | 'stock'): void {
  useKernel({ kernelName: 'BatchMatMul', backendName: 'wasm', kernelFunc: fastBatchMatMulWasm as unknown as tf.KernelFunc }, kind);
}
