import { readdirSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { dnaHash, type Dna } from '@primer-search/dna';
import type { CandidateView, StudyStore } from '@primer-search/store';
import {
  fidelitySample,
  formatBudget,
  isEnvironmentFailure,
  isEquivalent,
  pluginIdentity,
  studyKey,
  studyPluginRefusal,
  type Budget,
  type EvaluationJob,
  type JobProgress,
  type RetrainPlan,
  type RetrainProgram,
  type RetrainRun,
  type RunSettings,
  type StudyConfig,
} from '@primer-search/study';
import { isInterruption, stoppingWithin, type EvaluationPool } from './pool.js';
import { loadPlugins, SearchError } from './search.js';
import { paretoFront } from './summary.js';

/** Where a retraining's runs are evaluated, to draw its curves and speedups. */
export const RETRAIN_CHECKPOINTS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

/**
 * The job number of one run of a retraining (`program`'s run with the plan's `seedIndex`-th seed):
 * above every candidate id, fixed by the run alone, so that a queue finds the job a controller
 * sent before it was restarted, and no run's job is taken for a search candidate's.
 */
export function retrainJobNumber(plan: number, program: number, seedIndex: number): number {
  if (program >= 1000 || seedIndex >= 1000) throw new RangeError(`a retraining has at most 1000 programs and 1000 seeds (program ${program}, seed index ${seedIndex})`);
  return 1e12 + plan * 1e6 + program * 1e3 + seedIndex;
}

export type RetrainEvent =
  | { type: 'started'; plan: RetrainPlan; resumed: boolean; done: number; total: number }
  | { type: 'dispatched'; program: number; seed: number }
  | { type: 'progress'; program: number; seed: number; progress: JobProgress }
  /** `resumedAt`: the step of the checkpoint an earlier try of the run left, which it continued from. */
  | { type: 'finished'; run: RetrainRun; done: number; total: number; resumedAt?: number }
  /** What another study given to reuse runs from (`reuseFrom`) offers: its runs that match this retraining's programs and seeds, or why none can. */
  | { type: 'reuse'; from: string; matching: number; refusal?: string };

export interface RetrainArgs {
  store: StudyStore;
  /** The best programs to retrain, besides the seed (ignored with `sample`). */
  top: number;
  /**
   * A fidelity measurement instead: this many of the study's distinct completed programs, spread
   * over its range of search perplexity (the seed and the best always in; `fidelitySample`).
   */
  sample?: number;
  /** A retraining of the Pareto front instead (a search with several objectives): the seed and the front's programs. */
  front?: boolean;
  budget: Budget;
  seeds: number[];
  /** Models to train beside them as references (e.g. Primer-EZ), by label. */
  references?: Array<{ label: string; dna: Dna }>;
  /**
   * The label of the program results will be measured against ('seed', 'candidate N' or a
   * reference's): checked against the plan before anything is recorded or trained, so a wrong
   * one leaves nothing behind (a RetrainArgumentError).
   */
  against?: string;
  pool: EvaluationPool;
  /** The plugin modules to load (the caller's command line's, never the study's record), checked against the study's (`studyPluginRefusal`). Default: none. */
  plugins?: string[];
  /** Called once before the first run is sent, when any is left to train (e.g. to prepare the data). */
  prepare?: () => Promise<void>;
  /** Stop a run after this long (default: twice a time budget plus a minute, or 2 hours). */
  timeoutSeconds?: number;
  onEvent?: (e: RetrainEvent) => void;
  /** Stops dispatching and returns; finished runs are stored, running ones are dropped and run again by the next call. */
  signal?: AbortSignal;
  /**
   * Other studies whose retrainings' runs are this retraining's where they match (`reusableRuns`):
   * a run of theirs of the same program and seed is copied, not trained again. This study's own
   * runs come first, then these in order. Only read.
   */
  reuseFrom?: ReuseSource[];
  /**
   * A folder on the machine the pool's workers run on, where each run keeps its training
   * checkpoint while it trains (`retrainCheckpointPath`): a run stopped part-way (a killed
   * process, a machine gone) continues from its last checkpoint when the retraining is run again,
   * bit for bit the run it would have been. Each is removed once its run is recorded. Absent: a
   * stopped run starts again from the beginning (as through a queue, whose workers are elsewhere).
   */
  checkpointDir?: string;
  /** How often a run writes its checkpoint there, in seconds of training (default 120; 0: after every step). */
  checkpointEverySeconds?: number;
}

/** Removes the checkpoints retraining `plan`'s runs left in `dir` (the retraining deleted). */
export function dropRetrainCheckpoints(dir: string, plan: number): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) if (name.startsWith(`retrain-${plan}-program-`)) rmSync(join(dir, name), { recursive: true, force: true });
}

