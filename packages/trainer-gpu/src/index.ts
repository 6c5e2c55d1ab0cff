export * from './backends/index.js';
export * from './checkpoint.js';
export * from './optimizers.js';
export * from './train.js';
export * from './experiment.js';
export { secondsToReach, speedup, type CurvePoint, type SpeedupAxis } from '@primer-search/study';
export * from './data-parallel.js';
// data preparation lives in @primer-search/datasets, re-exported for existing imports
export { defaultCachePath, prepareData, type DataSettings, type PreparedData } from '@primer-search/datasets';
// the run vocabulary lives in @primer-search/study (no tfjs); re-exported for existing imports
export {
  BACKENDS,
  DEFAULT_RUN_SETTINGS,
  DEFAULT_TRAIN_CONFIG,
  budgetProgress,
  formatBudget,
  parseBudget,
  type BackendChoice,
  type Budget,
  type OptimizerName,
  type RunSettings,
  type TrainConfig,
} from '@primer-search/study';
export * from './ablation.js';
export * from './compiled-step.js';
