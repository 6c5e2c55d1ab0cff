import * as tf from '@tensorflow/tfjs';

/** The parts of the wasm backend's API our kernels use. */
export interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): tf.TypedArray;
  incRef(dataId: tf.DataId): void;
  disposeData(dataId: object): boolean;
}

/** A kernel function as our wrappers call one another's. */
export type Kernel = (args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }) => tf.TensorInfo;

/** The stock wasm kernels ours replace, kept when ours are registered (see `setWasmKernels`). */
export const stockConfigs = new Map<string, tf.KernelConfig>();

/** The stock wasm kernel our replacement of `name` falls back to. */
export const stockKernel = (name: string): tf.KernelFunc => stockConfigs.get(name)!.kernelFunc;

/** Keeps the stock kernel registered under `name` now (once), so a replacement can fall back to it. */
export function keepStock(name: string): tf.KernelConfig {
  if (!stockConfigs.has(name)) {
    const current = tf.getKernel(name, 'wasm');
    if (!current) throw new Error('the wasm backend is not registered');
    stockConfigs.set(name, current);
  }
  return stockConfigs.get(name)!;
}