/**
 * Where a retraining's run keeps its checkpoint in `dir`: named by the plan, program, seed and
 * program hash. These come from the study's record, which is data: anything but integers and a
 * hexadecimal hash gives no path (the run keeps no checkpoint), so no record names a folder
 * outside `dir`.
 */
export function retrainCheckpointPath(dir: string, plan: unknown, program: unknown, seed: unknown, hash: unknown): string | undefined {
  const whole = (x: unknown) => Number.isSafeInteger(x) && (x as number) >= 0;
  if (!whole(plan) || !whole(program) || !whole(seed) || typeof hash !== 'string' || !/^[0-9a-f]{12,}$/.test(hash)) return undefined;
  return join(dir, `retrain-${plan}-program-${program}-seed-${seed}-${hash.slice(0, 12)}`);
}

/**
 * Another study, read for runs to reuse: how to open it (opened once, read, and closed before
 * anything trains) and how to name it in records and messages (passwords masked).
 */
export interface ReuseSource {
  open: () => Promise<StudyStore>;
  name: string;
}

/**
 * The programs a retraining trains: the study's seed first (the reference), then the `top` best
 * distinct programs other than the seed by search perplexity (completed ones; a result reused
 * from an equivalent program counts as that program), then the references not already among them.
 */
export function chooseRetrainPrograms(config: StudyConfig, candidates: CandidateView[], top: number, references: Array<{ label: string; dna: Dna }> = []): RetrainProgram[] {
  const seed = candidates.find((c) => c.id === 0);
  if (!seed) throw new SearchError('the study has no candidates yet: nothing to retrain');
  const programs: RetrainProgram[] = [
    { label: `seed (${config.seedModel})`, hash: seed.hash, candidate: 0, searchFitness: seed.evaluation?.status === 'completed' ? seed.evaluation.fitness : null, dna: seed.dna },
  ];
  const seen = new Set([seed.hash]);
  const best = candidates
    .filter((c) => c.evaluation?.status === 'completed' && c.evaluation.fitness !== null && !c.evaluation.sameAs && c.evaluation.candidate === c.id)
    .sort((a, b) => a.evaluation!.fitness! - b.evaluation!.fitness! || a.id - b.id);
  for (const c of best) {
    if (programs.length > top) break;
    if (seen.has(c.hash)) continue;
    seen.add(c.hash);
    programs.push({ label: `candidate ${c.id}`, hash: c.hash, candidate: c.id, searchFitness: c.evaluation!.fitness, dna: c.dna });
  }
  return withReferences(programs, references);
}

/** `programs` and then the references that are not already among them (by program hash). */
function withReferences(programs: RetrainProgram[], references: Array<{ label: string; dna: Dna }>): RetrainProgram[] {
  const seen = new Set(programs.map((p) => p.hash));
  const out = [...programs];
  for (const r of references) {
    const hash = dnaHash(r.dna);
    if (seen.has(hash)) continue;
    seen.add(hash);
    out.push({ label: r.label, hash, candidate: null, searchFitness: null, dna: r.dna });
  }
  return out;
}

/**
 * The programs a fidelity measurement trains: `sample` of the study's distinct completed programs
 * (a result reused from an equivalent program counts as that program), spread over the ranks of
 * their search perplexity, the best always in; the seed first (also when its search run did not
 * complete: it is the reference speedups are measured against), then the others best first.
 */
