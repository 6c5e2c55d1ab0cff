import * as tf from '@tensorflow/tfjs';
import { FUSED_CAUSAL_SOFTMAX, FUSED_CAUSAL_SOFTMAX_GRAD, FUSED_CROSS_ENTROPY, FUSED_NORMALIZE, FUSED_NORMALIZE_GRAD } from '@primer-search/compiler';
import { FUSED_CAUSAL_MASK, FUSED_DEPTHWISE_CONV, FUSED_DEPTHWISE_CONV_GRAD } from '@primer-search/primitives';
import { FUSED_ADAM, FUSED_GLOBAL_NORM } from '../../optimizers.js';
import { useKernel } from './heap.js';
import { adamWasm } from './kernels/PrimerAdam.js';
import { globalNormWasm } from './kernels/PrimerGlobalNorm.js';
import { normalizeGradWasm, normalizeWasm } from './kernels/PrimerNormalize.js';
import { setWasmMatMul } from './kernels/BatchMatMul.js';
import { castWasm } from './kernels/Cast.js';
import { equalWasm } from './kernels/Equal.js';
import { expWasm } from './kernels/Exp.js';
import { identityWasm } from './kernels/Identity.js';
import { causalMaskWasm } from './kernels/PrimerCausalMask.js';
import { causalSoftmaxGradWasm, causalSoftmaxWasm } from './kernels/PrimerCausalSoftmax.js';
import { depthwiseConvGradWasm, depthwiseConvWasm } from './kernels/PrimerCausalDepthwiseConv.js';
import { softmaxCrossEntropyWasm } from './kernels/PrimerSoftmaxCrossEntropy.js';
import { gatherV2Wasm } from './kernels/GatherV2.js';
import { splitVWasm } from './kernels/SplitV.js';
import { sumWasm } from './kernels/Sum.js';
import { transposeWasm } from './kernels/Transpose.js';
import { unsortedSegmentSumWasm } from './kernels/UnsortedSegmentSum.js';
import { setNativeProducts } from './products.js';

const kernels: tf.KernelConfig[] = [
  { kernelName: 'UnsortedSegmentSum', backendName: 'wasm', kernelFunc: unsortedSegmentSumWasm as unknown as tf.KernelFunc },
];

/** Kernels that replace stock wasm ones (registered over them). */
const replacements: tf.KernelConfig[] = [
  { kernelName: 'Equal', backendName: 'wasm', kernelFunc: equalWasm as unknown as tf.KernelFunc },
  { kernelName: 'Transpose', backendName: 'wasm', kernelFunc: transposeWasm as unknown as tf.KernelFunc },
  { kernelName: 'SplitV', backendName: 'wasm', kernelFunc: splitVWasm as unknown as tf.KernelFunc },
  { kernelName: 'Exp', backendName: 'wasm', kernelFunc: expWasm as unknown as tf.KernelFunc },
  { kernelName: 'Identity', backendName: 'wasm', kernelFunc: identityWasm as unknown as tf.KernelFunc },
  { kernelName: 'Cast', backendName: 'wasm', kernelFunc: castWasm as unknown as tf.KernelFunc },
  { kernelName: 'GatherV2', backendName: 'wasm', kernelFunc: gatherV2Wasm as unknown as tf.KernelFunc },
  { kernelName: 'Sum', backendName: 'wasm', kernelFunc: sumWasm as unknown as tf.KernelFunc },
];

/** Kernels of our own that stock wasm does not have, on while `fast`. */
const additions: tf.KernelConfig[] = [
  { kernelName: FUSED_CROSS_ENTROPY, backendName: 'wasm', kernelFunc: softmaxCrossEntropyWasm as unknown as tf.KernelFunc },
  { kernelName: FUSED_DEPTHWISE_CONV, backendName: 'wasm', kernelFunc: depthwiseConvWasm as unknown as tf.KernelFunc },
  { kernelName: FUSED_DEPTHWISE_CONV_GRAD, backendName: 'wasm', kernelFunc: depthwiseConvGradWasm as unknown as tf.KernelFunc },
  { kernelName: FUSED_CAUSAL_SOFTMAX, backendName: 'wasm', kernelFunc: causalSoftmaxWasm as unknown as tf.KernelFunc },
  { kernelName: FUSED_CAUSAL_SOFTMAX_GRAD, backendName: 'wasm', kernelFunc: causalSoftmaxGradWasm as unknown as tf.KernelFunc },
  { kernelName: FUSED_NORMALIZE, backendName: 'wasm', kernelFunc: normalizeWasm as unknown as tf.KernelFunc },
  { kernelName: FUSED_NORMALIZE_GRAD, backendName: 'wasm', kernelFunc: normalizeGradWasm as unknown as tf.KernelFunc },
  { kernelName: FUSED_ADAM, backendName: 'wasm', kernelFunc: adamWasm as unknown as tf.KernelFunc },
  { kernelName: FUSED_CAUSAL_MASK, backendName: 'wasm', kernelFunc: causalMaskWasm as unknown as tf.KernelFunc },
  { kernelName: FUSED_GLOBAL_NORM, backendName: 'wasm', kernelFunc: globalNormWasm as unknown as tf.KernelFunc },
];

/**
 * Chooses between our wasm kernels (`fast`: the replacements above, BatchMatMul, and the fused
 * kernels stock wasm does not have) and tfjs's own (`stock`, with the native products off),
 * e.g. to benchmark them side by side. The missing training kernels (UnsortedSegmentSum) stay
 * registered either way.
 */
export function setWasmKernels(kind: 'fast' | 'stock'): void {
  for (const k of replacements) useKernel(k, kind);
  setWasmMatMul(kind);
  // stock means stock: no native products, no fused kernels either
  if (kind === 'stock') setNativeProducts(false);
  for (const k of additions) {
    const there = tf.getKernel(k.kernelName, k.backendName);
    if (kind === 'stock' && there) tf.unregisterKernel(k.kernelName, k.backendName);
    if (kind === 'fast' && !there) tf.registerKernel(k);
  }
}

/**
 * Registers the training kernels stock wasm lacks and (unless `fast` is false) our faster
 * kernels. Safe to call more than once.
 */
export function registerWasmTrainingKernels(options: { fast?: boolean } = {}): void {
  for (const k of kernels) {
    if (!tf.getKernel(k.kernelName, k.backendName)) tf.registerKernel(k);
  }
  setWasmKernels(options.fast === false ? 'stock' : 'fast');
}
