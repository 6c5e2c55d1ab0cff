import type { RetrainPlan, RetrainRun } from './records.js';
import { speedup, type SpeedupAxis } from './speedup.js';
import { seedStatistics, type SeedStatistics } from './stats.js';

/** How a program compares with the reference over seeds: its paired perplexity difference's 95% interval lies below 0, above 0, or contains 0. */
export type Verdict = 'better' | 'worse' | 'within the noise';

export interface RetrainRow {
  program: number;
  label: string;
  candidate: number | null;
  searchFitness: number | null;
  /** Runs recorded, of `seeds.length`. */
  runs: number;
  completed: number;
  failed: number;
  parameters: number | null;
  /** Mean steps over its runs. */
  steps: number | null;
  /** Final validation perplexity over the seeds that completed. */
  perplexity?: SeedStatistics;
  /** Speedup against the reference trained with the same seed, over the seeds where both completed and it reached the reference's final quality. */
  speedup?: SeedStatistics;
  /** Seeds (of those where both completed) at which it never reached the reference's final perplexity. */
  notReached: number;
  /** Its final perplexity minus the reference's, paired by seed. */
  perplexityDifference?: SeedStatistics;
  verdict?: Verdict;
}

export interface RetrainSummary {
  id: number;
  top: number;
  budget: string;
  seeds: number[];
  axis: SpeedupAxis;
  /** Runs recorded and runs planned. */
  done: number;
  total: number;
  /** The program the others are measured against (its label and index): the study's seed unless another was asked for. */
  reference: string;
  referenceProgram: number;
  rows: RetrainRow[];
  /**
   * The program with the lowest mean final perplexity over all seeds, once every run is
   * recorded (undefined before, or when no program completed every seed).
   */
  winner?: { program: number; label: string; perplexity: SeedStatistics; verdict?: Verdict; isReference: boolean };
}

const verdictOf = (d?: SeedStatistics): Verdict | undefined =>
  !d?.interval ? undefined : d.interval[1] < 0 ? 'better' : d.interval[0] > 0 ? 'worse' : 'within the noise';

/**
 * The leaderboard of a retraining: for each program, mean and standard deviation of its final
 * perplexity over the seeds, its speedup over the reference (`against`, an index into the plan's
 * programs: by default programs[0], the study's seed; e.g. a reference model such as Primer-EZ)
 * with a 95% Student-t interval, and whether its difference from the reference is beyond the
 * noise. Speedups are in training FLOPs under a FLOP budget, in training seconds otherwise.
 */
export function summarizeRetrain(plan: RetrainPlan, runs: RetrainRun[], against = 0): RetrainSummary {
  if (!Number.isInteger(against) || against < 0 || against >= Math.max(plan.programs.length, 1)) {
    throw new RangeError(`retraining ${plan.id} has no program ${against} to measure against (it has ${plan.programs.length})`);
  }
  const axis: SpeedupAxis = plan.settings.budget.kind === 'flops' ? 'flops' : 'seconds';
  const mine = runs.filter((r) => r.retrain === plan.id);
  const at = (program: number, seed: number) => mine.find((r) => r.program === program && r.seed === seed);
  const loss = (r: RetrainRun) => r.curve.map((e) => ({ seconds: e.seconds, flops: e.flops, loss: Math.log(e.perplexity) }));
  const rows = plan.programs.map((p, program): RetrainRow => {
    const own = plan.seeds.map((seed) => at(program, seed)).filter((r): r is RetrainRun => r !== undefined);
    const done = own.filter((r) => r.status === 'completed' && r.fitness !== null);
    const speedups: number[] = [];
    const diffs: number[] = [];
    let notReached = 0;
    let paired = 0;
    for (const seed of plan.seeds) {
      const r = at(program, seed);
      const ref = at(against, seed);
      if (r?.status !== 'completed' || ref?.status !== 'completed' || r.fitness === null || ref.fitness === null) continue;
      paired++;
      diffs.push(r.fitness - ref.fitness);
      // the untrained start: a uniform guess over the vocabulary
      const vocabulary = r.vocabSize ?? ref.vocabSize;
      const s = vocabulary ? speedup(loss(ref), loss(r), Math.log(vocabulary), axis) : undefined;
      if (s === undefined) notReached++;
      else speedups.push(s);
    }
    const perplexityDifference = program !== against && paired === plan.seeds.length && paired > 1 ? seedStatistics(diffs) : undefined;
    return {
      program,
      label: p.label,
      candidate: p.candidate,
      searchFitness: p.searchFitness,
      runs: own.length,
      completed: done.length,
      failed: own.length - done.length,
      parameters: own.find((r) => r.parameters !== null)?.parameters ?? null,
      steps: own.length ? own.reduce((a, r) => a + r.steps, 0) / own.length : null,
      perplexity: done.length ? seedStatistics(done.map((r) => r.fitness!)) : undefined,
      speedup: speedups.length ? seedStatistics(speedups) : undefined,
      notReached,
      perplexityDifference,
      verdict: verdictOf(perplexityDifference),
    };
  });
  const total = plan.programs.length * plan.seeds.length;
  const done = rows.reduce((a, r) => a + r.runs, 0);
  const complete = rows.filter((r) => r.completed === plan.seeds.length && r.perplexity);
  const best = done === total && complete.length ? complete.reduce((a, b) => (b.perplexity!.mean < a.perplexity!.mean ? b : a)) : undefined;
  return {
    id: plan.id,
    top: plan.top,
    budget: plan.budget,
    seeds: plan.seeds,
    axis,
    done,
    total,
    reference: plan.programs[against]?.label ?? '-',
    referenceProgram: against,
    rows,
    winner: best && { program: best.program, label: best.label, perplexity: best.perplexity!, verdict: best.verdict, isReference: best.program === against },
  };
}
