import * as tf from '@tensorflow/tfjs';
import { stockKernel, type WasmBackend } from '../heap.js';
import { nativeAddon } from '../products.js';

/**
 * Sum over leading axes of a float32 tensor (every bias, scale and shift gradient: [batch,
 * seq, w] -> [w]) as one pass that adds each row into the output, in double precision. Stock
 * wasm transposes the reduced axes to the end first (1.5 ms for [16, 64, 512]); in the native
 * addon when it is on. Other reductions stay stock.
 */
export function sumWasm(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const backend = args.backend as WasmBackend;
  const x = args.inputs.x!;
  const axes = tf.util.parseAxisParam(args.attrs!.axis as number | number[], x.shape).sort((a, b) => a - b);
  const leading = axes.length > 0 && axes.length < x.shape.length && axes.every((a, i) => a === i);
  if (!leading || x.dtype !== 'float32') return stockKernel('Sum')(args as never) as tf.TensorInfo;
  const kept = x.shape.slice(axes.length);
  const inner = tf.util.sizeFromShape(kept);
  const outer = tf.util.sizeFromShape(x.shape.slice(0, axes.length));
  const out = backend.makeOutput(args.attrs!.keepDims ? [...axes.map(() => 1), ...kept] : kept, 'float32');
  const X = backend.typedArrayFromHeap(x) as Float32Array;
  const O = backend.typedArrayFromHeap(out) as Float32Array;
  const native = nativeAddon();
  if (native && X.length > 0) {
    native.colsum(X.buffer, X.byteOffset / 4, O.byteOffset / 4, outer, inner);
    return out;
  }
  const acc = new Float64Array(inner);
  for (let r = 0; r < outer; r++) {
    const o = r * inner;
    for (let j = 0; j < inner; j++) acc[j] = acc[j]! + X[o + j]!;
  }
  O.set(acc);
  return out;
}
