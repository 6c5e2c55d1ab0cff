export * from './budget.js';
export * from './settings.js';
export * from './config.js';
export * from './records.js';
export * from './jobs.js';
export * from './environment.js';
export * from './stats.js';
