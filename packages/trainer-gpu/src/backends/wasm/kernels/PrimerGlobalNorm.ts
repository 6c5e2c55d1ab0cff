import * as tf from '@tensorflow/tfjs';
import type { WasmBackend } from '../heap.js';
import { nativeAddon } from '../products.js';

/**
 * The global norm of every input (see FUSED_GLOBAL_NORM): sqrt of the sum of their squares,
 * accumulated in double (infinite where the sum passes float32's range, as the composite's is), one pass per tensor and one kernel call for all of them (the
 * composite makes two calls a variable and a sum); in the native addon when it is on.
 */
export function globalNormWasm(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const backend = args.backend as WasmBackend;
  const inputs = Object.values(args.inputs) as tf.TensorInfo[];
  const out = backend.makeOutput([], 'float32');
  // views after allocating: an allocation can grow (and detach) the heap
  const native = nativeAddon();
  let total = 0;
  for (const t of inputs) {
    if (t.dtype !== 'float32') throw new Error(`PrimerGlobalNorm takes float32 tensors, got ${t.dtype}`);
    const x = backend.typedArrayFromHeap(t) as Float32Array;
    if (x.length === 0) continue;
    if (native) {
      total += native.sumsq(x.buffer, x.byteOffset / 4, x.length);
      continue;
    }
    let acc = 0;
    for (let i = 0; i < x.length; i++) acc += x[i]! * x[i]!;
    total += acc;
  }
  // a sum of squares past float32's range is infinite, as the composite's float32 sum makes it
  // (so an overflowing gradient still reads as a diverged run, not as a finite norm to clip by)
  (backend.typedArrayFromHeap(out) as Float32Array)[0] = Math.fround(total) === Infinity ? Infinity : Math.sqrt(total);
  return out;
}
