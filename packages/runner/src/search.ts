import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { PrimerError } from '@primer-search/core';
import type { Dna, Mutation } from '@primer-search/dna';
import { strategies, type Candidate, type Outcome } from '@primer-search/search-strategies';
import type { CandidateRecord, EvaluationRecord, StudyStore } from '@primer-search/store';
import { planBlock } from '@primer-search/compiler';
import {
  constraintFailure,
  decodeWeights,
  failedResult,
  formatBudget,
  objectiveVector,
  parseConstraint,
  parseObjectives,
  weightsFromBase64,
  isEnvironmentFailure,
  isEquivalent,
  pluginIdentity,
  studyKey,
  studyPluginRefusal,
  type ConstrainedQuantity,
  type EvaluationJob,
  type JobOutcome,
  type JobProgress,
  type RunSettings,
  type StudyConfig,
} from '@primer-search/study';
import { isInterruption, stoppingWithin, type EvaluationPool } from './pool.js';
import { importPlugins } from './plugins.js';


export type SearchEvent =
  | { type: 'started'; resumed: boolean; told: number; config: StudyConfig }
  | { type: 'dispatched'; candidate: number }
  | { type: 'progress'; progress: JobProgress }
  | { type: 'evaluated'; candidate: number; result: EvaluationRecord; wallSeconds: number }
  | { type: 'told'; candidate: number; told: number; reused: boolean; outcome: Outcome; sameAs?: string | null };

export class SearchError extends PrimerError {
  constructor(message: string) {
    super('SEARCH', message);
  }
}

/**
 * The outcome a strategy is told for a finished evaluation; with several `objectives` (the
 * study's), their values too, each minimised (`objectiveVector`; left out when one is unknown).
 */
export function outcomeOf(e: EvaluationRecord, objectives: string[] = []): Outcome {
  const values = objectives.length > 1 && e.status !== 'failed' ? objectiveVector(e, objectives) : undefined;
  const extra = values ? { objectives: values } : {};
  if (e.status === 'completed') return { status: 'completed', fitness: e.fitness!, ...extra };
  if (e.status === 'hurdle') return { status: 'hurdle', hurdle: e.hurdle!, fitness: e.fitness!, ...extra };
  return { status: 'failed', reason: e.reason ?? 'failed' };
}

/**
 * What the constraints bound, for `dna` at a study's settings, from the compiler's estimate of
 * its blocks (no weights made): undefined for a program that cannot be planned (its training
 * will say why).
 */
export function constrainedEstimate(dna: unknown, settings: Pick<RunSettings, 'dModel' | 'seqLen' | 'layers'>): Record<ConstrainedQuantity, number> | undefined {
  try {
    const e = planBlock(dna, { dModel: settings.dModel, seqLen: settings.seqLen }).estimate;
    return { block_parameters: settings.layers * e.parameters, block_flops_per_token: settings.layers * e.forwardFlopsPerToken };
  } catch {
    return undefined;
  }
}

