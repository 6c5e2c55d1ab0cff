// How faithfully a cheap search's fitness predicts a longer run's (issue: search fidelity): rank
// correlations between two measurements of the same programs, with a bootstrap interval, and
// how much of the top is kept. Lower fitness (perplexity) is better throughout.
import { Rng } from '@primer-search/core';

/** Ranks 1..n of `xs`, ties given the mean of the ranks they span (as Spearman's rho needs). */
export function averageRanks(xs: number[]): number[] {
  const order = xs.map((x, i) => [x, i] as const).sort((a, b) => a[0] - b[0]);
  const ranks = new Array<number>(xs.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && order[j + 1]![0] === order[i]![0]) j++;
    for (let k = i; k <= j; k++) ranks[order[k]![1]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return ranks;
}

function pearson(a: number[], b: number[]): number {
  const n = a.length;
  const ma = a.reduce((s, x) => s + x, 0) / n;
  const mb = b.reduce((s, x) => s + x, 0) / n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i]! - ma) * (b[i]! - mb);
    saa += (a[i]! - ma) ** 2;
    sbb += (b[i]! - mb) ** 2;
  }
  return saa === 0 || sbb === 0 ? NaN : sab / Math.sqrt(saa * sbb);
}

const check = (a: number[], b: number[]) => {
  if (a.length !== b.length) throw new RangeError(`two measurements of the same programs must have the same length (${a.length} and ${b.length})`);
  for (const x of [...a, ...b]) if (!Number.isFinite(x)) throw new RangeError(`a fitness must be a finite number, got ${x}`);
};

/** Spearman's rank correlation (ties averaged); NaN when either side is constant or fewer than 2 programs. */
export function spearman(a: number[], b: number[]): number {
  check(a, b);
  return a.length < 2 ? NaN : pearson(averageRanks(a), averageRanks(b));
}

/** Kendall's tau-b (ties corrected); NaN when either side is constant or fewer than 2 programs. */
export function kendallTauB(a: number[], b: number[]): number {
  check(a, b);
  let concordant = 0;
  let discordant = 0;
  let tiesA = 0;
  let tiesB = 0;
  for (let i = 0; i < a.length; i++) {
    for (let j = i + 1; j < a.length; j++) {
      const da = Math.sign(a[i]! - a[j]!);
      const db = Math.sign(b[i]! - b[j]!);
      if (da === 0 && db === 0) continue;
      if (da === 0) tiesA++;
      else if (db === 0) tiesB++;
      else if (da === db) concordant++;
      else discordant++;
    }
  }
  const denominator = Math.sqrt((concordant + discordant + tiesA) * (concordant + discordant + tiesB));
  return denominator === 0 ? NaN : (concordant - discordant) / denominator;
}

/** The share of the `k` best by `a` that are also among the `k` best by `b` (ties broken by position). */
export function topOverlap(a: number[], b: number[], k: number): number {
  check(a, b);
  const top = (xs: number[]) => new Set(xs.map((x, i) => [x, i] as const).sort((p, q) => p[0] - q[0] || p[1] - q[1]).slice(0, k).map((p) => p[1]));
  const kk = Math.min(k, a.length);
  if (kk === 0) return NaN;
  const tb = top(b);
  return [...top(a)].filter((i) => tb.has(i)).length / kk;
}

/**
 * Spearman's rho with a percentile bootstrap 95% interval: programs resampled with replacement
 * `resamples` times (seeded, so the interval is reproducible); resamples where a side is constant
 * are skipped. No interval from fewer than 4 programs.
 */
export function spearmanWithInterval(a: number[], b: number[], resamples = 2000, seed = 0): { rho: number; interval?: [number, number] } {
  const rho = spearman(a, b);
  if (a.length < 4) return { rho };
  const rng = Rng.create(`fidelity-bootstrap|${seed}`);
  const rhos: number[] = [];
  for (let r = 0; r < resamples; r++) {
    const idx = Array.from({ length: a.length }, () => rng.int(0, a.length - 1));
    const v = spearman(idx.map((i) => a[i]!), idx.map((i) => b[i]!));
    if (Number.isFinite(v)) rhos.push(v);
  }
  if (rhos.length < resamples / 2) return { rho };
  rhos.sort((x, y) => x - y);
  const at = (q: number) => rhos[Math.min(rhos.length - 1, Math.max(0, Math.round(q * (rhos.length - 1))))]!;
  return { rho, interval: [at(0.025), at(0.975)] };
}
