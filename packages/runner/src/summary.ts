import type { CandidateView, EvaluationRecord, StudyStore } from '@primer-search/store';
import { firstFront } from '@primer-search/search-strategies';
import { OBJECTIVES, failureCategory, objectiveVector, trainingRecorded, summarizeFidelity, summarizeRetrain, type FidelitySummary, type RetrainPlan, type RetrainSummary, type StudyConfig } from '@primer-search/study';
import { SearchError } from './search.js';

export interface LeaderboardEntry {
  id: number;
  hash: string;
  parent: number | null;
  /** Validation perplexity after the full budget. */
  fitness: number;
  steps: number;
  parameters: number | null;
  /** The mutations that made it from its parent. */
  mutations: string[];
}

/** What a study holds, computed from the store alone (for `study show` and the end of a search). */
export interface StudySummary {
  location: string;
  config: StudyConfig;
  /** Candidates proposed, and how many of them the strategy has been told. */
  candidates: number;
  told: number;
  /**
   * Trainings recorded (`trainingRecorded`: one per distinct program that did not compute the
   * same function as one trained before; not programs refused before their first step, e.g.
   * outside a constraint, nor pool failures that recorded nothing, e.g. a timeout).
   */
  trained: number;
  /** Candidates whose program had been evaluated before, so not trained again. */
  reused: number;
  /**
   * Programs not trained because an earlier program computes the same function (behaviour
   * de-duplication), and the training seconds that saved (what their equivalents took).
   */
  equivalent: { programs: number; trainSecondsSaved: number };
  completed: number;
  failed: number;
  failuresByReason: Record<string, number>;
  /** Candidates stopped at each hurdle. */
  stoppedAtHurdle: number[];
  /** Budget fractions saved by stopping at hurdles, in whole candidate budgets, and as a share of what full training would have cost. */
  hurdleSavings: { budgets: number; share: number };
  trainSeconds: number;
  wallSeconds: number;
  seed: { fitness: number | null; status: string | null };
  leaderboard: LeaderboardEntry[];
  /** Ids from the seed to the best candidate. */
  bestLineage: number[];
  /** Where the trainings ran: one row per host, backend and processor, in order of first result. */
  machines: MachineSummary[];
  /** The study's retrainings (primer study retrain), oldest first. */
  retrains: RetrainSummary[];
  /** The study's fidelity measurements (primer study fidelity), oldest first. */
  fidelity: FidelitySummary[];
  /** Candidates whose trained weights the study keeps (primer search --keep-weights), best first. */
  keptWeights: number[];
  /** A search with several objectives: its Pareto front over the distinct programs that completed their budget. */
  front?: ParetoFront;
}

export interface ParetoFront {
  /** The study's objectives, in its order (perplexity among them). */
  objectives: string[];
  /** The programs no other completed program dominates (lower perplexity first), with each objective's value as measured (not negated). */
  members: Array<{ id: number; values: number[] }>;
  /** Every completed distinct program's values (the front's members too), for drawing the front against the rest. */
  points: Array<{ id: number; values: number[] }>;
}

/** The Pareto front of the completed distinct programs of a study (each by its first candidate) over `objectives`. */
export function paretoFront(candidates: CandidateView[], objectives: string[]): ParetoFront {
  const seen = new Set<string>();
  const points: ParetoFront['points'] = [];
  const minimised: number[][] = [];
  for (const c of candidates) {
    const e = c.evaluation;
    if (seen.has(c.hash) || e?.status !== 'completed' || e.sameAs || e.candidate !== c.id) continue;
    seen.add(c.hash);
    const v = objectiveVector(e, objectives);
    if (!v) continue;
    minimised.push(v);
    points.push({ id: c.id, values: objectives.map((n, k) => (OBJECTIVES[n]!.direction === 'min' ? v[k]! : -v[k]!)) });
  }
  const onFront = new Set(firstFront(minimised));
  const p = Math.max(0, objectives.indexOf('perplexity'));
  const members = points.filter((_, i) => onFront.has(i)).sort((a, b) => a.values[p]! - b.values[p]! || a.id - b.id);
  return { objectives, members, points };
}

export interface MachineSummary {
  host: string;
  /** Null for results recorded before environments were (then only the host and backend are known). */
  backend: string | null;
  /** What ran the products (null where not recorded). */
  products: string | null;
  device: string | null;
  evaluations: number;
  trainSeconds: number;
  /** Training steps per second of training time. */
  stepsPerSecond: number;
  /** Results sent by a worker that joined with --allow-mixed-hardware. */
  mixedHardware: number;
}

/** Where the study's programs were trained, by machine and backend (a program refused before its first step, e.g. over the memory limit, was trained nowhere). */
export function machinesOf(evaluations: EvaluationRecord[]): MachineSummary[] {
  const rows = new Map<string, MachineSummary & { steps: number }>();
  for (const e of evaluations) {
    if (!trainingRecorded(e)) continue;
    const host = e.environment?.host ?? e.machine;
    const backend = e.environment?.backend ?? e.backend;
    const device = e.environment?.device ?? null;
    const products = e.environment?.products ?? null;
    const key = JSON.stringify([host, backend, products, device]);
    const r = rows.get(key) ?? { host, backend, products, device, evaluations: 0, trainSeconds: 0, stepsPerSecond: 0, mixedHardware: 0, steps: 0 };
    r.evaluations++;
    r.trainSeconds += e.trainSeconds;
    r.steps += e.steps;
    if (e.environment?.mixedHardware) r.mixedHardware++;
    rows.set(key, r);
  }
  return [...rows.values()].map(({ steps, ...r }) => ({ ...r, stepsPerSecond: r.trainSeconds > 0 ? steps / r.trainSeconds : 0 }));
}

