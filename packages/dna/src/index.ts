export * from './types.js';
export * from './errors.js';
export * from './schema.js';
export * from './analyze.js';
export * from './validate.js';
export * from './canonical.js';
export * from './print.js';
export * from './mutate.js';
