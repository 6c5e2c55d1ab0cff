import { PrimerError, quote } from '@primer-search/core';

/**
 * How long a model trains: wall-clock seconds of training steps (as in the paper), steps,
 * tokens, or training FLOPs. A FLOP budget is counted from the compiler's estimate of a training
 * step (forward + backward, 3x the forward FLOPs per token, times the tokens of a step): like a
 * time budget, a program whose steps cost more gets fewer of them, but the number of steps is
 * the same on every machine and every run.
 */
export type Budget = { kind: 'seconds'; seconds: number } | { kind: 'steps'; steps: number } | { kind: 'tokens'; tokens: number } | { kind: 'flops'; flops: number };

const UNITS: Record<string, (n: number) => Budget> = {
  s: (n) => ({ kind: 'seconds', seconds: n }),
  m: (n) => ({ kind: 'seconds', seconds: n * 60 }),
  h: (n) => ({ kind: 'seconds', seconds: n * 3600 }),
  steps: (n) => ({ kind: 'steps', steps: Math.round(n) }),
  tokens: (n) => ({ kind: 'tokens', tokens: Math.round(n) }),
  ktokens: (n) => ({ kind: 'tokens', tokens: Math.round(n * 1e3) }),
  mtokens: (n) => ({ kind: 'tokens', tokens: Math.round(n * 1e6) }),
  flops: (n) => ({ kind: 'flops', flops: n }),
  gflops: (n) => ({ kind: 'flops', flops: n * 1e9 }),
  tflops: (n) => ({ kind: 'flops', flops: n * 1e12 }),
  pflops: (n) => ({ kind: 'flops', flops: n * 1e15 }),
};
const ALIASES: Record<string, string> = { sec: 's', secs: 's', seconds: 's', min: 'm', mins: 'm', minutes: 'm', hours: 'h', step: 'steps', token: 'tokens', ktoken: 'ktokens', mtoken: 'mtokens' };

/** "90s", "2m", "1.5h", "500steps", "500 steps", "200ktokens", "1mtokens", "2e13flops", "20tflops". */
export function parseBudget(text: string): Budget {
  const m = /^\s*(\d+(?:\.\d+)?(?:e[+-]?\d+)?)\s*([a-z]+)\s*$/i.exec(text);
  const unit = m ? (ALIASES[m[2]!.toLowerCase()] ?? m[2]!.toLowerCase()) : '';
  const make = UNITS[unit];
  const n = m ? Number(m[1]) : NaN;
  if (!make || !(n > 0)) {
    throw new PrimerError('BAD_BUDGET', `cannot read the budget ${quote(text)}: write e.g. 90s, 2m, 1h, 500steps, 200ktokens or 2e13flops`);
  }
  const budget = make(n);
  if ((budget.kind === 'steps' && budget.steps < 1) || (budget.kind === 'tokens' && budget.tokens < 1)) {
    throw new PrimerError('BAD_BUDGET', `the budget ${quote(text)} is less than one step`);
  }
  return budget;
}

export function formatBudget(b: Budget): string {
  if (b.kind === 'flops') return `${b.flops.toExponential(3).replace(/\.?0+e/, 'e').replace('e+', 'e')} FLOPs`;
  return b.kind === 'seconds' ? `${b.seconds}s` : b.kind === 'steps' ? `${b.steps} steps` : `${b.tokens} tokens`;
}

/**
 * How much of the budget is used, 0..1. `flops`: the training FLOPs spent so far (needed for a
 * FLOP budget: the tokens trained times the model's training FLOPs per token).
 */
export function budgetProgress(b: Budget, used: { seconds: number; steps: number; tokens: number; flops?: number }): number {
  if (b.kind === 'flops' && used.flops === undefined) throw new PrimerError('BAD_BUDGET', 'a FLOP budget needs the FLOPs spent (the model\'s training FLOPs per token times the tokens)');
  const f =
    b.kind === 'seconds' ? used.seconds / b.seconds : b.kind === 'steps' ? used.steps / b.steps : b.kind === 'tokens' ? used.tokens / b.tokens : used.flops! / b.flops;
  return Math.min(1, f);
}

/** The budget times `factor` (whole steps and tokens). */
export function scaleBudget(b: Budget, factor: number): Budget {
  if (b.kind === 'seconds') return { kind: 'seconds', seconds: b.seconds * factor };
  if (b.kind === 'steps') return { kind: 'steps', steps: Math.max(1, Math.round(b.steps * factor)) };
  if (b.kind === 'tokens') return { kind: 'tokens', tokens: Math.max(1, Math.round(b.tokens * factor)) };
  return { kind: 'flops', flops: b.flops * factor };
}
