// Statistics over seeds: mean, sample standard deviation, and Student-t intervals.

/** Two-sided 97.5% quantiles of Student's t for 1-30 degrees of freedom (beyond: the normal's 1.960). */
const T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042];

/** The t quantile a two-sided 95% interval uses, for `df` degrees of freedom. */
export function tQuantile95(df: number): number {
  if (!Number.isInteger(df) || df < 1) throw new RangeError(`degrees of freedom must be a positive integer, got ${df}`);
  return df <= 30 ? T975[df - 1]! : 1.96;
}

export interface SeedStatistics {
  n: number;
  mean: number;
  /** Sample standard deviation (n - 1); 0 for one value. */
  sd: number;
  /** The 95% interval of the mean (Student's t); undefined for fewer than two values. */
  interval?: [number, number];
}

export function seedStatistics(values: number[]): SeedStatistics {
  const n = values.length;
  if (n === 0) throw new RangeError('no values');
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const sd = n > 1 ? Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1)) : 0;
  if (n < 2) return { n, mean, sd };
  const half = (tQuantile95(n - 1) * sd) / Math.sqrt(n);
  return { n, mean, sd, interval: [mean - half, mean + half] };
}
