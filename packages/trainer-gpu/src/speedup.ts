import type { Evaluation } from './train.js';

/**
 * Training seconds a model needed to reach `target` validation loss, interpolated linearly
 * between its evaluations (in loss, which is log-perplexity), starting from an untrained
 * point at 0 s with loss `start`. Undefined if it never got there.
 */
export function secondsToReach(evaluations: Evaluation[], target: number, start: number): number | undefined {
  let prev = { seconds: 0, loss: start };
  for (const e of evaluations) {
    if (!Number.isFinite(e.loss)) return undefined;
    if (e.loss <= target) {
      if (prev.loss <= target) return prev.seconds;
      return prev.seconds + ((e.seconds - prev.seconds) * (prev.loss - target)) / (prev.loss - e.loss);
    }
    prev = e;
  }
  return undefined;
}

/**
 * The paper's speedup: (time the baseline needed to reach its final quality) / (time this
 * model needed to reach that same quality). Undefined when the model never reached it.
 */
export function speedup(baseline: Evaluation[], model: Evaluation[], start: number): number | undefined {
  const final = baseline[baseline.length - 1];
  if (!final || !Number.isFinite(final.loss)) return undefined;
  const t = secondsToReach(model, final.loss, start);
  const tBase = secondsToReach(baseline, final.loss, start);
  return t === undefined || tBase === undefined || t === 0 ? undefined : tBase / t;
}
