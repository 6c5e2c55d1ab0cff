import type { BackendPlugin } from '../registry.js';
import { registerWasmTrainingKernels } from './kernels.js';
import { setNativeProducts } from './products.js';

export * from './kernels.js';
export * from './products.js';
export * from './native-blas.js';
export { fastBatchMatMulWasm, setWasmMatMul } from './kernels/BatchMatMul.js';
export { castWasm } from './kernels/Cast.js';
export { equalWasm } from './kernels/Equal.js';
export { expWasm } from './kernels/Exp.js';
export { identityWasm } from './kernels/Identity.js';
export { adamWasm } from './kernels/PrimerAdam.js';
export { normalizeGradWasm, normalizeWasm } from './kernels/PrimerNormalize.js';
export { causalSoftmaxGradWasm, causalSoftmaxWasm } from './kernels/PrimerCausalSoftmax.js';
export { depthwiseConvGradWasm, depthwiseConvWasm } from './kernels/PrimerCausalDepthwiseConv.js';
export { softmaxCrossEntropyWasm } from './kernels/PrimerSoftmaxCrossEntropy.js';
export { gatherV2Wasm } from './kernels/GatherV2.js';
export { splitVWasm } from './kernels/SplitV.js';
export { sumWasm } from './kernels/Sum.js';
export { transposeWasm } from './kernels/Transpose.js';
export { unsortedSegmentSumWasm } from './kernels/UnsortedSegmentSum.js';

/** The wasm heap is 32-bit: 4 GiB at most, less what tfjs itself holds. */
const WASM_MEMORY_LIMIT = 3.5 * 2 ** 30;

/**
 * `@tensorflow/tfjs-backend-wasm` with a choice of kernels: `fast` (ours) with the products on
 * the system's BLAS when `native` and it loads, else on XNNPACK; or `stock` (tfjs's own, plus
 * the training kernels stock wasm lacks).
 */
export function wasmBackend(kernels: 'fast' | 'stock', native: boolean, description: string): BackendPlugin {
  return {
    specificationVersion: 1,
    description,
    async activate(tf) {
      await import('@tensorflow/tfjs-backend-wasm');
      registerWasmTrainingKernels({ fast: kernels === 'fast' });
      let products = kernels === 'stock' ? 'XNNPACK (wasm, stock kernels)' : 'XNNPACK (wasm)';
      if (kernels === 'fast' && native) {
        // the system's BLAS for the products, when it is here (PRIMER_BLAS=off keeps them on wasm)
        const n = setNativeProducts(true);
        // the kernels OpenBLAS runs are part of the hardware a time budget depends on (SSE3 ones are 3x slower than AVX-512's)
        products = n.on ? `native BLAS (${n.library}${n.core ? `, ${n.core} kernels` : ''})` : `XNNPACK (wasm): native BLAS off, ${n.reason}`;
      } else setNativeProducts(false);
      return (await tf.setBackend('wasm')) ? { ok: true, products } : { ok: false, reason: 'the wasm backend did not start' };
    },
    memoryLimit: () => WASM_MEMORY_LIMIT,
  };
}
