import * as tf from '@tensorflow/tfjs';
import { stockKernel } from '../heap.js';
import { identityWasm } from './Identity.js';

/** Cast to the dtype a tensor already has is an Identity (stock wasm copies); other casts stay stock. */
export function castWasm(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const x = args.inputs.x!;
  if (args.attrs?.dtype !== x.dtype || x.dtype === 'string') return stockKernel('Cast')(args as never) as tf.TensorInfo;
  return identityWasm(args);
}
