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

/** The job under way: how to stop it, and when it has stopped. */
let current: { stop: AbortController; done: Promise<unknown> } | undefined;

/** Ends this process by SIGTERM's own default, so the pool sees a stop from outside, never a result or a crash. */
function endBySignal(): void {
  process.removeAllListeners('SIGTERM');
  process.kill(process.pid, 'SIGTERM');
}

if (process.send) {
  process.on('message', (m: ToWorker) => {
    if (m?.type !== 'job') return;
    let last = 0;
    const stop = new AbortController();
    const done = evaluateCandidate(
      m.job,
      (p) => {
        const now = Date.now();
        if (now - last >= 500 || p.progress >= 1) {
          last = now;
          send({ type: 'progress', progress: p });
        }
      },
      stop.signal,
    )
      .catch((e) => outcomeOfError(m.job, e))
      .then((result) => {
        current = undefined;
        // stopped by SIGTERM: what the training ended as is no result (the process ends by the signal)
        if (stop.signal.aborted) return;
        // after running out of memory the WebAssembly heap (grown, or aborted) is not fit for the next candidate: this process ends once the result is sent, and a fresh one takes the next
        const spent = result.status === 'failed' && (result.reason ?? '').startsWith('out of memory');
        process.send?.({ type: 'result', result, ...(spent ? { retiring: true } : {}) } satisfies FromWorker, () => spent && process.exit(0));
      });
    current = { stop, done };
  });
  // SIGTERM (the pool closing, a service manager stopping): the training stops between two steps,
  // a run with a checkpoint saves it (so it continues from here, not from its last periodic one),
  // then the process ends by the signal; at most ten seconds are given to that
  process.on('SIGTERM', () => {
    if (!current) return endBySignal();
    current.stop.abort();
    void current.done.finally(endBySignal);
    setTimeout(endBySignal, 10_000).unref();
  });
  // the parent going away ends the worker
  process.on('disconnect', () => process.exit(0));
  // Ctrl-C in a terminal reaches the whole process group: the parent decides what stops
  // (it ends its workers itself), so a running candidate is not recorded as crashed
  process.on('SIGINT', () => {});
  send({ type: 'ready' });
}
