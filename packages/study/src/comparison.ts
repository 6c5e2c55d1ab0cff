// Comparing programs trained with the same seeds against a reference: the one place where
// speedups, perplexity differences, their intervals and the verdicts are computed and worded
// (primer compare, primer study retrain and the dashboard all use it).
import type { Budget } from './budget.js';
import { secondsToReach, type CurvePoint, type SpeedupAxis } from './speedup.js';
import { seedStatistics, tQuantile95, type SeedStatistics } from './stats.js';

/**
 * Seeds a 95% interval or a verdict needs. With two, Student's t has one degree of freedom and
 * a quantile of 12.7: any interval spans nearly everything, so none is given.
 */
export const MIN_SEEDS_FOR_INTERVAL = 3;

/** Statistics of ratios (speedups), taken on the log scale: the mean is geometric, the interval never contains 0 or a negative number. */
export interface RatioStatistics {
  n: number;
  /** Geometric mean. */
  mean: number;
  /** Sample standard deviation of the logarithms (0 for one value). */
  logSd: number;
  /** The 95% interval of the geometric mean (Student's t on the logarithms); only from MIN_SEEDS_FOR_INTERVAL values. */
  interval?: [number, number];
}

export function ratioStatistics(values: number[]): RatioStatistics {
  if (values.length === 0) throw new RangeError('no values');
  for (const v of values) if (!(v > 0 && Number.isFinite(v))) throw new RangeError(`a ratio must be a positive finite number, got ${v}`);
  const logs = values.map(Math.log);
  const n = logs.length;
  const mean = logs.reduce((a, b) => a + b, 0) / n;
  const logSd = n > 1 ? Math.sqrt(logs.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1)) : 0;
  const out: RatioStatistics = { n, mean: Math.exp(mean), logSd };
  if (n >= MIN_SEEDS_FOR_INTERVAL) {
    const half = (tQuantile95(n - 1) * logSd) / Math.sqrt(n);
    out.interval = [Math.exp(mean - half), Math.exp(mean + half)];
  }
  return out;
}

/** Differences (paired by seed): mean, sd, and a 95% Student-t interval only from MIN_SEEDS_FOR_INTERVAL values. */
export function differenceStatistics(values: number[]): SeedStatistics {
  const s = seedStatistics(values);
  if (s.n < MIN_SEEDS_FOR_INTERVAL) delete s.interval;
  return s;
}

/**
 * Whether a program's final perplexity differs from the reference's beyond the noise: the 95%
 * interval of the paired difference (program minus reference) lies below 0 (lower perplexity),
 * above 0, or contains 0. It is about the final perplexity only, never about the speedup.
 */
export type Verdict = 'better' | 'worse' | 'within the noise';

export const verdictOf = (difference?: SeedStatistics): Verdict | undefined =>
  !difference?.interval ? undefined : difference.interval[1] < 0 ? 'better' : difference.interval[0] > 0 ? 'worse' : 'within the noise';

/** The speedup's measure for runs under this budget: its own kind (seconds only for a time budget). */
export const speedupAxisOf = (budget: Budget): SpeedupAxis => budget.kind;

/** One seed's pair: the reference's run and the program's, each a curve and a final perplexity (undefined: it did not complete). */
export interface SeedPair {
  seed: number;
  reference?: { curve: CurvePoint[]; perplexity: number };
  program?: { curve: CurvePoint[]; perplexity: number };
}

export interface PairedComparison {
  /** Seeds where both completed. */
  paired: number;
  /** Speedup over the seeds where the program reached the reference's final perplexity; its interval only when it reached it at every paired seed. */
  speedup?: RatioStatistics;
  /** Paired seeds at which the program never reached the reference's final perplexity. */
  notReached: number;
  /**
   * Paired seeds where no speedup can be measured: the reference ended no better than the
   * untrained start (a uniform guess), or a curve lacks the budget's measure.
   */
  unmeasured: number;
  /** Its final perplexity minus the reference's, paired by seed; computed only when every seed is paired. */
  perplexityDifference?: SeedStatistics;
  verdict?: Verdict;
}

/**
 * A program against the reference over seeds. `start`: the untrained loss (log of the
 * vocabulary's size), `seeds`: how many seeds were asked for (a difference over fewer, when
 * some failed, is not given).
 */
export function comparePaired(pairs: SeedPair[], axis: SpeedupAxis, start: number, seeds = pairs.length): PairedComparison {
  const speedups: number[] = [];
  const diffs: number[] = [];
  let notReached = 0;
  let unmeasured = 0;
  for (const p of pairs) {
    if (!p.reference || !p.program || !Number.isFinite(p.reference.perplexity) || !Number.isFinite(p.program.perplexity)) continue;
    diffs.push(p.program.perplexity - p.reference.perplexity);
    const target = p.reference.curve.at(-1)?.loss;
    // the reference's own cost of its final quality: none when it ended no better than the untrained start
    const base = Number.isFinite(start) && target !== undefined && target < start ? secondsToReach(p.reference.curve, target, start, axis) : undefined;
    if (!(base !== undefined && base > 0)) {
      unmeasured++;
      continue;
    }
    const own = secondsToReach(p.program.curve, target!, start, axis);
    if (own === undefined) {
      // never got there, or its curve lacks the measure
      if (p.program.curve.some((e) => !Number.isFinite(axisValue(e, axis)))) unmeasured++;
      else notReached++;
    } else if (own > 0) speedups.push(base / own);
    else unmeasured++;
  }
  const paired = diffs.length;
  const sp = speedups.length ? ratioStatistics(speedups) : undefined;
  if (sp && (notReached > 0 || unmeasured > 0)) delete sp.interval;
  const perplexityDifference = paired === seeds && paired > 1 ? differenceStatistics(diffs) : undefined;
  return { paired, speedup: sp, notReached, unmeasured, perplexityDifference, verdict: verdictOf(perplexityDifference) };
}

