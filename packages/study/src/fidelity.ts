// How faithfully a cheap search's fitness predicts a longer run's (issue: search fidelity): rank
// correlations between two measurements of the same programs, with a bootstrap interval, and
// how much of the top is kept. Lower fitness (perplexity) is better throughout.
import { Rng } from '@primer-search/core';
import type { RetrainPlan, RetrainProgram, RetrainRun } from './records.js';
import { provenanceNotes, retrainProvenance, type RetrainProvenance } from './retrain.js';

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

/**
 * Which of `count` programs, sorted best first by search fitness, a fidelity measurement of
 * `size` retrains: spread evenly over the ranks (the quantiles of the search's range), the best
 * (index 0) always in, and `seed` (its index, if it is among them) always in. Returns sorted
 * indices; deterministic: the same list for the same arguments.
 */
export function fidelitySample(count: number, size: number, seed?: number): number[] {
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be a non-negative integer (got ${count})`);
  if (!Number.isInteger(size) || size < 2) throw new RangeError(`a fidelity sample needs at least 2 programs (got ${size})`);
  if (seed !== undefined && (!Number.isInteger(seed) || seed < 0 || seed >= count)) throw new RangeError(`the seed's index ${seed} is not among the ${count} programs`);
  if (size >= count) return Array.from({ length: count }, (_, i) => i);
  // the quantile positions: 0 (the best) ... count-1 (the worst)
  const targets = Array.from({ length: size }, (_, j) => (j * (count - 1)) / (size - 1));
  const chosen = new Set<number>([0]);
  const taken = new Set<number>([0]);
  if (seed !== undefined && seed !== 0) {
    // the seed takes the place of the quantile nearest it (not the best's)
    let best = 1;
    for (let j = 1; j < size; j++) if (Math.abs(targets[j]! - seed) < Math.abs(targets[best]! - seed)) best = j;
    chosen.add(seed);
    taken.add(best);
  }
  for (let j = 0; j < size; j++) {
    if (taken.has(j)) continue;
    // the unused program nearest the target (the better one on a tie)
    let pick = -1;
    for (let i = 0; i < count; i++) {
      if (chosen.has(i)) continue;
      if (pick < 0 || Math.abs(i - targets[j]!) < Math.abs(pick - targets[j]!)) pick = i;
    }
    chosen.add(pick);
  }
  return [...chosen].sort((a, b) => a - b);
}

/** One program of a fidelity measurement with both fitnesses. */
export interface FidelityPoint {
  program: number;
  label: string;
  candidate: number;
  /** Its validation perplexity in the search. */
  searchFitness: number;
  /** Its final validation perplexity at the longer budget, the mean over the seeds (each completed). */
  retrained: number;
  /** The standard deviation of that over the seeds (0 with one seed). */
  sd: number;
  /** Ranks among the measured programs, 1 = the best (ties averaged). */
  searchRank: number;
  retrainedRank: number;
}

export interface FidelitySummary {
  id: number;
  /** The programs asked for (`--sample`), and how many the plan holds (fewer when the study had fewer). */
  sample: number;
  budget: string;
  seeds: number[];
  done: number;
  total: number;
  /** Programs with a search fitness that completed every seed: the statistics are over these. */
  points: FidelityPoint[];
  /** Programs of the plan left out of the statistics, and why. */
  left: Array<{ label: string; reason: string }>;
  spearman?: { rho: number; interval?: [number, number] };
  kendall?: number;
  /** The share of the k best by search that are among the k best retrained (only k below the number of programs). */
  top: Array<{ k: number; overlap: number }>;
  /**
   * Spearman's rho between the first two seeds' perplexities of the same programs at the longer
   * budget: how well the long run agrees with itself, a ceiling for the proxy's rho.
   */
  seedAgreement?: number;
  /** The programs whose rank moved most between the search and the longer run (largest first, at most 5). */
  moved: FidelityPoint[];
  /** Where its runs were made: by machine, and which were copied from another study's retraining. */
  provenance: RetrainProvenance;
  /** What the CLI prints and the dashboard shows. */
  table: { title: string; columns: string[]; rows: Array<{ program: number; candidate: number; cells: string[] }>; notes: string[]; end: string };
}

/** What a fidelity summary reads of a run and of a plan (records.ts's, as the store gives them). */
type FidelityRun = Pick<RetrainRun, 'retrain' | 'program' | 'seed' | 'status' | 'fitness' | 'reason'> & Partial<Pick<RetrainRun, 'environment' | 'backend' | 'reusedFrom'>>;
type FidelityPlan = Pick<RetrainPlan, 'id' | 'sample' | 'budget' | 'seeds'> & { programs: Array<Pick<RetrainProgram, 'label' | 'candidate' | 'searchFitness'>> };

