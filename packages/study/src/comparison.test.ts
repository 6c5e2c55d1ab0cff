import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { comparePaired, differenceCell, differenceStatistics, ratioStatistics, speedupCell, verdictOf, type SeedPair } from './comparison.js';

describe('ratio statistics (speedups)', () => {
  it('are taken on the log scale: the geometric mean, and an interval that is never 0 or below', () => {
    // the case that printed "0.80x [-0.84, 2.44]" with the arithmetic interval of two seeds
    expect(ratioStatistics([0.35, 1.25]).interval).toBeUndefined();
    const s = ratioStatistics([0.35, 1.25, 0.8]);
    expect(s.mean).toBeCloseTo(Math.cbrt(0.35 * 1.25 * 0.8), 12);
    expect(s.interval![0]).toBeGreaterThan(0);
    fc.assert(
      fc.property(fc.array(fc.double({ min: 1e-3, max: 1e3, noNaN: true }), { minLength: 3, maxLength: 12 }), (xs) => {
        const r = ratioStatistics(xs);
        expect(r.interval![0]).toBeGreaterThan(0);
        expect(r.interval![0]).toBeLessThanOrEqual(r.mean * (1 + 1e-12));
        expect(r.interval![1]).toBeGreaterThanOrEqual(r.mean * (1 - 1e-12));
      }),
    );
  });

  it('refuse what is not a ratio: empty, zero, negative, NaN, infinite', () => {
    expect(() => ratioStatistics([])).toThrow(/no values/);
    for (const bad of [0, -1, NaN, Infinity]) expect(() => ratioStatistics([1, bad, 2])).toThrow(/positive finite/);
  });
});

describe('differences and verdicts', () => {
  it('give no interval and no verdict below three seeds', () => {
    expect(differenceStatistics([-1, -2]).interval).toBeUndefined();
    expect(verdictOf(differenceStatistics([-1, -2]))).toBeUndefined();
    expect(verdictOf(differenceStatistics([-1, -2, -1.5]))).toBe('better');
  });

  it('never contradict the figures printed beside them', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: -50, max: 50, noNaN: true }), { minLength: 3, maxLength: 10 }), (xs) => {
        const d = differenceStatistics(xs);
        const cell = differenceCell({ perplexityDifference: d, verdict: verdictOf(d) });
        const [lo, hi] = [...cell.matchAll(/\[([-+]?[\d.]+), ([-+]?[\d.]+)\]/g)][0]!.slice(1).map(Number);
        if (cell.endsWith(' lower')) expect(hi).toBeLessThanOrEqual(0);
        if (cell.endsWith(' higher')) expect(lo).toBeGreaterThanOrEqual(0);
        if (cell.endsWith('within the noise')) expect(lo! <= 0 && hi! >= 0).toBe(true);
      }),
    );
  });
});

describe('comparePaired', () => {
  const curve = (points: Array<[number, number]>) => points.map(([step, loss]) => ({ seconds: step, step, tokens: step * 100, loss }));
  const pair = (seed: number, ref: Array<[number, number]>, prog: Array<[number, number]> | null): SeedPair => ({
    seed,
    reference: { curve: curve(ref), perplexity: Math.exp(ref.at(-1)![1]) },
    program: prog ? { curve: curve(prog), perplexity: Math.exp(prog.at(-1)![1]) } : undefined,
  });

  it('counts the seeds a program never reached the reference at, and then gives its speedup no interval', () => {
    const pairs = [pair(1, [[10, 4], [20, 3]], [[10, 3], [20, 2.5]]), pair(2, [[10, 4], [20, 3]], [[10, 3.5], [20, 3.2]]), pair(3, [[10, 4], [20, 3]], [[10, 3], [20, 2.8]])];
    const c = comparePaired(pairs, 'steps', 5);
    expect([c.paired, c.notReached, c.speedup!.n, c.speedup!.interval]).toEqual([3, 1, 2, undefined]);
    expect(speedupCell(c)).toBe('2.00x (not reached at 1 of 3 seeds)');
  });

  it('leaves a failed seed out, and then gives no difference (it would be over fewer seeds than asked)', () => {
    const pairs = [pair(1, [[10, 4], [20, 3]], [[10, 3], [20, 2.5]]), pair(2, [[10, 4], [20, 3]], null), pair(3, [[10, 4], [20, 3]], [[10, 3], [20, 2.8]])];
    const c = comparePaired(pairs, 'tokens', 5);
    expect([c.paired, c.perplexityDifference, c.verdict]).toEqual([2, undefined, undefined]);
    expect(c.speedup!.mean).toBeCloseTo(2, 12);
  });

  it('says "not measurable", not "not reached", when the reference ended no better than a uniform guess, or a curve lacks the measure', () => {
    // start (uniform guess) at loss 5; the reference ends at 5.3, worse than that: it has no cost of its final quality
    const worse = [pair(1, [[1, 5.6], [2, 5.3]], [[1, 5.2], [2, 5.0]]), pair(2, [[1, 5.6], [2, 5.4]], [[1, 5.5], [2, 5.45]])];
    const c = comparePaired(worse, 'steps', 5);
    expect([c.unmeasured, c.notReached, c.speedup]).toEqual([2, 0, undefined]);
    expect(speedupCell(c)).toBe('not measurable');
    // the differences are still there: the first seed's program ended lower
    expect(c.perplexityDifference!.mean).toBeCloseTo((Math.exp(5.0) - Math.exp(5.3) + Math.exp(5.45) - Math.exp(5.4)) / 2, 10);
    // a curve without FLOPs under a FLOP budget
    const noFlops = comparePaired([pair(1, [[10, 4], [20, 3]], [[10, 3], [20, 2.5]])], 'flops', 5);
    expect([noFlops.unmeasured, noFlops.notReached]).toEqual([1, 0]);
    // an unknown start (no vocabulary recorded): differences only
    const unknown = comparePaired([pair(1, [[10, 4], [20, 3]], [[10, 3], [20, 2.5]]), pair(2, [[10, 4], [20, 3]], [[10, 3], [20, 2.5]])], 'steps', NaN);
    expect([unknown.unmeasured, unknown.perplexityDifference!.n]).toEqual([2, 2]);
  });

  it('prints enough decimals that a verdict shows in its interval', () => {
    const d = differenceStatistics([-0.004, -0.003, -0.0035]);
    const cell = differenceCell({ perplexityDifference: d, verdict: verdictOf(d) });
    expect(cell).toMatch(/ lower$/);
    expect(cell).not.toMatch(/-0\.00\b|\+0\.00\b/);
  });

  it('treats a NaN perplexity as a run that did not complete', () => {
    const bad: SeedPair = { seed: 1, reference: { curve: curve([[10, 3]]), perplexity: NaN }, program: { curve: curve([[10, 3]]), perplexity: 20 } };
    expect(comparePaired([bad], 'steps', 5)).toMatchObject({ paired: 0, notReached: 0, unmeasured: 0, speedup: undefined });
  });
});
