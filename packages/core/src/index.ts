export * from './errors.js';
export * from './registry.js';
export * from './rng.js';
