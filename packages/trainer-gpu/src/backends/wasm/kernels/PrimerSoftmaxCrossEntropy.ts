import * as tf from '@tensorflow/tfjs';
import type { WasmBackend } from '../heap.js';
import { nativeAddon } from '../products.js';

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
