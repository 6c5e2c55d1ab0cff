import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { averageRanks, fidelitySample, fidelityVerdict, kendallTauB, spearman, spearmanWithInterval, summarizeFidelity, topOverlap } from './fidelity.js';

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

describe('the fidelity sample', () => {
  it('spreads over the ranks, keeps the best and the seed, and is the same list every time', () => {
    expect(fidelitySample(11, 3)).toEqual([0, 5, 10]);
    expect(fidelitySample(11, 6)).toEqual([0, 2, 4, 6, 8, 10]);
    // the seed takes the place of the quantile nearest it
    expect(fidelitySample(11, 3, 7)).toEqual([0, 7, 10]);
    expect(fidelitySample(11, 3, 9)).toEqual([0, 5, 9]);
    expect(fidelitySample(11, 3, 0)).toEqual([0, 5, 10]);
    // fewer programs than asked: all of them
    expect(fidelitySample(4, 20, 2)).toEqual([0, 1, 2, 3]);
    expect(() => fidelitySample(10, 1)).toThrow(/at least 2/);
    expect(() => fidelitySample(10, 3, 10)).toThrow(/not among/);
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 300 }), fc.integer({ min: 2, max: 40 }), fc.option(fc.nat(), { nil: undefined }), (count, size, s) => {
        const seed = s === undefined ? undefined : s % count;
        const xs = fidelitySample(count, size, seed);
        expect(xs).toEqual(fidelitySample(count, size, seed));
        expect(xs.length).toBe(Math.min(count, size));
        expect(new Set(xs).size).toBe(xs.length);
        expect(xs).toEqual([...xs].sort((a, b) => a - b));
        expect(xs[0]).toBe(0);
        if (seed !== undefined) expect(xs).toContain(seed);
        for (const x of xs) expect(x >= 0 && x < count).toBe(true);
        // the worst is in unless the seed took its place
        if (size < count && (seed === undefined || seed === 0)) expect(xs.at(-1)).toBe(count - 1);
      }),
    );
  });
});

