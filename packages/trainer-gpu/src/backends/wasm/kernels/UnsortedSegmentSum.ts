import * as tf from '@tensorflow/tfjs';
import type { WasmBackend } from '../heap.js';

/**
 * UnsortedSegmentSum (the gradient of `gather`, so of every embedding lookup), which stock
 * tfjs-backend-wasm 4.22 lacks: out[s] = sum of x[i] over i with segmentIds[i] = s; ids
 * outside [0, numSegments) are dropped, as on the other backends.
 */
export function unsortedSegmentSumWasm(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const backend = args.backend as WasmBackend;
  const x = args.inputs.x!;
  const ids = args.inputs.segmentIds!;
  const numSegments = Number(args.attrs!.numSegments);
  const idRank = ids.shape.length;
  const innerShape = x.shape.slice(idRank);
  const inner = innerShape.reduce((a, b) => a * b, 1);
  const out = backend.makeOutput([numSegments, ...innerShape], x.dtype);
  // Views only after makeOutput: an allocation can grow the heap and detach older views.
  const o = backend.typedArrayFromHeap(out);
  const xs = backend.typedArrayFromHeap(x);
  const segments = backend.typedArrayFromHeap(ids);
  o.fill(0); // makeOutput memory is not zeroed
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    if (s < 0 || s >= numSegments) continue;
    const from = i * inner;
    const to = s * inner;
    for (let j = 0; j < inner; j++) o[to + j] += xs[from + j]!;
  }
  return out;
}
