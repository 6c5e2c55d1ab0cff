/**
 * The controller side of a search, without TensorFlow.js: the search loop, the study summary
 * and the local worker pool (whose workers, in their own processes, load the trainer). What
 * a process that only runs the strategy and the store imports.
 */
export * from './search.js';
export * from './summary.js';
export * from './pool.js';
export * from './queue.js';
export * from './retrain.js';
export {
  FAILURE_CATEGORIES,
  environmentFailure,
  failedResult,
  failureCategory,
  isEnvironmentFailure,
  isEquivalent,
  type EquivalentOutcome,
  type EnvironmentFailure,
  type EvaluationJob,
  type JobOutcome,
  type JobProgress,
  type JobResult,
  type StudyConfig,
} from '@primer-search/study';
