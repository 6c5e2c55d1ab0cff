export * from './descriptor.js';
export * from './width.js';
export * from './init.js';
export * from './tensor-helpers.js';
export { CONV_WIDTHS, FUSED_DEPTHWISE_CONV, FUSED_DEPTHWISE_CONV_GRAD, depthwiseInitRows } from './ops/convolution.js';
export { ABS_ROOT_EPS, EXP_INPUT_CAP, LOG_FLOOR } from './ops/elementwise.js';
export { MASK_FILL } from './ops/sequence.js';
export * from './registry.js';
export { CODEGEN_PRELUDE } from './codegen-prelude.js';