export function chooseFidelityPrograms(config: StudyConfig, candidates: CandidateView[], sample: number): RetrainProgram[] {
  const seed = candidates.find((c) => c.id === 0);
  if (!seed) throw new SearchError('the study has no candidates yet: nothing to measure');
  const distinct: CandidateView[] = [];
  const seen = new Set<string>();
  const completed = candidates
    .filter((c) => c.evaluation?.status === 'completed' && c.evaluation.fitness !== null && !c.evaluation.sameAs && c.evaluation.candidate === c.id)
    .sort((a, b) => a.evaluation!.fitness! - b.evaluation!.fitness! || a.id - b.id);
  for (const c of completed) {
    if (seen.has(c.hash)) continue;
    seen.add(c.hash);
    distinct.push(c);
  }
  if (distinct.length < 2) throw new SearchError(`a fidelity measurement needs at least 2 distinct programs that completed the search's budget; the study has ${distinct.length}`);
  const seedAt = distinct.findIndex((c) => c.hash === seed.hash);
  const chosen = fidelitySample(distinct.length, sample, seedAt < 0 ? undefined : seedAt).map((i) => distinct[i]!);
  const program = (c: CandidateView, label: string): RetrainProgram => ({
    label,
    hash: c.hash,
    candidate: c.id,
    searchFitness: c.evaluation?.status === 'completed' ? c.evaluation.fitness : null,
    dna: c.dna,
  });
  return [program(seed, `seed (${config.seedModel})`), ...chosen.filter((c) => c.hash !== seed.hash).map((c) => program(c, `candidate ${c.id}`))];
}

/** The programs a retraining of the Pareto front trains: the seed first, then the front's members (lower perplexity first). */
export function chooseFrontPrograms(config: StudyConfig, candidates: CandidateView[]): RetrainProgram[] {
  if (!config.objectives || config.objectives.length < 2) throw new SearchError('the study was searched for perplexity alone: it has no Pareto front (primer search --objectives perplexity,parameters makes one); retrain its best with --top');
  const seed = candidates.find((c) => c.id === 0);
  if (!seed) throw new SearchError('the study has no candidates yet: nothing to retrain');
  const byId = new Map(candidates.map((c) => [c.id, c]));
  const front = paretoFront(candidates, config.objectives).members.map((m) => byId.get(m.id)!);
  if (!front.some((c) => c.hash !== seed.hash)) throw new SearchError('the Pareto front has no program but the seed yet (no other completed program is as good in every objective): nothing to retrain beside it');
  const program = (c: CandidateView, label: string): RetrainProgram => ({ label, hash: c.hash, candidate: c.id, searchFitness: c.evaluation?.status === 'completed' ? c.evaluation.fitness : null, dna: c.dna });
  return [program(seed, `seed (${config.seedModel})`), ...front.filter((c) => c.hash !== seed.hash).map((c) => program(c, `candidate ${c.id}`))];
}

