export * from './strategy.js';
export * from './registry.js';
export { evolution, pareto } from './evolution.js';
export * from './pareto.js';
export { random } from './random.js';
export { hillClimb } from './hill-climb.js';