const signed = (x: number) => `${x > 0 ? '+' : ''}${x}`;

/** In words, what a rank correlation with its interval says of a proxy. */
export function fidelityVerdict(rho: number, interval?: [number, number], programs = 0): string {
  if (!Number.isFinite(rho)) return 'no rank correlation can be measured (one side is constant)';
  if (!interval) {
    return programs >= 4
      ? `rho ${rho.toFixed(2)}, with no interval: too many ties (most bootstrap resamples had one side constant)`
      : `rho ${rho.toFixed(2)} from too few programs for an interval (4 or more are needed)`;
  }
  const [lo, hi] = interval;
  if (lo >= 0.8) return "the search's order predicts the longer run's well";
  if (lo >= 0.5) return "the search's order predicts the longer run's largely, not surely well (the interval reaches below 0.8)";
  if (lo > 0) return "the search's order predicts the longer run's only in part: better than chance, far from faithful";
  if (hi < 0) return "the search's order is reversed at the longer budget: the proxy rewards what loses later";
  return "no evidence that the search's order predicts the longer run's (the interval contains 0)";
}

/**
 * How faithfully a search's fitness predicted a longer run's, from a fidelity measurement's plan
 * and runs: over the sampled programs that completed every seed, Spearman's rho (with a
 * seeded bootstrap interval), Kendall's tau-b, the overlap of the top 5 and top 10, the seeds'
 * agreement with each other, and the programs whose rank moved most.
 */
