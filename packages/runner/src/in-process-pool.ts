import type { EvaluationJob, JobOutcome } from '@primer-search/study';
import { evaluateCandidate } from './job.js';
import type { EvaluationPool, RunJobOptions } from './pool.js';

/** Trains in this process, one candidate at a time (for tests and debugging; no time limit, a crash is this process's). */
export class InProcessPool implements EvaluationPool {
  readonly size = 1;
  run(job: EvaluationJob, options: RunJobOptions): Promise<JobOutcome> {
    return evaluateCandidate(job, options.onProgress);
  }
  async close(): Promise<void> {}
}
