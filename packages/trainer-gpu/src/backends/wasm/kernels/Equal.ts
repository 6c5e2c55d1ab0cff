import * as tf from '@tensorflow/tfjs';
import type { WasmBackend } from '../heap.js';

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
