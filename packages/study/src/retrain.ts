import type { RetrainPlan, RetrainRun } from './records.js';
import { comparePaired, comparisonNotes, differenceCell, differenceHeader, speedupAxisOf, speedupCell, speedupHeader, type RatioStatistics, type Verdict } from './comparison.js';
import type { SpeedupAxis } from './speedup.js';
import { seedStatistics, type SeedStatistics } from './stats.js';
import { OBJECTIVES } from './objectives.js';

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
  /** Mean steps over its completed runs (null when none completed). */
  steps: number | null;
  /** Final validation perplexity over the seeds that completed. */
  perplexity?: SeedStatistics;
  /** Speedup against the reference trained with the same seed, over the seeds where both completed and it reached the reference's final quality (geometric mean; interval on the log scale). */
  speedup?: RatioStatistics;
  /** Seeds where both it and the reference completed. */
  paired: number;
  /** Seeds (of those where both completed) at which it never reached the reference's final perplexity. */
  notReached: number;
  /** Seeds (of those where both completed) where no speedup can be measured (comparison.ts). */
  unmeasured: number;
  /** Its final perplexity minus the reference's, paired by seed. */
  perplexityDifference?: SeedStatistics;
  /** The in-context score at the last evaluation (the `in_context` objective), over the completed seeds that recorded one. */
  inContext?: SeedStatistics;
  verdict?: Verdict;
}

export interface RetrainSummary {
  id: number;
  top: number;
  /** A retraining of a Pareto search's front (`--front`) rather than of the `top` best. */
  front?: boolean;
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
  /** Where its runs were made: by machine, and which were copied from another study's retraining. */
  provenance: RetrainProvenance;
  /** The same as words: what the CLI prints and the dashboard shows (one wording for both). */
  table: RetrainTable;
}

export interface RetrainProvenance {
  /**
   * The runs that recorded what trained them, by device and backend (the products as the first of
   * them recorded them), most runs first.
   */
  machines: Array<{ device: string | null; products: string | null; backend: string | null; runs: number }>;
  /** Runs that recorded no machine (a timeout, a crash, a study from before the record). */
  unrecorded: number;
  /** Runs copied from other studies' retrainings (`--reuse-from`), by study and retraining. */
  fromOtherStudies: Array<{ study: string; studyId?: string; retrain: number; runs: number }>;
}

/** Where a retraining's recorded runs were made (a run copied from another retraining counts where it was trained). */
export function retrainProvenance(runs: Array<Partial<Pick<RetrainRun, 'environment' | 'backend' | 'reusedFrom'>>>): RetrainProvenance {
  const machines = new Map<string, RetrainProvenance['machines'][number]>();
  const studies = new Map<string, RetrainProvenance['fromOtherStudies'][number]>();
  let unrecorded = 0;
  for (const r of runs) {
    if (r.environment) {
      const device = r.environment.device ?? null;
      const backend = r.environment.backend ?? r.backend ?? null;
      const key = JSON.stringify([device, backend]);
      const m = machines.get(key) ?? { device, products: r.environment.products ?? null, backend, runs: 0 };
      m.runs++;
      machines.set(key, m);
    } else unrecorded++;
    const from = r.reusedFrom;
    if (from?.study !== undefined) {
      // one study under two paths is one study
      const k = JSON.stringify([from.studyId ?? from.study, from.retrain]);
      const x = studies.get(k) ?? { study: from.study, ...(from.studyId ? { studyId: from.studyId } : {}), retrain: from.retrain, runs: 0 };
      x.runs++;
      studies.set(k, x);
    }
  }
  return { machines: [...machines.values()].sort((a, b) => b.runs - a.runs), unrecorded, fromOtherStudies: [...studies.values()] };
}

