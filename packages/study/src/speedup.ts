/** A point of a validation curve, as far as speedups need it. */
export interface CurvePoint {
  /** Training seconds spent when it was taken. */
  seconds: number;
  /** Training FLOPs spent when it was taken (absent in records made before FLOPs were counted). */
  flops?: number;
  /** Training steps taken when it was taken. */
  step?: number;
  /** Training tokens seen when it was taken. */
  tokens?: number;
  /** Mean next-token cross-entropy in nats. */
  loss: number;
}

/**
 * Training seconds (or steps, tokens, FLOPs: `axis`) a model needed to reach `target` validation loss, interpolated linearly
 * between its evaluations (in loss, which is log-perplexity), starting from an untrained
 * point at 0 s with loss `start`. Undefined if it never got there.
 */
export function secondsToReach(evaluations: CurvePoint[], target: number, start: number, axis: SpeedupAxis = 'seconds'): number | undefined {
  const at = (e: CurvePoint) => (axis === 'flops' ? (e.flops ?? NaN) : axis === 'steps' ? (e.step ?? NaN) : axis === 'tokens' ? (e.tokens ?? NaN) : e.seconds);
  let prev = { x: 0, loss: start };
  for (const e of evaluations) {
    if (!Number.isFinite(e.loss) || !Number.isFinite(at(e))) return undefined;
    if (e.loss <= target) {
      if (prev.loss <= target) return prev.x;
      return prev.x + ((at(e) - prev.x) * (prev.loss - target)) / (prev.loss - e.loss);
    }
    prev = { x: at(e), loss: e.loss };
  }
  return undefined;
}

/**
 * What a speedup is measured in: the budget's own measure. Training seconds (the paper's, under a
 * time budget: they depend on the machine and its load), or steps, tokens or training FLOPs (the
 * same on every machine).
 */
export type SpeedupAxis = 'seconds' | 'steps' | 'tokens' | 'flops';

/**
 * The paper's speedup: (time the baseline needed to reach its final quality) / (time this
 * model needed to reach that same quality). Undefined when the model never reached it.
 */
export function speedup(baseline: CurvePoint[], model: CurvePoint[], start: number, axis: SpeedupAxis = 'seconds'): number | undefined {
  const final = baseline[baseline.length - 1];
  if (!final || !Number.isFinite(final.loss)) return undefined;
  const t = secondsToReach(model, final.loss, start, axis);
  const tBase = secondsToReach(baseline, final.loss, start, axis);
  return t === undefined || tBase === undefined || t === 0 ? undefined : tBase / t;
}
