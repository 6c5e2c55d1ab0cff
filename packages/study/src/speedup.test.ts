import { describe, expect, it } from 'vitest';
import { secondsToReach, speedup } from './speedup.js';
import type { CurvePoint as Evaluation } from './speedup.js';

const ev = (points: Array<[number, number]>): Evaluation[] =>
  points.map(([seconds, loss]) => ({ seconds, loss }));

describe('speedup', () => {
  it('interpolates the time to reach a loss between evaluations', () => {
    const e = ev([[10, 4], [20, 3], [30, 2.5]]);
    expect(secondsToReach(e, 3.5, 5)).toBe(15);
    expect(secondsToReach(e, 4.5, 5)).toBe(5); // between the untrained start (0 s, loss 5) and the first evaluation
    expect(secondsToReach(e, 2, 5)).toBeUndefined();
  });

  it('is 1 for the baseline itself and >1 for a model that gets there sooner', () => {
    const vanilla = ev([[10, 4], [20, 3], [30, 2.5]]);
    const better = ev([[10, 3], [20, 2.5], [30, 2.2]]);
    expect(speedup(vanilla, vanilla, 5)).toBe(1);
    expect(speedup(vanilla, better, 5)).toBe(1.5); // 30 s / 20 s
    expect(speedup(vanilla, ev([[10, 4.5], [30, 4]]), 5)).toBeUndefined();
    // in FLOPs: the same interpolation on the FLOPs axis
    const withFlops = (e: ReturnType<typeof ev>, perSecond: number) => e.map((x) => ({ ...x, flops: x.seconds * perSecond }));
    expect(speedup(withFlops(vanilla, 1e9), withFlops(better, 2e9), 5, 'flops')).toBeCloseTo(0.75, 12); // 30e9 / 40e9
    expect(speedup(vanilla, better, 5, 'flops')).toBeUndefined();
  });
});