/** The lines a retraining's (or a fidelity measurement's) table adds about where its runs were made: only when they were not all made alike, here. */
export function provenanceNotes(p: RetrainProvenance): string[] {
  const notes: string[] = [];
  if (p.machines.length > 1) {
    const what = (m: RetrainProvenance['machines'][number]) => [m.device ?? 'an unrecorded device', m.backend, m.products].filter(Boolean).join(', ');
    const backends = new Set(p.machines.map((m) => m.backend)).size;
    notes.push(
      `machines: the runs were made on ${p.machines.length} set-ups (${p.machines.map((m) => `${m.runs} on ${what(m)}`).join('; ')}${p.unrecorded ? `; ${p.unrecorded} recorded none` : ''}); ` +
        `the same run made on two of them can differ slightly (floating-point sums in another order)${backends > 1 ? ', and more between backends' : ''}.`,
    );
  }
  if (p.fromOtherStudies.length) {
    notes.push(`reused: ${p.fromOtherStudies.map((x) => `${x.runs} run${x.runs === 1 ? '' : 's'} of ${x.study}'s retraining ${x.retrain}`).join(', ')} (the same program, seed and settings).`);
  }
  return notes;
}

/** A retraining's table as text cells, with the lines above and below it. */
export interface RetrainTable {
  title: string;
  columns: string[];
  rows: Array<{ program: number; candidate: number | null; cells: string[] }>;
  notes: string[];
  /** Who won, or why there is no winner yet. */
  end: string;
}

function retrainTable(r: Omit<RetrainSummary, 'table'>): RetrainTable {
  const n = r.seeds.length;
  const many = n > 1;
  const ref = r.referenceProgram === 0 ? 'seed' : r.reference;
  const theRef = r.referenceProgram === 0 ? 'the seed' : r.reference;
  // (studies from before the score was recorded have none: no column)
  const scored = r.rows.some((x) => x.inContext);
  const columns = ['program', 'search ppl', 'params', 'steps', many ? 'perplexity (mean ± sd)' : 'perplexity', speedupHeader(ref, n), ...(many ? [differenceHeader(ref, n)] : []), ...(scored ? [many ? 'in-context (mean ± sd)' : 'in-context'] : [])];
  const rows = r.rows.map((x) => ({
    program: x.program,
    candidate: x.candidate,
    cells: [
      x.label,
      x.searchFitness === null ? '-' : x.searchFitness.toFixed(2),
      x.parameters === null ? '-' : Math.round(x.parameters).toLocaleString('en-US'),
      x.steps === null ? '-' : Math.round(x.steps).toLocaleString('en-US'),
      x.perplexity === undefined ? (x.runs ? 'failed' : '-') : `${x.perplexity.mean.toFixed(2)}${many ? ` ± ${x.perplexity.sd.toFixed(2)}` : ''}${x.completed < n ? ` (${x.completed} of ${n} seeds)` : ''}`,
      x.program === r.referenceProgram ? (x.perplexity ? (many ? '1.00x' : '1.00x (reference)') : '-') : speedupCell(x),
      ...(many ? [x.program === r.referenceProgram ? '(reference)' : differenceCell(x)] : []),
      // (over the seeds that recorded one, said as the perplexity column says its seeds)
      ...(scored ? [x.inContext ? `${x.inContext.mean.toFixed(3)}${many ? ` ± ${x.inContext.sd.toFixed(3)}` : ''}${x.inContext.n < n ? ` (${x.inContext.n} of ${n} seeds)` : ''}` : '-'] : []),
    ],
  }));
  const chosen = r.front ? `the ${r.rows.filter((x) => x.candidate !== null && x.candidate !== 0).length} programs of the Pareto front` : `the ${r.top} best program${r.top === 1 ? '' : 's'}`;
  // (--top 0: the seed alone, beside references)
  const searched = r.front || r.top !== 0 ? ` and ${chosen} of the search` : '';
  const title = `retraining ${r.id}: the seed${searched}${r.rows.some((x) => x.candidate === null) ? ', with references' : ''} · ${r.budget} per run · seed${many ? 's' : ''} ${r.seeds.join(', ')} · ${r.done} of ${r.total} runs recorded`;
  const w = r.winner;
  // programs left out of the winner's race because a seed failed: said, whatever their mean
  const partial = r.rows.filter((x) => x.perplexity && x.completed < n);
  const incomplete = partial.length
    ? ` Left out for failing at a seed: ${partial.map((x) => `${x.label} (${x.perplexity!.mean.toFixed(2)} over the ${x.completed} of ${n} seeds it completed)`).join(', ')}.`
    : '';
  const ppl = (st: SeedStatistics) => `perplexity ${st.mean.toFixed(2)}${many ? ` ± ${st.sd.toFixed(2)}` : ''}`;
  const end =
    r.done < r.total
      ? 'not finished: continue it by running the same primer study retrain command again.'
      : !w
        ? 'no program completed every seed.'
        : w.isReference
          ? `winner: ${theRef} itself (${ppl(w.perplexity)}): no other program that completed every seed has a lower mean perplexity.${incomplete}`
          : `winner: ${w.label} (${ppl(w.perplexity)}), the lowest mean perplexity of the programs that completed every seed; ${
              !w.verdict
                ? `${n < 3 ? `${n} seed${n === 1 ? '' : 's'}: too few to say whether` : 'not every seed completed, so no interval says whether'} it differs from ${theRef} beyond the noise`
                : w.verdict === 'better'
                  ? `lower than ${theRef}'s beyond the noise`
                  : w.verdict === 'within the noise'
                    ? `its difference from ${theRef} is within the noise`
                    : `yet higher than ${theRef}'s beyond the noise`
            }.${incomplete}`;
  const inContextNote = `in-context: ${OBJECTIVES.in_context!.description.replace(/^the in-context score /, 'the score ')}${many ? ', mean ± sd over the seeds' : ''}.`;
  return { title, columns, rows, notes: [...comparisonNotes(theRef, r.axis, n), ...(scored ? [inContextNote] : []), ...provenanceNotes(r.provenance)], end };
}

function inContextOf(done: RetrainRun[]): Pick<RetrainRow, 'inContext'> {
  const scores = done.map((r) => OBJECTIVES.in_context!.value(r)).filter((x): x is number => x !== undefined);
  return scores.length ? { inContext: seedStatistics(scores) } : {};
}

/**
 * The leaderboard of a retraining: for each program, mean and standard deviation of its final
 * perplexity over the seeds, its speedup over the reference (`against`, an index into the plan's
 * programs: by default programs[0], the study's seed; e.g. a reference model such as Primer-EZ)
 * (geometric mean, 95% interval on the log scale), and whether its final perplexity differs from
 * the reference's beyond the noise. Speedups are in the budget's own measure (comparison.ts).
 */
export function summarizeRetrain(plan: RetrainPlan, runs: RetrainRun[], against = 0): RetrainSummary {
  if (!Number.isInteger(against) || against < 0 || against >= Math.max(plan.programs.length, 1)) {
    throw new RangeError(`retraining ${plan.id} has no program ${against} to measure against (it has ${plan.programs.length})`);
  }
  const axis = speedupAxisOf(plan.settings.budget);
  const mine = runs.filter((r) => r.retrain === plan.id);
  const at = (program: number, seed: number) => mine.find((r) => r.program === program && r.seed === seed);
  const loss = (r: RetrainRun) => r.curve.map((e) => ({ seconds: e.seconds, flops: e.flops, step: e.step, tokens: e.tokens, loss: Math.log(e.perplexity) }));
  const completed = (r?: RetrainRun) => (r?.status === 'completed' && r.fitness !== null ? { curve: loss(r), perplexity: r.fitness } : undefined);
  const vocabulary = mine.find((r) => r.vocabSize)?.vocabSize ?? undefined;
  const rows = plan.programs.map((p, program): RetrainRow => {
    const own = plan.seeds.map((seed) => at(program, seed)).filter((r): r is RetrainRun => r !== undefined);
    const done = own.filter((r) => r.status === 'completed' && r.fitness !== null);
    // the untrained start: a uniform guess over the vocabulary
    // (without a recorded vocabulary, speedups cannot be measured; the perplexity differences still are)
    const c = comparePaired(plan.seeds.map((seed) => ({ seed, reference: completed(at(against, seed)), program: completed(at(program, seed)) })), axis, vocabulary ? Math.log(vocabulary) : NaN);
    const mineToo = program !== against;
    return {
      program,
      label: p.label,
      candidate: p.candidate,
      searchFitness: p.searchFitness,
      runs: own.length,
      completed: done.length,
      failed: own.length - done.length,
      parameters: own.find((r) => r.parameters !== null)?.parameters ?? null,
      // (a failed run's steps are where it stopped, not the budget's)
      steps: done.length ? done.reduce((a, r) => a + r.steps, 0) / done.length : null,
      perplexity: done.length ? seedStatistics(done.map((r) => r.fitness!)) : undefined,
      ...inContextOf(done),
      paired: c.paired,
      speedup: mineToo ? c.speedup : undefined,
      notReached: mineToo ? c.notReached : 0,
      unmeasured: mineToo ? c.unmeasured : 0,
      perplexityDifference: mineToo ? c.perplexityDifference : undefined,
      verdict: mineToo ? c.verdict : undefined,
    };
  });
  const total = plan.programs.length * plan.seeds.length;
  const done = rows.reduce((a, r) => a + r.runs, 0);
  const complete = rows.filter((r) => r.completed === plan.seeds.length && r.perplexity);
  const best = done === total && complete.length ? complete.reduce((a, b) => (b.perplexity!.mean < a.perplexity!.mean ? b : a)) : undefined;
  const summary: Omit<RetrainSummary, 'table'> = {
    id: plan.id,
    top: plan.top,
    ...(plan.front ? { front: true } : {}),
    budget: plan.budget,
    seeds: plan.seeds,
    axis,
    done,
    total,
    reference: plan.programs[against]?.label ?? '-',
    referenceProgram: against,
    rows,
    winner: best && { program: best.program, label: best.label, perplexity: best.perplexity!, verdict: best.verdict, isReference: best.program === against },
    provenance: retrainProvenance(mine),
  };
  return { ...summary, table: retrainTable(summary) };
}
