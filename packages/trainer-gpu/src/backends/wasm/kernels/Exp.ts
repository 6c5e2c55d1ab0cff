import * as tf from '@tensorflow/tfjs';
import { stockKernel, type WasmBackend } from '../heap.js';
import { nativeAddon } from '../products.js';

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
