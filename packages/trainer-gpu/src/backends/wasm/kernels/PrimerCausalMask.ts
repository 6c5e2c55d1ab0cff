import * as tf from '@tensorflow/tfjs';
import type { WasmBackend } from '../heap.js';
import { nativeAddon } from '../products.js';

/**
 * The causal product's mask (see FUSED_CAUSAL_MASK) of `[batch, t, t]` float32 scores in one
 * pass: row p of each [t, t] block keeps its first p + 1 entries, the rest 0 (forward) or x * 0 (the gradient, so
 * a NaN or an infinity there stays NaN, as the composite's dy * cast(mask) gives); in the native
 * addon when it is on.
 */
export function causalMaskWasm(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const backend = args.backend as WasmBackend;
  const x = args.inputs.x!;
  const [batch, t, w] = x.shape as [number, number, number];
  if (x.shape.length !== 3 || t !== w || x.dtype !== 'float32') {
    throw new Error(`PrimerCausalMask takes float32 [batch, t, t] scores, got ${x.dtype} [${x.shape.join(', ')}]`);
  }
  const grad = Boolean(args.attrs?.grad);
  const out = backend.makeOutput([...x.shape], 'float32');
  // views after allocating: an allocation can grow (and detach) the heap
  const X = backend.typedArrayFromHeap(x) as Float32Array;
  const O = backend.typedArrayFromHeap(out) as Float32Array;
  const native = nativeAddon();
  if (native && X.length > 0) {
    native.cmask(X.buffer, X.byteOffset / 4, O.byteOffset / 4, batch, t, grad ? 1 : 0);
    return out;
  }
  // plain loops: a typed-array copy call per row costs more than its row of 64 floats
  for (let r = 0; r < batch * t; r++) {
    const row = r * t;
    const open = row + (r % t) + 1;
    const end = row + t;
    for (let j = row; j < open; j++) O[j] = X[j]!;
    if (grad) for (let j = open; j < end; j++) O[j] = X[j]! * 0;
    else for (let j = open; j < end; j++) O[j] = 0;
  }
  return out;
}