describe('summarizeFidelity', () => {
  const programs = [
    { label: 'seed (vanilla)', candidate: 0, searchFitness: 200 },
    { label: 'candidate 1', candidate: 1, searchFitness: 90 },
    { label: 'candidate 2', candidate: 2, searchFitness: 100 },
    { label: 'candidate 3', candidate: 3, searchFitness: 120 },
    { label: 'candidate 4', candidate: 4, searchFitness: 150 },
    { label: 'candidate 5', candidate: 5, searchFitness: 160 },
    { label: 'candidate 6', candidate: 6, searchFitness: 170 },
  ];
  // the longer run at seeds 1 and 2: the seed goes from last to first; the rest keep their order
  const longer: Record<number, [number, number]> = { 0: [60, 62], 1: [70, 71], 2: [72, 72], 3: [75, 76], 4: [80, 81], 5: [85, 85], 6: [90, 92] };
  const run = (program: number, seed: number, fitness: number | null, retrain = 7) => ({ retrain, program, seed, status: fitness === null ? ('failed' as const) : ('completed' as const), fitness, reason: fitness === null ? 'diverged' : null });
  const plan = { id: 7, sample: 7, budget: '5e12 FLOPs', seeds: [1, 2], programs };
  const runs = programs.flatMap((_, p) => [run(p, 1, longer[p]![0]), run(p, 2, longer[p]![1])]);

  it('correlates the search with the means of the longer runs, by hand', () => {
    const f = summarizeFidelity(plan, [...runs, run(1, 1, 1, 99)]);
    expect(f.done).toBe(14);
    expect(f.points).toHaveLength(7);
    const seed = f.points.find((p) => p.program === 0)!;
    expect([seed.searchRank, seed.retrainedRank, seed.retrained, seed.sd]).toEqual([7, 1, 61, Math.SQRT2]);
    // ranks: search 7,1,2,3,4,5,6 against 1,2,3,4,5,6,7: sum d^2 = 36 + 6 = 42; rho = 1 - 6*42/(7*48) = 0.25
    expect(f.spearman!.rho).toBeCloseTo(0.25, 12);
    // pairs: 15 concordant among the six, the seed's 6 pairs discordant: (15 - 6) / 21
    expect(f.kendall).toBeCloseTo(9 / 21, 12);
    // the search's best 5 (1-5) against the longer run's (0-4): 4 kept
    expect(f.top).toEqual([{ k: 5, overlap: 0.8 }]);
    expect(f.moved[0]!.label).toBe('seed (vanilla)');
    expect(f.moved).toHaveLength(5);
    expect(f.seedAgreement).toBeCloseTo(spearman(programs.map((_, p) => longer[p]![0]), programs.map((_, p) => longer[p]![1])), 12);
    expect(f.table.rows.map((r) => r.cells[0])).toEqual(['candidate 1', 'candidate 2', 'candidate 3', 'candidate 4', 'candidate 5', 'candidate 6', 'seed (vanilla)']);
    expect(f.table.rows.at(-1)!.cells.at(-1)).toBe('+6');
    expect(f.table.end).toMatch(/^Spearman's rho 0\.25 \[-?[\d.]+, [\d.]+\] \(bootstrap 95%\), Kendall's tau 0\.43, over 7 programs: /);
    expect(f.table.end).toContain("4 of the search's best 5 are among the longer run's best 5");
  });

  it('leaves out, and names, programs that failed, are not trained yet, or were not in the search', () => {
    const withRef = { ...plan, programs: [...programs, { label: 'primer-ez', candidate: null, searchFitness: null }] };
    const some = runs.filter((r) => !(r.program === 5 && r.seed === 2)).map((r) => (r.program === 6 && r.seed === 2 ? run(6, 2, null) : r));
    const f = summarizeFidelity(withRef, some);
    expect(f.points.map((p) => p.program)).toEqual([0, 1, 2, 3, 4]);
    expect(f.left).toEqual([
      { label: 'candidate 5', reason: '1 of 2 runs not yet trained' },
      { label: 'candidate 6', reason: 'failed at the longer budget (seed 2: diverged)' },
      { label: 'primer-ez', reason: 'a reference, not a candidate of the search' },
    ]);
    expect(f.table.notes).toContain('left out: candidate 6, failed at the longer budget (seed 2: diverged).');
    expect(f.table.notes).toContain('not yet measured: candidate 5 (1 of 2 runs to go).');
    // while runs are to come: the first seed's picture, said to be provisional (the seed 1st by the longer run, as in the full table)
    const firstSeed = spearman(programs.map((p) => p.searchFitness), programs.map((_, p) => longer[p]![0]));
    expect(f.table.notes).toContain(`provisional, while runs are to come: over seed 1 alone, Spearman's rho ${firstSeed.toFixed(2)} over 7 programs.`);
    expect(summarizeFidelity(plan, runs).table.notes.some((n) => n.startsWith('provisional'))).toBe(false);
    expect(summarizeFidelity(plan, []).table.end).toBe('0 programs measured: nothing to correlate yet.');
  });

  it('says where its runs were made when not all alike, and which were copied from another study', () => {
    expect(summarizeFidelity(plan, runs).provenance).toEqual({ machines: [], unrecorded: 14, fromOtherStudies: [] });
    expect(summarizeFidelity(plan, runs).table.notes.some((n) => /^(machines|reused):/.test(n))).toBe(false);
    const env = (device: string) => ({ device, backend: 'wasm', products: 'native BLAS' }) as never;
    const mixed = runs.map((r, i) => ({ ...r, environment: env(i < 10 ? 'Intel x2' : 'AMD x2'), ...(i === 0 ? { reusedFrom: { study: 'other.sqlite', retrain: 3, program: 0 } } : {}) }));
    const f = summarizeFidelity(plan, mixed);
    expect(f.provenance.machines.map((m) => [m.device, m.runs])).toEqual([['Intel x2', 10], ['AMD x2', 4]]);
    expect(f.table.notes).toContain('reused: 1 run of other.sqlite\'s retraining 3 (the same program, seed and settings).');
    expect(f.table.notes.find((n) => n.startsWith('machines:'))).toMatch(/^machines: the runs were made on 2 set-ups \(10 on Intel x2, wasm, native BLAS; 4 on AMD x2, wasm, native BLAS\)/);
  });

  it('says what an interval means', () => {
    expect(fidelityVerdict(0.9, [0.85, 0.97])).toMatch(/predicts the longer run's well/);
    expect(fidelityVerdict(0.5, [0.1, 0.8])).toMatch(/only in part/);
    expect(fidelityVerdict(0.93, [0.78, 0.98])).toMatch(/largely, not surely well \(the interval reaches below 0.8\)/);
    expect(fidelityVerdict(0.7, [0.49, 0.9])).toMatch(/only in part/);
    expect(fidelityVerdict(0.1, [-0.4, 0.6])).toMatch(/no evidence/);
    expect(fidelityVerdict(-0.7, [-0.9, -0.3])).toMatch(/reversed/);
    expect(fidelityVerdict(0.5)).toMatch(/too few programs/);
    expect(fidelityVerdict(0.5, undefined, 12)).toMatch(/too many ties/);
    expect(fidelityVerdict(NaN)).toMatch(/constant/);
  });
});
