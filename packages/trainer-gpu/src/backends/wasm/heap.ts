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

/**
 * Registers our replacement `k` over the stock wasm kernel of its name (`fast`), or the stock
 * kernel back (`stock`). Ours keep the stock kernel's setup: it binds the wasm function the
 * fallbacks call.
 */
export function useKernel(k: tf.KernelConfig, kind: 'fast' | 'stock'): void {
  const stock = keepStock(k.kernelName);
  tf.unregisterKernel(k.kernelName, 'wasm');
  tf.registerKernel(kind === 'stock' ? stock : { ...k, setupFunc: stock.setupFunc });
}