/** Imports plugin modules, naming the one that fails to load. */
export async function loadPlugins(specifiers: string[]): Promise<void> {
  await importPlugins(specifiers, (p, why) => {
    throw new SearchError(`cannot load the plugin ${p}: ${why}`);
  });
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * The perplexity to beat at each hurdle: the median, over the distinct programs told so far,
 * of the perplexity each reached there. A program proposed again counts once, so repeats do
 * not pull the median toward themselves. Null until `hurdleMinSamples` programs reached it.
 */
export function hurdleThresholds(
  toldHashes: string[],
  evaluations: ReadonlyMap<string, Pick<EvaluationRecord, 'atHurdles'>>,
  config: Pick<StudyConfig, 'hurdles' | 'hurdleMinSamples'>,
): Array<number | null> {
  const programs = [...new Set(toldHashes)];
  return config.hurdles.map((_, k) => {
    const values: number[] = [];
    for (const hash of programs) {
      const v = evaluations.get(hash)?.atHurdles[k];
      if (typeof v === 'number' && Number.isFinite(v)) values.push(v);
    }
    return values.length >= config.hurdleMinSamples ? median(values) : null;
  });
}

const asCandidate = (r: CandidateRecord): Candidate => ({
  id: r.id,
  dna: r.dna as Dna,
  hash: r.hash,
  parent: r.parent ?? undefined,
  mutations: r.mutations as Mutation[],
});

/** Checks a study configuration, naming the field at fault. */
export function checkStudyConfig(c: StudyConfig): void {
  const bad = (field: string, why: string) => {
    throw new SearchError(`study configuration: ${field} ${why}`);
  };
  if (!Number.isInteger(c.candidates) || c.candidates < 1) bad('candidates', `must be a positive integer (got ${c.candidates})`);
  if (!Number.isInteger(c.inFlight) || c.inFlight < 1) bad('inFlight', `must be a positive integer (got ${c.inFlight})`);
  if (c.hurdles.some((f) => !(f > 0 && f < 1))) bad('hurdles', `must be fractions between 0 and 1 (got ${c.hurdles.join(', ')})`);
  if ([...c.hurdles].sort((a, b) => a - b).join() !== c.hurdles.join() || new Set(c.hurdles).size !== c.hurdles.length) {
    bad('hurdles', `must be increasing (got ${c.hurdles.join(', ')})`);
  }
  if (!Number.isInteger(c.hurdleMinSamples) || c.hurdleMinSamples < 1) bad('hurdleMinSamples', 'must be a positive integer');
  checkObjectives(c);
  if (!(c.candidateTimeoutSeconds > 0)) bad('candidateTimeoutSeconds', 'must be positive');
}

/** A study's objectives and constraints (`checkStudyConfig`'s part, checked on resume too: a study's record is data). */
export function checkObjectives(c: Pick<StudyConfig, 'objectives' | 'constraints' | 'strategy' | 'settings'>): void {
  const bad = (field: string, why: string) => {
    throw new SearchError(`study configuration: ${field} ${why}`);
  };
  if (c.objectives !== undefined && !(Array.isArray(c.objectives) && c.objectives.every((n) => typeof n === 'string'))) bad('objectives', 'must be a list of names');
  if (c.constraints !== undefined && !(Array.isArray(c.constraints) && c.constraints.every((n) => typeof n === 'string'))) bad('constraints', 'must be a list of constraints as written');
  if (c.objectives !== undefined) {
    try {
      parseObjectives(c.objectives.join(','));
    } catch (e) {
      bad('objectives', (e as Error).message);
    }
    if (c.objectives.includes('recall') && c.settings.dataset !== 'mqar') bad('objectives', 'recall is measured on the mqar dataset only (--dataset mqar)');
    if (c.objectives.length > 1 && strategies.has(c.strategy) && !strategies.get(c.strategy).multiObjective) {
      bad('objectives', `${c.objectives.join(', ')} need a strategy that ranks by several objectives (pareto${strategies.names().filter((n) => n !== 'pareto' && strategies.get(n).multiObjective).map((n) => `, ${n}`).join('')}); ${c.strategy} ranks by perplexity alone`);
    }
  }
  for (const text of c.constraints ?? []) {
    try {
      parseConstraint(text);
    } catch (e) {
      bad('constraints', (e as Error).message);
    }
  }
}

export interface SearchArgs {
  store: StudyStore;
  /** The configuration of a new study; ignored when resuming (the stored one is used). */
  config?: StudyConfig;
  /** Continue the study in the store. Without it, a store that already holds a study is refused. */
  resume?: boolean;
  /** On resume, raise the number of candidates to propose. */
  candidates?: number;
  /**
   * The plugin modules to load (the caller's command line's, never the study's record): they
   * must be the plugins the study was created with (`studyPluginRefusal`). Default: none.
   */
  plugins?: string[];
  pool: EvaluationPool;
  onEvent?: (e: SearchEvent) => void;
  /** Stops dispatching and returns; finished results are already stored, running ones are dropped and re-run on resume. */
  signal?: AbortSignal;
}

/**
 * --keep-weights K: keeps `weights` (of the program `hash`, just recorded) when it is among the K
 * best completed programs trained so far, and drops the kept weights of any program no longer
 * among them. Programs whose result was reused from an equivalent one were not trained: they
 * have no weights of their own and do not take a place.
 */
async function keepBest(store: StudyStore, evaluations: Map<string, EvaluationRecord>, k: number, hash: string, weights: string): Promise<void> {
  const bytes = weightsFromBase64(weights);
  try {
    decodeWeights(bytes, `the weights of ${hash.slice(0, 12)}`);
  } catch {
    return; // not weights a worker of ours makes: not kept
  }
  // the places go to programs that have weights kept (a result that came without any takes none)
  const kept = new Set([...(await store.weightHashes()), hash]);
  const best = [...evaluations.values()]
    .filter((e) => kept.has(e.hash) && e.status === 'completed' && e.fitness !== null && (e.sameAs ?? null) === null)
    .sort((a, b) => a.fitness! - b.fitness! || a.candidate - b.candidate)
    .slice(0, k)
    .map((e) => e.hash);
  if (best.includes(hash)) await store.putWeights(hash, bytes);
  for (const h of kept) if (!best.includes(h)) await store.deleteWeights(h);
}

/**
 * Runs (or resumes) a study: asks the strategy for candidates, trains them in the pool,
 * writes each finished evaluation to the store, then tells the strategy results in
 * proposal order, saving its state with the new candidates in one transaction. A program
 * already evaluated is not trained again; its result is reused.
 */
export async function runSearch(args: SearchArgs): Promise<{ stopped: boolean; config: StudyConfig }> {
  // the pool is closed and the study's controller lock let go on every path, an early failure (creating, extending or restoring the study) included
  let lock: { release(): Promise<void> } | undefined;
  try {
    // one controller per study: a second search (or retraining) of it is refused before anything is written
    lock = await args.store.lockController();
    return await search(args);
  } finally {
    await args.pool.close();
    await lock?.release();
  }
}

async function search(args: SearchArgs): Promise<{ stopped: boolean; config: StudyConfig }> {
  const { store, pool } = args;
  const emit = (e: SearchEvent) => args.onEvent?.(e);
  let config = (await store.config()) as StudyConfig | undefined;
  if (config && !args.resume) throw new SearchError(`${store.location} already holds a study; add --resume to continue it, or choose another file`);
  if (!config) {
    if (args.resume) throw new SearchError(`${store.location} holds no study to resume`);
    if (!args.config) throw new SearchError('a new study needs a configuration');
    checkStudyConfig(args.config);
    // its id, made once: what tells its queue jobs from any other study's
    config = { ...args.config, studyId: args.config.studyId ?? randomUUID() };
    await store.createStudy(config as unknown as Record<string, unknown>);
  }
  if (args.candidates !== undefined && args.candidates > config.candidates) {
    // extending a study: recorded, so that a later --resume keeps the new total
    config = { ...config, candidates: args.candidates };
    await store.updateStudy(config as unknown as Record<string, unknown>);
  }
  const total = config.candidates;
  // a study is data: its plugins are the caller's modules, checked against the study's record of them
  const plugins = args.plugins ?? [];
  const refused = studyPluginRefusal(config, plugins);
  if (refused.length > 0) throw new SearchError(`the plugins differ from the study's: ${refused.join('; ')}`);
  await loadPlugins(plugins);
  // what the plugins are here, for remote workers to check theirs against
  const pluginIds = plugins.map((p) => pluginIdentity(p));
  const definition = strategies.get(config.strategy);
  const context = { seedDna: config.seedDna, seed: config.seed, options: config.strategyOptions };
  const snapshot = await store.latestSnapshot();
  const strategy = snapshot ? definition.create(context, snapshot.state as never) : definition.create(context);

  // checked on resume too: what the strategy is told must be what the study was started with
  checkObjectives(config);
  const objectives = config.objectives ?? [];
  const constraints = (config.constraints ?? []).map(parseConstraint);
  const seedEstimate = constraints.length ? constrainedEstimate(config.seedDna, config.settings) : undefined;
  if (constraints.length && !seedEstimate) throw new SearchError(`the seed (${config.seedModel}) cannot be planned, so the constraints relative to it cannot be decided`);
  const seedBroken = seedEstimate && constraintFailure(constraints, seedEstimate, seedEstimate);
  // a seed outside the bounds would fill the population, and its children would mostly fail at once
  if (seedBroken) throw new SearchError(`the seed (${config.seedModel}) itself breaks a constraint: ${seedBroken.replace(/^constraint: /, '')}`);
  /** Why a program breaks the study's constraints (decided here, before training), or undefined. */
  const brokenConstraint = (dna: unknown): string | undefined => {
    if (!constraints.length) return undefined;
    const e = constrainedEstimate(dna, config.settings);
    return e && constraintFailure(constraints, e, seedEstimate!);
  };

  const stored = await store.candidates();
  const candidates = new Map<number, Candidate>(stored.map((c) => [c.id, asCandidate(c)]));
  const evaluations = new Map<string, EvaluationRecord>((await store.evaluations()).map((e) => [e.hash, e]));
  let told = snapshot?.told ?? 0;
  emit({ type: 'started', resumed: Boolean(snapshot), told, config });

  const thresholds = () =>
    hurdleThresholds(
      Array.from({ length: told }, (_, id) => candidates.get(id)!.hash),
      evaluations,
      config,
    );

  /**
   * Behaviour de-duplication: the behaviours a candidate is checked against, each with the
   * program that has it (the first evaluated). Those of the candidates told when it was
   * proposed (ids below id - inFlight + 1): fixed by the proposal order, not by when results
   * arrive, so a resumed or a parallel search checks every candidate against the same set.
   */
  const behavioursBefore = (id: number): Map<string, string> => {
    const out = new Map<string, string>();
    for (let k = 0; k < Math.max(0, id - config.inFlight + 1); k++) {
      const e = evaluations.get(candidates.get(k)!.hash);
      if (e?.behaviour && !e.sameAs && e.status !== 'failed' && !out.has(e.behaviour)) out.set(e.behaviour, e.hash);
    }
    return out;
  };

  // the hurdle thresholds each candidate was given when proposed
  const hurdlesOf = new Map(stored.map((c) => [c.id, c.hurdles]));
  const queue: number[] = [];
  const queuedHashes = new Set<string>();
  const enqueue = (c: Candidate) => {
    if (evaluations.has(c.hash) || queuedHashes.has(c.hash)) return;
    queuedHashes.add(c.hash);
    queue.push(c.id);
  };

  const propose = async () => {
    const fresh: Candidate[] = [];
    while (candidates.size < total && candidates.size < told + config.inFlight) {
      const [c] = strategy.ask(1);
      if (c!.id !== candidates.size) throw new SearchError(`strategy ${config.strategy} proposed id ${c!.id}, expected ${candidates.size}`);
      candidates.set(c!.id, c!);
      fresh.push(c!);
    }
    const hurdles = thresholds();
    const createdAt = new Date().toISOString();
    const records = fresh.map((c) => ({
      id: c.id,
      hash: c.hash,
      parent: c.parent ?? null,
      mutations: c.mutations,
      dna: c.dna,
      hurdles: c.id === 0 ? hurdles.map(() => null) : hurdles,
      createdAt,
    }));
    await store.advance({ told, candidates: records, strategyState: strategy.state() });
    for (const r of records) hurdlesOf.set(r.id, r.hurdles);
    fresh.forEach(enqueue);
  };

  // a new study, or one extended with more candidates, needs its next proposals
  if (!snapshot || candidates.size < Math.min(total, told + config.inFlight)) await propose();
  // candidates proposed before a stop whose training never finished: train them now
  for (let id = told; id < candidates.size; id++) enqueue(candidates.get(id)!);

  const running = new Map<number, Promise<{ id: number; result: JobOutcome; wallSeconds: number }>>();
  const aborted = new Promise<'aborted'>((resolve) => {
    if (args.signal?.aborted) resolve('aborted');
    args.signal?.addEventListener('abort', () => resolve('aborted'), { once: true });
  });
  try {
    for (;;) {
      // tell finished results in proposal order, proposing more as each is told
      while (told < candidates.size) {
        const c = candidates.get(told)!;
        const e = evaluations.get(c.hash);
        if (!e) break;
        const outcome = outcomeOf(e, objectives);
        strategy.tell(c, outcome);
        told++;
        if (c.id === 0 && outcome.status === 'failed') {
          await store.advance({ told, candidates: [], strategyState: strategy.state() });
          throw new SearchError(`the seed (${config.seedModel}) failed, so there is nothing to evolve: ${outcome.reason}`);
        }
        await propose();
        emit({ type: 'told', candidate: c.id, told, reused: e.candidate !== c.id, outcome, sameAs: e.sameAs ?? null });
      }
      if (told >= total) return { stopped: false, config };
      if (args.signal?.aborted) return { stopped: true, config };

      while (running.size < pool.size && queue.length > 0) {
        const id = queue.shift()!;
        const c = candidates.get(id)!;
        const thresholdsOfC = hurdlesOf.get(id) ?? config.hurdles.map(() => null);
        const job: EvaluationJob = {
          candidate: id,
          study: studyKey(config),
          hash: c.hash,
          dna: c.dna,
          settings: config.settings,
          hurdles: config.hurdles.map((fraction, k) => ({ fraction, threshold: thresholdsOfC[k] ?? null })),
          plugins,
          pluginIds,
          ...(config.dedupeBehaviour ? { behaviours: [...behavioursBefore(id).keys()] } : {}),
          ...(config.keepWeights ? { keepWeights: true } : {}),
        };
        const t0 = performance.now();
        emit({ type: 'dispatched', candidate: id });
        // a program that breaks a constraint fails here, before any worker trains it
        const broken = id === 0 ? undefined : brokenConstraint(c.dna);
        running.set(
          id,
          (broken !== undefined ? Promise.resolve(failedResult(job, broken)) : pool.run(job, { timeoutSeconds: config.candidateTimeoutSeconds, onProgress: (progress) => emit({ type: 'progress', progress }) })).then((result) => ({
            id,
            result,
            wallSeconds: (performance.now() - t0) / 1000,
          })),
        );
      }
      if (running.size === 0) {
        throw new SearchError(`internal: candidate ${told} has no result and nothing is running`);
      }
      const next = await Promise.race([...running.values(), aborted]);
      if (next === 'aborted') return { stopped: true, config };
      running.delete(next.id);
      const r = next.result;
      // a worker process stopped along with us (Ctrl-C reaches the whole process group): not a result
      if (isInterruption(r) && (await stoppingWithin(args.signal))) return { stopped: true, config };
      if (isEnvironmentFailure(r)) {
        // not the program's fault: nothing is recorded against it, and the search stops
        throw new SearchError(
          `the search stopped: candidate ${r.candidate} could not be trained, for a reason that is not its program's: ${r.reason}. Nothing was recorded for it; fix this, then continue with --resume`,
        );
      }
      let record: EvaluationRecord;
      let weights: string | undefined;
      if (isEquivalent(r)) {
        // the same function as a program evaluated before: its result, recorded as reused from it
        const sameAs = behavioursBefore(r.candidate).get(r.behaviour);
        const original = sameAs === undefined ? undefined : evaluations.get(sameAs);
        if (!original) throw new SearchError(`internal: candidate ${r.candidate} was said to compute the same function as an earlier program, but none has its behaviour`);
        const { id: _id, finishedAt: _at, hash: _hash, candidate: _candidate, ...result } = original;
        record = await store.addEvaluation({ ...result, hash: r.hash, candidate: r.candidate, wallSeconds: next.wallSeconds, machine: hostname(), behaviour: r.behaviour, sameAs });
      } else {
        // the result is durable before the strategy hears of it
        const { vocabSize: _vocabulary, weights: sent, ...result } = r;
        weights = sent;
        record = await store.addEvaluation({ ...result, wallSeconds: next.wallSeconds, budget: formatBudget(config.settings.budget), machine: r.machine ?? hostname(), environment: r.environment ?? null });
      }
      evaluations.set(r.hash, record);
      if (config.keepWeights && weights !== undefined) await keepBest(store, evaluations, config.keepWeights, r.hash, weights);
      queuedHashes.delete(r.hash);
      emit({ type: 'evaluated', candidate: r.candidate, result: record, wallSeconds: next.wallSeconds });
    }
  } finally {
    await pool.close();
  }
}
