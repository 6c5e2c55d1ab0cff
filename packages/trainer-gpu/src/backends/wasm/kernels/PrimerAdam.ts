import * as tf from '@tensorflow/tfjs';
import type { WasmBackend } from '../heap.js';
import { nativeAddon } from '../products.js';

/**
 * One Adam update of one variable in one pass (see FUSED_ADAM): from the variable `v`, its
 * moments `m` and `s` and its gradient `g` (times `gradScale` when it is not 1), the new variable
 * and moments, exactly the composite's formula: m' = b1 m + (1 - b1) g; s' = b2 s + (1 - b2) g^2;
 * v' = v - lr (m' / c1) / (sqrt(s' / c2) + eps). One kernel call instead of a dozen; in the
 * native addon when it is on.
 */
export function adamWasm(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo[] {
  const backend = args.backend as WasmBackend;
  const { v, m, s, g } = args.inputs as Record<'v' | 'm' | 's' | 'g', tf.TensorInfo>;
  const a = args.attrs as Record<'beta1' | 'beta2' | 'epsilon' | 'learningRate' | 'correction1' | 'correction2', number> & { gradScale?: number };
  const scale = a.gradScale ?? 1;
  const outs = [backend.makeOutput([...v.shape], 'float32'), backend.makeOutput([...v.shape], 'float32'), backend.makeOutput([...v.shape], 'float32')] as const;
  // views after allocating: an allocation can grow (and detach) the heap
  const [V, M, S, G] = [v, m, s, g].map((t) => backend.typedArrayFromHeap(t) as Float32Array) as [Float32Array, Float32Array, Float32Array, Float32Array];
  const [V2, M2, S2] = outs.map((t) => backend.typedArrayFromHeap(t) as Float32Array) as [Float32Array, Float32Array, Float32Array];
  const native = nativeAddon();
  if (native && V.length > 0) {
    const at = (x: Float32Array) => x.byteOffset / 4;
    native.adam(V.buffer, at(V), at(M), at(S), at(G), at(V2), at(M2), at(S2), V.length, a.beta1, a.beta2, a.epsilon, a.learningRate, a.correction1, a.correction2, scale);
    return [...outs];
  }
  const f = Math.fround;
  const b1 = f(a.beta1), b2 = f(a.beta2), ob1 = f(1 - a.beta1), ob2 = f(1 - a.beta2);
  const c1 = f(a.correction1), c2 = f(a.correction2), eps = f(a.epsilon), lr = f(a.learningRate), k = f(scale);
  for (let i = 0; i < V.length; i++) {
    // the composite multiplies first, in float32 (a scale of 1 leaves g exact either way)
    const gi = k === 1 ? G[i]! : f(G[i]! * k);
    const mi = f(f(M[i]! * b1) + f(gi * ob1));
    const si = f(f(S[i]! * b2) + f(f(gi * gi) * ob2));
    M2[i] = mi;
    S2[i] = si;
    V2[i] = V[i]! - f(f(f(mi / c1) / f(f(Math.sqrt(f(si / c2))) + eps)) * lr);
  }
  return [...outs];
}
