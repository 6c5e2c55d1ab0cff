export * from './types.js';
export * from './sqlite.js';
export * from './postgres.js';
export * from './open.js';
export * from './secrets.js';
export * from './schema.js';
export * from './reconnect.js';
