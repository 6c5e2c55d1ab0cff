import * as tf from '@tensorflow/tfjs';
import type { WasmBackend } from '../heap.js';

/**
 * The causal product's mask (see FUSED_CAUSAL_MASK) of `[batch, t, t]` float32 scores in one
 * pass: each row's first t + 1 entries copied, the rest 0 (forward) or x * 0 (the gradient, so
 * a NaN or an infinity there stays NaN, as the composite's dy * cast(mask) gives).
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
  for (let r = 0; r < batch * t; r++) {
    const row = r * t;
    const open = (r % t) + 1;
    O.set(X.subarray(row, row + open), row);
    if (grad) for (let j = row + open; j < row + t; j++) O[j] = X[j]! * 0;
    else O.fill(0, row + open, row + t);
  }
  return out;
}