export function summarizeFidelity(recorded: FidelityPlan, allRuns: FidelityRun[]): FidelitySummary {
  // a study's record is data: lists that are not lists count as empty
  const plan = { ...recorded, seeds: Array.isArray(recorded.seeds) ? recorded.seeds : [], programs: Array.isArray(recorded.programs) ? recorded.programs : [] };
  const runs = allRuns.filter((r) => r.retrain === plan.id);
  const left: FidelitySummary['left'] = [];
  const raw: Array<Omit<FidelityPoint, 'searchRank' | 'retrainedRank'> & { bySeed: number[] }> = [];
  let done = 0;
  plan.programs.forEach((p, program) => {
    const own = plan.seeds.map((seed) => runs.find((r) => r.program === program && r.seed === seed));
    done += own.filter(Boolean).length;
    if (p.candidate === null || p.searchFitness === null || !Number.isFinite(p.searchFitness)) {
      left.push({ label: p.label, reason: p.candidate === null ? 'a reference, not a candidate of the search' : 'did not complete the search budget' });
      return;
    }
    const missing = own.filter((r) => r === undefined).length;
    const failed = own.filter((r): r is FidelityRun => r !== undefined && (r.status !== 'completed' || r.fitness === null || !Number.isFinite(r.fitness)));
    if (failed.length) {
      left.push({ label: p.label, reason: `failed at the longer budget (seed ${plan.seeds[own.indexOf(failed[0])]}: ${failed[0]!.reason ?? 'no perplexity'})` });
      return;
    }
    if (missing) {
      left.push({ label: p.label, reason: `${missing} of ${plan.seeds.length} runs not yet trained` });
      return;
    }
    const bySeed = own.map((r) => r!.fitness!);
    const mean = bySeed.reduce((a, x) => a + x, 0) / bySeed.length;
    const sd = bySeed.length > 1 ? Math.sqrt(bySeed.reduce((a, x) => a + (x - mean) ** 2, 0) / (bySeed.length - 1)) : 0;
    raw.push({ program, label: p.label, candidate: p.candidate, searchFitness: p.searchFitness, retrained: mean, sd, bySeed });
  });
  const a = raw.map((x) => x.searchFitness);
  const b = raw.map((x) => x.retrained);
  const ra = averageRanks(a);
  const rb = averageRanks(b);
  const points: FidelityPoint[] = raw.map(({ bySeed: _s, ...x }, i) => ({ ...x, searchRank: ra[i]!, retrainedRank: rb[i]! }));
  const n = points.length;
  const spearmanResult = n >= 2 ? spearmanWithInterval(a, b, 2000, plan.id) : undefined;
  const kendall = n >= 2 ? kendallTauB(a, b) : undefined;
  const top = [5, 10].filter((k) => k < n).map((k) => ({ k, overlap: topOverlap(a, b, k) }));
  const seedAgreement = plan.seeds.length >= 2 && n >= 2 ? spearman(raw.map((x) => x.bySeed[0]!), raw.map((x) => x.bySeed[1]!)) : undefined;
  const moved = [...points].sort((p, q) => Math.abs(q.retrainedRank - q.searchRank) - Math.abs(p.retrainedRank - p.searchRank) || p.searchRank - q.searchRank).filter((p) => p.retrainedRank !== p.searchRank).slice(0, 5);
  const total = plan.programs.length * plan.seeds.length;
  const many = plan.seeds.length > 1;
  const waiting = left.filter((x) => /not yet trained$/.test(x.reason));
  // while runs are still to come: the first seed's picture alone, said to be provisional
  let provisional: string | undefined;
  if (waiting.length && plan.seeds.length > 1) {
    const firstSeed = plan.programs
      .map((p, program) => ({ p, r: runs.find((r) => r.program === program && r.seed === plan.seeds[0]) }))
      .filter((x) => x.p.candidate !== null && typeof x.p.searchFitness === 'number' && Number.isFinite(x.p.searchFitness) && x.r?.status === 'completed' && typeof x.r.fitness === 'number' && Number.isFinite(x.r.fitness));
    if (firstSeed.length >= 2) {
      const rho = spearman(firstSeed.map((x) => x.p.searchFitness!), firstSeed.map((x) => x.r!.fitness!));
      provisional = `provisional, while runs are to come: over seed ${plan.seeds[0]} alone, Spearman's rho ${rho.toFixed(2)} over ${firstSeed.length} programs.`;
    }
  }
  const rank = (r: number) => (Number.isInteger(r) ? `${r}` : r.toFixed(1));
  const table: FidelitySummary['table'] = {
    title: `fidelity ${plan.id}: ${plan.programs.length} programs spread over the search's range · ${plan.budget} per run · seed${many ? 's' : ''} ${plan.seeds.join(', ')} · ${done} of ${total} runs recorded`,
    columns: ['program', 'search ppl', 'search rank', many ? 'retrained ppl (mean ± sd)' : 'retrained ppl', 'retrained rank', 'moved'],
    rows: [...points]
      .sort((p, q) => p.searchRank - q.searchRank || p.program - q.program)
      .map((p) => ({
        program: p.program,
        candidate: p.candidate,
        cells: [p.label, p.searchFitness.toFixed(2), rank(p.searchRank), `${p.retrained.toFixed(2)}${many ? ` ± ${p.sd.toFixed(2)}` : ''}`, rank(p.retrainedRank), p.retrainedRank === p.searchRank ? '0' : signed(Number((p.searchRank - p.retrainedRank).toFixed(1)))],
      })),
    notes: [
      'moved: places gained (+) or lost (-) from the search to the longer run; lower perplexity ranks first.',
      ...left.filter((x) => !/not yet trained$/.test(x.reason)).map((x) => `left out: ${x.label}, ${x.reason}.`),
      ...(waiting.length ? [`not yet measured: ${waiting.map((x) => `${x.label} (${x.reason.replace(/ runs? not yet trained$/, '')} runs to go)`).join(', ')}.`] : []),
    ],
    end: '',
  };
  if (provisional) table.notes.push(provisional);
  const provenance = retrainProvenance(runs);
  table.notes.push(...provenanceNotes(provenance));
  if (n < 2) table.end = `${n} program${n === 1 ? '' : 's'} measured: nothing to correlate yet.`;
  else {
    const s = spearmanResult!;
    const lines = [
      `Spearman's rho ${s.rho.toFixed(2)}${s.interval ? ` [${s.interval[0].toFixed(2)}, ${s.interval[1].toFixed(2)}] (bootstrap 95%)` : ''}, Kendall's tau ${kendall!.toFixed(2)}, over ${n} programs: ${fidelityVerdict(s.rho, s.interval, n)}.`,
      ...(top.length ? [`top-k kept: ${top.map((t) => `${Math.round(t.overlap * t.k)} of the search's best ${t.k} are among the longer run's best ${t.k}`).join('; ')}.`] : []),
      ...(seedAgreement !== undefined ? [`the longer run against itself (seed ${plan.seeds[0]} against seed ${plan.seeds[1]}): rho ${seedAgreement.toFixed(2)}, a ceiling for the proxy's.`] : []),
      ...(moved.length ? [`moved most: ${moved.map((p) => `${p.label} (search rank ${rank(p.searchRank)}, retrained ${rank(p.retrainedRank)})`).join(', ')}.`] : []),
    ];
    table.end = lines.join('\n');
  }
  return { id: plan.id, sample: plan.sample ?? plan.programs.length, budget: plan.budget, seeds: plan.seeds, done, total, points, left, spearman: spearmanResult, kendall, top, seedAgreement, moved, provenance, table };
}
