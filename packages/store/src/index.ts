export * from './types.js';
export * from './sqlite.js';
