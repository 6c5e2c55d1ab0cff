import { describe, expect, it } from 'vitest';
import { seedStatistics, tQuantile95 } from './stats.js';

/** Student's t density with `df` degrees of freedom (via log-gamma by Lanczos). */
function tDensity(x: number, df: number): number {
  const lgamma = (z: number): number => {
    const g = 7;
    const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
    if (z < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * z)) - lgamma(1 - z);
    z -= 1;
    let a = c[0]!;
    for (let i = 1; i < g + 2; i++) a += c[i]! / (z + i);
    const t = z + g + 0.5;
    return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
  };
  return Math.exp(lgamma((df + 1) / 2) - lgamma(df / 2) - 0.5 * Math.log(df * Math.PI) - ((df + 1) / 2) * Math.log(1 + (x * x) / df));
}

/** P(0 < T < q) by Simpson's rule. */
function mass(q: number, df: number): number {
  const n = 20_000;
  const h = q / n;
  let s = tDensity(0, df) + tDensity(q, df);
  for (let i = 1; i < n; i++) s += (i % 2 ? 4 : 2) * tDensity(i * h, df);
  return (s * h) / 3;
}

describe('seed statistics', () => {
  it('uses t quantiles that leave 2.5% in each tail (checked by integrating the density)', () => {
    for (const df of [1, 2, 3, 5, 10, 20, 30]) expect(0.5 + mass(tQuantile95(df), df)).toBeCloseTo(0.975, 3);
    expect(tQuantile95(500)).toBe(1.96);
    expect(() => tQuantile95(0)).toThrow(/positive integer/);
  });

  it('gives the mean, the sample standard deviation and the interval of the mean', () => {
    const s = seedStatistics([10, 12, 14]);
    expect(s.mean).toBe(12);
    expect(s.sd).toBe(2);
    expect(s.interval![0]).toBeCloseTo(12 - (4.303 * 2) / Math.sqrt(3), 10);
    expect(seedStatistics([7])).toEqual({ n: 1, mean: 7, sd: 0 });
  });
});
