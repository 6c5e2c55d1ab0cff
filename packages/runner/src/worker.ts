/**
 * A worker process of the local evaluation pool: receives jobs over IPC, trains each with
 * `evaluateCandidate`, and sends progress and the result back. One job at a time; the
 * process (with its initialised backend) is reused for the next.
 */
import type { EvaluationJob, JobOutcome, JobProgress } from '@primer-search/study';
import { evaluateCandidate, outcomeOfError } from './job.js';

export type ToWorker = { type: 'job'; job: EvaluationJob };
/** `retiring`: this process ends after this result (its memory is spent), so the pool gives it no other job. */
export type FromWorker = { type: 'ready' } | { type: 'progress'; progress: JobProgress } | { type: 'result'; result: JobOutcome; retiring?: boolean };

const send = (m: FromWorker) => process.send?.(m);

if (process.send) {
  process.on('message', (m: ToWorker) => {
    if (m?.type !== 'job') return;
    let last = 0;
    evaluateCandidate(m.job, (p) => {
      const now = Date.now();
      if (now - last >= 500 || p.progress >= 1) {
        last = now;
        send({ type: 'progress', progress: p });
      }
    })
      .catch((e) => outcomeOfError(m.job, e))
      .then((result) => {
        // after running out of memory the WebAssembly heap (grown, or aborted) is not fit for the next candidate: this process ends once the result is sent, and a fresh one takes the next
        const spent = result.status === 'failed' && (result.reason ?? '').startsWith('out of memory');
        process.send?.({ type: 'result', result, ...(spent ? { retiring: true } : {}) } satisfies FromWorker, () => spent && process.exit(0));
      });
  });
  // the parent going away ends the worker
  process.on('disconnect', () => process.exit(0));
  // Ctrl-C in a terminal reaches the whole process group: the parent decides what stops
  // (it ends its workers itself), so a running candidate is not recorded as crashed
  process.on('SIGINT', () => {});
  send({ type: 'ready' });
}
