import { PrimerError, quote } from '@primer-search/core';

/** How long a model trains: wall-clock seconds of training steps (as in the paper), steps, or tokens. */
export type Budget = { kind: 'seconds'; seconds: number } | { kind: 'steps'; steps: number } | { kind: 'tokens'; tokens: number };

const UNITS: Record<string, (n: number) => Budget> = {
  s: (n) => ({ kind: 'seconds', seconds: n }),
  m: (n) => ({ kind: 'seconds', seconds: n * 60 }),
  h: (n) => ({ kind: 'seconds', seconds: n * 3600 }),
  steps: (n) => ({ kind: 'steps', steps: Math.round(n) }),
  tokens: (n) => ({ kind: 'tokens', tokens: Math.round(n) }),
  ktokens: (n) => ({ kind: 'tokens', tokens: Math.round(n * 1e3) }),
  mtokens: (n) => ({ kind: 'tokens', tokens: Math.round(n * 1e6) }),
};
const ALIASES: Record<string, string> = { sec: 's', secs: 's', seconds: 's', min: 'm', mins: 'm', minutes: 'm', hours: 'h', step: 'steps', token: 'tokens', ktoken: 'ktokens', mtoken: 'mtokens' };

/** "90s", "2m", "1.5h", "500steps", "500 steps", "200ktokens", "1mtokens". */
export function parseBudget(text: string): Budget {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$/i.exec(text);
  const unit = m ? (ALIASES[m[2]!.toLowerCase()] ?? m[2]!.toLowerCase()) : '';
  const make = UNITS[unit];
  const n = m ? Number(m[1]) : NaN;
  if (!make || !(n > 0)) {
    throw new PrimerError('BAD_BUDGET', `cannot read the budget ${quote(text)}: write e.g. 90s, 2m, 1h, 500steps or 200ktokens`);
  }
  const budget = make(n);
  if ((budget.kind === 'steps' && budget.steps < 1) || (budget.kind === 'tokens' && budget.tokens < 1)) {
    throw new PrimerError('BAD_BUDGET', `the budget ${quote(text)} is less than one step`);
  }
  return budget;
}

export function formatBudget(b: Budget): string {
  return b.kind === 'seconds' ? `${b.seconds}s` : b.kind === 'steps' ? `${b.steps} steps` : `${b.tokens} tokens`;
}

/** How much of the budget is used, 0..1. */
export function budgetProgress(b: Budget, used: { seconds: number; steps: number; tokens: number }): number {
  const f = b.kind === 'seconds' ? used.seconds / b.seconds : b.kind === 'steps' ? used.steps / b.steps : used.tokens / b.tokens;
  return Math.min(1, f);
}
