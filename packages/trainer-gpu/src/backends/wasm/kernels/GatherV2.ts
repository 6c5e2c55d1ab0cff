import * as tf from '@tensorflow/tfjs';
import { stockKernel, type WasmBackend } from '../heap.js';

/**
 * GatherV2 along axis 0 (every embedding lookup) as row copies over the heap; stock wasm took
 * about 4 ms to gather 1,024 rows of 128 floats. Other axes, batch dimensions and dtypes stay
 * stock. Out-of-range indices are refused as stock refuses them.
 */
export function gatherV2Wasm(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const backend = args.backend as WasmBackend;
  const { x, indices } = args.inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
  const axis = tf.util.parseAxisParam(args.attrs!.axis as number, x.shape)[0];
  const batchDims = Number(args.attrs!.batchDims ?? 0);
  if (axis !== 0 || batchDims !== 0 || indices.dtype !== 'int32' || (x.dtype !== 'float32' && x.dtype !== 'int32') || x.shape.length === 0) {
    return stockKernel('GatherV2')(args as never) as tf.TensorInfo;
  }
  const rows = x.shape[0]!;
  const row = tf.util.sizeFromShape(x.shape.slice(1));
  const out = backend.makeOutput([...indices.shape, ...x.shape.slice(1)], x.dtype);
  const X = backend.typedArrayFromHeap(x);
  const I = backend.typedArrayFromHeap(indices);
  const O = backend.typedArrayFromHeap(out);
  for (let i = 0; i < I.length; i++) {
    const k = I[i]!;
    if (!(k >= 0 && k <= rows - 1)) throw new Error(`GatherV2: the index value ${k} is not in [0, ${rows - 1}]`);
    O.set(X.subarray(k * row, (k + 1) * row), i * row);
  }
  return out;
}