/**
 * `read`: the study's candidates and evaluations when the caller has just read them (else they are
 * read here). `against`: a program's label (e.g. `primer-ez`) that each retraining holding it is
 * measured against instead of its seed.
 */
export async function summarizeStudy(store: StudyStore, top = 10, read?: { candidates: CandidateView[]; evaluations: EvaluationRecord[] }, against?: string): Promise<StudySummary> {
  const config = (await store.config()) as StudyConfig | undefined;
  if (!config) throw new SearchError(`${store.location} holds no study`);
  const candidates = read?.candidates ?? (await store.candidates());
  const all = read?.evaluations ?? (await store.evaluations());
  // results reused from an equivalent program were not trained: they count as savings, not as trainings
  const evaluations = all.filter((e) => !e.sameAs);
  const equivalents = all.filter((e) => e.sameAs);
  const byId = new Map<number, CandidateView>(candidates.map((c) => [c.id, c]));
  const failuresByReason: Record<string, number> = {};
  const stoppedAtHurdle = config.hurdles.map(() => 0);
  let saved = 0;
  let fullCost = 0;
  for (const e of evaluations) {
    if (e.status === 'failed') {
      const k = failureCategory(e.reason ?? '');
      failuresByReason[k] = (failuresByReason[k] ?? 0) + 1;
    } else {
      fullCost += 1;
      if (e.status === 'hurdle' && e.hurdle !== null) {
        stoppedAtHurdle[e.hurdle] = (stoppedAtHurdle[e.hurdle] ?? 0) + 1;
        saved += 1 - (config.hurdles[e.hurdle] ?? 0);
      }
    }
  }
  const completed = (e: EvaluationRecord | null): e is EvaluationRecord => e?.status === 'completed' && e.fitness !== null;
  // one row per program: the first candidate that had it
  const seen = new Set<string>();
  const leaderboard: LeaderboardEntry[] = [];
  for (const c of candidates) {
    // a program computing the same function as an earlier one is that one's row
    if (seen.has(c.hash) || !completed(c.evaluation) || c.evaluation.sameAs) continue;
    seen.add(c.hash);
    leaderboard.push({
      id: c.id,
      hash: c.hash,
      parent: c.parent,
      fitness: c.evaluation.fitness!,
      steps: c.evaluation.steps,
      parameters: c.evaluation.parameters,
      mutations: (c.mutations as Array<{ description?: string }>).map((m) => m.description ?? JSON.stringify(m)),
    });
  }
  leaderboard.sort((a, b) => a.fitness - b.fitness || a.id - b.id);
  const lineage: number[] = [];
  // (the stores refuse a parent that is not an earlier candidate; a seen id ends the walk all the same)
  for (let id: number | null = leaderboard[0]?.id ?? null; id !== null && !lineage.includes(id); id = byId.get(id)?.parent ?? null) lineage.unshift(id);
  const seed = byId.get(0)?.evaluation ?? null;
  return {
    location: store.location,
    config,
    candidates: candidates.length,
    told: candidates.filter((c) => c.told).length,
    trained: evaluations.filter(trainingRecorded).length,
    reused: candidates.filter((c) => c.reused).length,
    completed: evaluations.filter((e) => e.status === 'completed').length,
    failed: evaluations.filter((e) => e.status === 'failed').length,
    failuresByReason,
    stoppedAtHurdle,
    hurdleSavings: { budgets: saved, share: fullCost > 0 ? saved / fullCost : 0 },
    trainSeconds: evaluations.reduce((s, e) => s + e.trainSeconds, 0),
    wallSeconds: evaluations.reduce((s, e) => s + e.wallSeconds, 0),
    seed: { fitness: seed?.fitness ?? null, status: seed?.status ?? null },
    leaderboard: leaderboard.slice(0, top),
    bestLineage: lineage,
    machines: machinesOf(evaluations),
    equivalent: { programs: equivalents.length, trainSecondsSaved: equivalents.reduce((s, e) => s + e.trainSeconds, 0) },
    ...(await retrainSummaries(store, against)),
    keptWeights: await keptWeightsOf(store, evaluations),
    // (a study's record is data: objectives that are not a list of known names give no front)
    ...(Array.isArray(config.objectives) && config.objectives.length > 1 && config.objectives.every((n) => typeof n === 'string' && Object.hasOwn(OBJECTIVES, n))
      ? { front: paretoFront(candidates, config.objectives) }
      : {}),
  };
}

async function keptWeightsOf(store: StudyStore, evaluations: EvaluationRecord[]): Promise<number[]> {
  // (a role without access to the weights, e.g. one granted before schema 4, sees none)
  const kept = new Set(await store.weightHashes().catch(() => [] as string[]));
  return evaluations
    .filter((e) => kept.has(e.hash))
    .sort((a, b) => (a.fitness ?? Infinity) - (b.fitness ?? Infinity) || a.candidate - b.candidate)
    .map((e) => e.candidate);
}

async function retrainSummaries(store: StudyStore, against?: string): Promise<{ retrains: RetrainSummary[]; fidelity: FidelitySummary[] }> {
  const plans = await store.retrains();
  if (plans.length === 0) return { retrains: [], fidelity: [] };
  const runs = await store.retrainRuns();
  // a study's record is data: a plan whose programs are not a list has none to measure against
  const index = (p: RetrainPlan) => (against === undefined || !Array.isArray(p.programs) ? -1 : p.programs.findIndex((x) => x?.label === against));
  return {
    retrains: plans.filter((p) => p.sample === undefined).map((p) => summarizeRetrain(p, runs, Math.max(0, index(p)))),
    fidelity: plans.filter((p) => p.sample !== undefined).map((p) => summarizeFidelity(p, runs)),
  };
}
