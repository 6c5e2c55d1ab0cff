export * from './backends.js';
export * from './budget.js';
export * from './checkpoint.js';
export * from './optimizers.js';
export * from './train.js';
export * from './wasm-kernels.js';
export * from './experiment.js';
export * from './speedup.js';
