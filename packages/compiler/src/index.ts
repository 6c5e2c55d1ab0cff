export * from './plan.js';
export * from './block.js';
export * from './lm.js';
export * from './codegen.js';
export * from './fusion.js';