const sameList = <T>(a: T[], b: T[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/** The recorded retraining these arguments continue: same top, budget, seeds and references. */
export function matchingPlan(plans: RetrainPlan[], args: Pick<RetrainArgs, 'top' | 'sample' | 'front' | 'budget' | 'seeds' | 'references'>): RetrainPlan | undefined {
  const refs = (args.references ?? []).map((r) => r.label);
  return plans.find(
    (p) =>
      p.sample === args.sample &&
      Boolean(p.front) === Boolean(args.front) &&
      (args.sample !== undefined || args.front || p.top === args.top) &&
      p.budget === formatBudget(args.budget) &&
      sameList(p.seeds, args.seeds) &&
      sameList(p.references ?? [], refs),
  );
}

/** The runs of the study's other retrainings with `plan`'s settings, by program hash and seed (the first recorded of each). */
async function earlierRuns(store: StudyStore, plan: RetrainPlan): Promise<Map<string, RetrainRun>> {
  // one meaning of "the same settings" for this study's retrainings and another study's (settingsDiffering)
  const others = new Map((await store.retrains()).filter((p) => p.id !== plan.id && settingsDiffering(p.settings, plan.settings).length === 0).map((p) => [p.id, p]));
  const byRun = new Map<string, RetrainRun>();
  if (others.size === 0) return byRun;
  for (const r of await store.retrainRuns()) {
    const hash = others.get(r.retrain)?.programs[r.program]?.hash;
    const key = `${hash}/${r.seed}`;
    if (hash !== undefined && !byRun.has(key)) byRun.set(key, r);
  }
  return byRun;
}

const withoutSeed = (settings: RunSettings): Omit<RunSettings, 'seed'> => {
  const { seed: _seed, ...rest } = settings;
  return rest;
};

/**
 * The settings (by name) in which two retrainings' runs differ, a study's own seed aside (each run
 * has its own), compared as stored (a store's JSON drops undefined fields; PostgreSQL reorders
 * keys, which isDeepStrictEqual ignores).
 */
function settingsDiffering(a: RunSettings, b: RunSettings): string[] {
  const x = JSON.parse(JSON.stringify(withoutSeed(a))) as Record<string, unknown>;
  const y = JSON.parse(JSON.stringify(withoutSeed(b))) as Record<string, unknown>;
  return [...new Set([...Object.keys(x), ...Object.keys(y)])].filter((k) => !isDeepStrictEqual(x[k], y[k])).sort();
}

/**
 * The runs of another study that are this retraining's runs, by program hash and seed: completed
 * runs of its retrainings whose settings are `plan`'s (all but the study's own seed, which no run
 * uses: each has its seed), in a study that began with the same data (its tokenizer's fingerprint
 * and token counts) and plugins, of one of `plan`'s programs and seeds. A time budget's runs are
 * never taken (how far a run gets in a time depends on the machine), nor failed ones (a timeout or
 * a lack of memory is the machine's too). Where none can be, `refusal` says why.
 */
export async function reusableRuns(config: StudyConfig, plan: RetrainPlan, other: StudyStore): Promise<{ runs: Map<string, RetrainRun>; studyId?: string; refusal?: string }> {
  const runs = new Map<string, RetrainRun>();
  const theirs = (await other.config()) as StudyConfig | undefined;
  if (!theirs) return { runs, refusal: 'it holds no study' };
  const studyId = theirs.studyId;
  const refuse = (refusal: string) => ({ runs, ...(studyId ? { studyId } : {}), refusal });
  if (plan.settings.budget.kind === 'seconds') return refuse("this retraining's budget is a time, and how far a run gets in a time depends on the machine it ran on");
  if (!config.data) return refuse('this study has no record of the data it began with (resuming its search makes one)');
  if (!theirs.data) return refuse('it has no record of the data it began with');
  if (!isDeepStrictEqual(JSON.parse(JSON.stringify(config.data)), JSON.parse(JSON.stringify(theirs.data)))) {
    return refuse(`it began with other data (tokenizer ${theirs.data.tokenizer}, ${theirs.data.trainTokens} training tokens; this study: ${config.data.tokenizer}, ${config.data.trainTokens})`);
  }
  const ids = (c: StudyConfig) => JSON.stringify([...(c.pluginIds ?? c.plugins ?? [])].map((x) => JSON.stringify(x)).sort());
  if (ids(theirs) !== ids(config)) return refuse('it was run with other plugins');
  const plans = await other.retrains();
  if (plans.length === 0) return refuse('it has no retrainings');
  const same = new Map(plans.filter((p) => settingsDiffering(p.settings, plan.settings).length === 0).map((p) => [p.id, p]));
  if (same.size === 0) {
    const closest = plans.map((p) => settingsDiffering(p.settings, plan.settings)).sort((a, b) => a.length - b.length)[0]!;
    return refuse(`none of its ${plans.length} retraining${plans.length === 1 ? '' : 's'} has this one's settings (the closest differs in ${closest.join(', ')})`);
  }
  const wanted = new Set(plan.seeds.flatMap((seed) => plan.programs.map((p) => `${p.hash}/${seed}`)));
  const seedsThere = new Set<number>();
  for (const r of await other.retrainRuns()) {
    const hash = same.get(r.retrain)?.programs[r.program]?.hash;
    if (hash === undefined || r.status !== 'completed') continue;
    seedsThere.add(r.seed);
    const key = `${hash}/${r.seed}`;
    if (wanted.has(key) && !runs.has(key)) runs.set(key, r);
  }
  if (runs.size === 0) {
    const list = (xs: number[]) => xs.sort((a, b) => a - b).join(', ');
    return refuse(
      seedsThere.size === 0
        ? 'its retrainings with these settings have no completed run'
        : `none of its completed runs with these settings is of this retraining's programs and seeds (its seeds: ${list([...seedsThere])}; this retraining's: ${list([...plan.seeds])})`,
    );
  }
  return { runs, ...(studyId ? { studyId } : {}) };
}

/** A retraining asked for something its plan cannot have (an --against it would not train): refused before anything is recorded. */
export class RetrainArgumentError extends SearchError {}

/**
 * Retrains the best programs of a study (and its seed, and any references) with a longer budget
 * and several seeds, in the pool, writing each finished run to the store. Calling it again with
 * the same arguments continues the same retraining: the programs were fixed when it began, and
 * runs already recorded are not trained again, nor are runs that another retraining with the same
 * settings recorded for the same program and seed (they are copied, marked `reusedFrom`).
 */
export async function runRetrain(args: RetrainArgs): Promise<{ plan: RetrainPlan; stopped: boolean }> {
  const { store, pool } = args;
  const emit = (e: RetrainEvent) => args.onEvent?.(e);
  let lock: { release(): Promise<void> } | undefined;
  try {
    // one controller per study: refused while a search or another retraining runs it
    lock = await store.lockController();
    const config = (await store.config()) as StudyConfig | undefined;
    if (!config) throw new SearchError(`${store.location} holds no study to retrain`);
    if (!Number.isInteger(args.top) || args.top < 0) throw new SearchError(`top must be a non-negative integer (got ${args.top})`);
    if (args.sample !== undefined && (!Number.isInteger(args.sample) || args.sample < 2)) throw new SearchError(`a fidelity sample must be an integer of at least 2 (got ${args.sample})`);
    // a retraining's runs are numbered by program and seed (retrainJobNumber)
    if (args.seeds.length > 1000) throw new SearchError(`a retraining has at most 1000 seeds (got ${args.seeds.length})`);
    if (args.seeds.length === 0 || new Set(args.seeds).size !== args.seeds.length) throw new SearchError(`seeds must be distinct, and at least one (got ${args.seeds.join(', ')})`);
    const plugins = args.plugins ?? [];
    const refused = studyPluginRefusal(config, plugins);
    if (refused.length > 0) throw new SearchError(`the plugins differ from the study's: ${refused.join('; ')}`);
    await loadPlugins(plugins);
    let plan = matchingPlan(await store.retrains(), args);
    const resumed = plan !== undefined;
    const checkAgainst = (labels: string[]) => {
      if (args.against === undefined || args.against === 'seed' || labels.includes(args.against)) return;
      throw new RetrainArgumentError(`${args.against} is not among the retraining's programs (${labels.join(', ')}); nothing was recorded or trained`);
    };
    if (plan) checkAgainst(plan.programs.map((p) => p.label));
    if (!plan) {
      const candidates = await store.candidates();
      const programs = args.front
        ? withReferences(chooseFrontPrograms(config, candidates), args.references ?? [])
        : args.sample === undefined
          ? chooseRetrainPrograms(config, candidates, args.top, args.references)
          : withReferences(chooseFidelityPrograms(config, candidates, args.sample), args.references ?? []);
      if (programs.length > 1000) throw new SearchError(`a retraining has at most 1000 programs, the seed and references included (got ${programs.length}: ${args.sample !== undefined ? 'lower --sample' : args.front ? 'fewer --baselines' : 'lower --top'})`);
      checkAgainst(programs.map((p) => p.label));
      plan = await store.createRetrain({
        top: args.sample === undefined && !args.front ? args.top : 0,
        ...(args.sample === undefined ? {} : { sample: args.sample }),
        ...(args.front ? { front: true } : {}),
        budget: formatBudget(args.budget), seeds: args.seeds, references: (args.references ?? []).map((r) => r.label), settings: { ...config.settings, budget: args.budget }, programs });
    }
    const active = plan;
    const recorded = await store.retrainRuns(active.id);
    const has = new Set(recorded.map((r) => `${r.program}/${r.seed}`));
    const checkpointOf = (program: number, seed: number) => (args.checkpointDir ? retrainCheckpointPath(args.checkpointDir, active.id, program, seed, active.programs[program]?.hash) : undefined);
    const dropCheckpoint = (program: number, seed: number) => {
      const path = checkpointOf(program, seed);
      try {
        if (path) rmSync(path, { recursive: true, force: true });
      } catch {
        // left for the next start to remove (the run is recorded: its checkpoint is never read again)
      }
    };
    // a run recorded by a process stopped before it removed its checkpoint
    for (const r of recorded) dropCheckpoint(r.program, r.seed);
    const total = active.programs.length * active.seeds.length;
    let done = recorded.length;
    emit({ type: 'started', plan: active, resumed, done, total });
    // seed by seed, so that every program has its paired runs as early as possible
    let todo = active.seeds.flatMap((seed) => active.programs.map((_, program) => ({ program, seed }))).filter((x) => !has.has(`${x.program}/${x.seed}`));
    // a run that another retraining with the same settings made of the same program and seed is this run: reused, not trained again
    const earlier = await earlierRuns(store, active);
    // then other studies' (primer study retrain --reuse-from), in the order given
    const elsewhere: Array<{ name: string; studyId?: string; runs: Map<string, RetrainRun> }> = [];
    const needed = new Set(todo.map((x) => `${active.programs[x.program]!.hash}/${x.seed}`));
    for (const source of args.reuseFrom ?? []) {
      // read now, and closed before anything trains
      const other = await source.open();
      let found: Awaited<ReturnType<typeof reusableRuns>>;
      try {
        found = await reusableRuns(config, active, other);
      } finally {
        await other.close();
      }
      const { runs, studyId, refusal } = found;
      // the runs it would give that this retraining has not got yet (recorded, or from an earlier source)
      const matching = [...runs.keys()].filter((k) => needed.has(k) && !earlier.has(k) && !elsewhere.some((o) => o.runs.has(k))).length;
      emit({ type: 'reuse', from: source.name, matching, ...(refusal ? { refusal } : {}) });
      elsewhere.push({ name: source.name, ...(studyId ? { studyId } : {}), runs });
    }
    const left: typeof todo = [];
    for (const x of todo) {
      const key = `${active.programs[x.program]!.hash}/${x.seed}`;
      const local = earlier.get(key);
      const other = local ? undefined : elsewhere.find((o) => o.runs.has(key));
      const from = local ?? other?.runs.get(key);
      if (!from) {
        left.push(x);
        continue;
      }
      const { retrain, program, seed: _seed, finishedAt: _at, reusedFrom, ...body } = from;
      // where the run was trained: its own retraining, or the one it was itself copied from (in its study or a third)
      const origin = reusedFrom ?? { retrain, program };
      const named = other && origin.study === undefined ? { ...origin, study: other.name, ...(other.studyId ? { studyId: other.studyId } : {}) } : origin;
      const run = await store.addRetrainRun({ ...body, retrain: active.id, program: x.program, seed: x.seed, reusedFrom: named });
      done++;
      emit({ type: 'finished', run, done, total });
    }
    todo = left;
    if (todo.length > 0 && !args.signal?.aborted) await args.prepare?.();
    const budget = active.settings.budget;
    const timeoutSeconds = args.timeoutSeconds ?? (budget.kind === 'seconds' ? budget.seconds * 2 + 60 : 2 * 3600);
    const pluginIds = plugins.map((p) => pluginIdentity(p));
    const aborted = new Promise<'aborted'>((resolve) => {
      if (args.signal?.aborted) resolve('aborted');
      args.signal?.addEventListener('abort', () => resolve('aborted'), { once: true });
    });
    const running = new Map<number, Promise<{ key: number; run: RetrainRun | undefined; failure?: string; interrupted?: boolean; resumedAt?: number }>>();
    let next = 0;
    for (;;) {
      if (args.signal?.aborted) return { plan: active, stopped: true };
      while (running.size < pool.size && next < todo.length) {
        const key = next++;
        const { program, seed } = todo[key]!;
        const p = active.programs[program]!;
        const job: EvaluationJob = {
          // a job number of its own, the same on every call: pools match results by it, the queue finds a job sent before by it
          candidate: retrainJobNumber(active.id, program, active.seeds.indexOf(seed)),
          label: `retraining ${active.id}: ${p.label}, seed ${seed}`,
          study: studyKey(config),
          hash: p.hash,
          dna: p.dna,
          settings: { ...active.settings, seed },
          hurdles: [],
          checkpoints: RETRAIN_CHECKPOINTS,
          plugins,
          pluginIds,
        };
        const checkpoint = checkpointOf(program, seed);
        if (checkpoint) job.checkpoint = { path: checkpoint, ...(args.checkpointEverySeconds !== undefined ? { everySeconds: args.checkpointEverySeconds } : {}) };
        const t0 = performance.now();
        emit({ type: 'dispatched', program, seed });
        running.set(
          key,
          pool.run(job, { timeoutSeconds, onProgress: (progress) => emit({ type: 'progress', program, seed, progress }) }).then(async (r) => {
            if (isEnvironmentFailure(r)) return { key, run: undefined, failure: r.reason, interrupted: isInterruption(r) };
            if (isEquivalent(r)) throw new SearchError('internal: a retraining run was answered as equivalent to another program');
            const run = await store.addRetrainRun({
              retrain: active.id,
              program,
              seed,
              status: r.status === 'completed' ? 'completed' : 'failed',
              fitness: r.status === 'completed' ? r.fitness : null,
              reason: r.status === 'completed' ? null : (r.reason ?? 'failed'),
              curve: r.curve,
              steps: r.steps,
              tokens: r.tokens,
              trainSeconds: r.trainSeconds,
              wallSeconds: (performance.now() - t0) / 1000,
              backend: r.backend,
              machine: r.machine ?? hostname(),
              environment: r.environment ?? null,
              parameters: r.parameters,
              vocabSize: r.vocabSize ?? null,
            });
            dropCheckpoint(program, seed);
            return { key, run, ...(r.resumedAt !== undefined ? { resumedAt: r.resumedAt } : {}) };
          }),
        );
      }
      if (running.size === 0) return { plan: active, stopped: false };
      const finished = await Promise.race([...running.values(), aborted]);
      if (finished === 'aborted') return { plan: active, stopped: true };
      running.delete(finished.key);
      if (!finished.run) {
        // a worker process stopped along with us: not a result
        if (finished.interrupted && (await stoppingWithin(args.signal))) return { plan: active, stopped: true };
        const { program, seed } = todo[finished.key]!;
        throw new SearchError(
          `the retraining stopped: ${active.programs[program]!.label} (seed ${seed}) could not be trained, for a reason that is not its program's: ${finished.failure}. Nothing was recorded for it; fix this, then run the same command again to continue`,
        );
      }
      done++;
      emit({ type: 'finished', run: finished.run, done, total, ...(finished.resumedAt !== undefined ? { resumedAt: finished.resumedAt } : {}) });
    }
  } finally {
    await pool.close();
    await lock?.release();
  }
}
