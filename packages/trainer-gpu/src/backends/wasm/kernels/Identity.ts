import * as tf from '@tensorflow/tfjs';
import { stockKernel, type WasmBackend } from '../heap.js';

/**
 * Identity without a copy: the output shares the input's memory and counts a reference, as
 * Reshape does on wasm and Identity does on the cpu and WebGL backends (stock wasm copies; a
 * training step calls it some 300-500 times, from gradients and scopes). Safe because no
 * kernel writes into its inputs.
 */
export function identityWasm(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const x = args.inputs.x!;
  if (x.dtype === 'string') return stockKernel('Identity')(args as never) as tf.TensorInfo;
  (args.backend as WasmBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}
