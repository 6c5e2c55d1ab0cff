export * from './job.js';
export * from './pool.js';
export * from './search.js';
export * from './summary.js';
