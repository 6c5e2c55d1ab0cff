export * from './strategy.js';
export * from './registry.js';
export { evolution } from './evolution.js';
export { random } from './random.js';
export { hillClimb } from './hill-climb.js';
