import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { averageRanks, kendallTauB, spearman, spearmanWithInterval, topOverlap } from './fidelity.js';

describe('proxy fidelity statistics', () => {
  it('agree with the reference values of scipy.stats (ties included)', () => {
    // scipy.stats.spearmanr([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) and kendalltau (tau-b) of the same
    expect(spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7])).toBeCloseTo(0.8207826816681233, 12);
    expect(kendallTauB([1, 2, 3, 4, 5], [5, 6, 7, 8, 7])).toBeCloseTo(0.7378647873726218, 12);
    expect(averageRanks([10, 20, 20, 5])).toEqual([2, 3.5, 3.5, 1]);
  });

  it("Spearman's rho without ties is 1 - 6 sum d^2 / (n (n^2 - 1)), by hand, on random data", () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: -1000, max: 1000 }), { minLength: 3, maxLength: 30 }), fc.integer({ min: 1, max: 1_000_000 }), (xs, seed) => {
        const ys = [...xs].map((x, i) => ((x * 7919 + seed * (i + 1)) % 1013) + i / 1e6);
        const rx = averageRanks(xs);
        const ry = averageRanks(ys);
        const n = xs.length;
        const d2 = rx.reduce((s, r, i) => s + (r - ry[i]!) ** 2, 0);
        expect(spearman(xs, ys)).toBeCloseTo(1 - (6 * d2) / (n * (n * n - 1)), 9);
      }),
    );
  });

  it('are 1 for the same order, -1 for the reverse, NaN for a constant side; refuse NaN and unequal lengths', () => {
    const a = [3, 1, 2, 5, 4];
    expect(spearman(a, a.map((x) => x * 10))).toBeCloseTo(1, 12);
    expect(kendallTauB(a, a.map((x) => -x))).toBeCloseTo(-1, 12);
    expect(spearman(a, [1, 1, 1, 1, 1])).toBeNaN();
    expect(() => spearman([1, NaN], [1, 2])).toThrow(/finite/);
    expect(() => kendallTauB([1, 2], [1])).toThrow(/same length/);
  });

  it('count how much of the top is kept, and give a reproducible bootstrap interval that holds rho', () => {
    expect(topOverlap([1, 2, 3, 4, 5], [1, 2, 5, 4, 3], 2)).toBe(1);
    expect(topOverlap([1, 2, 3, 4, 5], [5, 4, 3, 2, 1], 2)).toBe(0);
    const a = Array.from({ length: 20 }, (_, i) => i + Math.sin(i));
    const b = a.map((x, i) => x + 3 * Math.cos(i * 1.7));
    const r1 = spearmanWithInterval(a, b, 500, 1);
    expect(r1).toEqual(spearmanWithInterval(a, b, 500, 1));
    expect(r1.interval![0]).toBeLessThanOrEqual(r1.rho);
    expect(r1.interval![1]).toBeGreaterThanOrEqual(r1.rho);
    expect(r1.interval![1]).toBeLessThanOrEqual(1);
    expect(spearmanWithInterval([1, 2, 3], [1, 3, 2]).interval).toBeUndefined();
  });
});
