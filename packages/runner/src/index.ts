export * from './controller.js';
// the worker side: trains candidates (loads TensorFlow.js)
export * from './job.js';
export * from './in-process-pool.js';