const axisValue = (e: CurvePoint, axis: SpeedupAxis) => (axis === 'flops' ? e.flops : axis === 'steps' ? e.step : axis === 'tokens' ? e.tokens : e.seconds) ?? NaN;

/** How each quantity is worded: column headers, cells and the notes under a table. */
export const axisWords: Record<SpeedupAxis, string> = {
  seconds: 'training seconds',
  steps: 'training steps',
  tokens: 'training tokens',
  flops: 'training FLOPs',
};

const range = (i: [number, number] | undefined, digits: number) => (i ? ` [${i[0].toFixed(digits)}, ${i[1].toFixed(digits)}]` : '');

/** A speedup cell: `1.23x [1.05, 1.44]`, with the seeds it was not reached at. */
export function speedupCell(c: Pick<PairedComparison, 'speedup' | 'notReached' | 'paired' | 'unmeasured'>): string {
  const why = [c.notReached ? `not reached at ${c.notReached}` : '', c.unmeasured ? `not measurable at ${c.unmeasured}` : ''].filter(Boolean).join(', ');
  if (!c.speedup) {
    if (c.notReached && !c.unmeasured) return `not reached${c.paired > 1 ? ` (${c.notReached} of ${c.paired} seeds)` : ''}`;
    if (c.unmeasured && !c.notReached) return 'not measurable';
    return why ? `- (${why} of ${c.paired} seeds)` : '-';
  }
  return `${c.speedup.mean.toFixed(2)}x${range(c.speedup.interval, 2)}${why ? ` (${why} of ${c.paired} seeds)` : ''}`;
}

/** A perplexity difference cell with its verdict beside it: `-3.21 [-5.02, -1.40] better`. */
export function differenceCell(c: Pick<PairedComparison, 'perplexityDifference' | 'verdict'>): string {
  const d = c.perplexityDifference;
  if (!d) return '-';
  // enough decimals that the printed interval shows what the verdict says (never "-0.00 [-0.01, -0.00] lower")
  const width = d.interval ? Math.min(Math.abs(d.interval[0]), Math.abs(d.interval[1]), d.interval[1] - d.interval[0]) : Math.abs(d.mean);
  const digits = width > 0 && Number.isFinite(width) ? Math.min(6, Math.max(2, Math.ceil(-Math.log10(width)) + 1)) : 2;
  const sign = (x: number) => `${x > 0 ? '+' : ''}${x.toFixed(digits)}`;
  return `${sign(d.mean)}${d.interval ? ` [${sign(d.interval[0])}, ${sign(d.interval[1])}]` : ''}${c.verdict ? ` ${c.verdict === 'better' ? 'lower' : c.verdict === 'worse' ? 'higher' : 'within the noise'}` : ''}`;
}

export const speedupHeader = (reference: string, seeds: number) => `speedup vs ${reference}${seeds > 1 ? (seeds >= MIN_SEEDS_FOR_INTERVAL ? ' (geo. mean [95%])' : ' (geo. mean)') : ''}`;
export const differenceHeader = (reference: string, seeds: number) => `perplexity − ${reference}'s${seeds >= MIN_SEEDS_FOR_INTERVAL ? ' (mean [95%], verdict)' : ' (mean)'}`;

/** The notes under a comparison table: what the speedup is measured in, what the intervals and verdicts are. */
export function comparisonNotes(reference: string, axis: SpeedupAxis, seeds: number): string[] {
  const notes = [
    `speedup: the ${axisWords[axis]} ${reference} needed to reach its final perplexity over those each program needed to reach it, paired by seed${seeds > 1 ? ', geometric mean over the seeds' : ''}` +
      (axis === 'seconds'
        ? '; in seconds (a time budget), so it depends on the machine and its load.'
        : axis === 'flops'
          ? " (the budget's own measure: the same on every machine)."
          : ` (the budget's own measure, the same on every machine; what a ${axis === 'steps' ? 'step' : 'token'} costs is not counted: compare under a FLOP budget for that).`) +
      ' "not measurable": the reference ended no better than a uniform guess, so it has no cost to compare.',
  ];
  if (seeds >= MIN_SEEDS_FOR_INTERVAL) {
    notes.push(
      `intervals: 95%, Student's t over the ${seeds} seeds (speedups on the log scale). The verdict is about the final perplexity only: "lower" or "higher" when the interval of its difference from ${reference}'s (paired by seed) excludes 0, "within the noise" when it contains 0.`,
    );
  } else if (seeds === 2) {
    notes.push(`2 seeds are too few for a 95% interval or a verdict (Student's t with one degree of freedom): use --seeds ${MIN_SEEDS_FOR_INTERVAL} or more.`);
  }
  return notes;
}
