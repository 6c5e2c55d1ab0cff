import * as tf from '@tensorflow/tfjs';
import { stockKernel, type WasmBackend } from '../heap.js';

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
