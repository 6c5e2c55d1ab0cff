export * from './baselines.js';
export * from './blocks.js';
export * from './references/index.js';
