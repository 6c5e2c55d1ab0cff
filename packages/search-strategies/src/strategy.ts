import { PrimerError, Rng, type RngState, type Seed } from '@primer-search/core';
import { dnaHash, mutateDna, validateDna, type Dna, type MutateOptions, type Mutation } from '@primer-search/dna';
import { primitives as defaultPrimitives, type PrimitiveRegistry } from '@primer-search/primitives';

/**
 * What became of an evaluated candidate. Fitness is validation perplexity after the
 * candidate's training budget: lower is better. `objectives`, in a search with several
 * (`primer search --objectives`), are its values of each, in the study's order, each to be
 * minimised (a higher-is-better one negated); perplexity is among them.
 */
export type Outcome =
  | { status: 'completed'; fitness: number; objectives?: number[] }
  /** Stopped at hurdle `hurdle` (0-based) because it was worse than the hurdle's threshold; `fitness` is its perplexity there. */
  | { status: 'hurdle'; hurdle: number; fitness: number; objectives?: number[] }
  /** Did not produce a fitness: invalid, crashed, ran out of memory or time, or diverged. */
  | { status: 'failed'; reason: string };

/** A DNA the strategy wants evaluated. Ids count up from 0 in the order proposed. */
export interface Candidate {
  id: number;
  dna: Dna;
  /** Canonical hash of `dna` (equal hashes compute the same program). */
  hash: string;
  /** The candidate this one was mutated from; absent for the seed. */
  parent?: number;
  /** The mutations that turned the parent into this DNA, in order; empty for the seed. */
  mutations: Mutation[];
}

/** JSON-serialisable state of a strategy: enough to continue exactly where it was. */
export type StrategyState = { strategy: string; version: number } & Record<string, unknown>;

/**
 * The contract every search strategy keeps: seeded, `ask` proposes candidates (any number
 * may be out at once), `tell` reports one candidate's outcome (in any order), and `state`
 * returns JSON that, given to the definition's `create`, continues identically.
 */
export interface Strategy {
  readonly name: string;
  ask(count?: number): Candidate[];
  tell(candidate: Candidate, outcome: Outcome): void;
  state(): StrategyState;
}

export interface StrategyContext {
  /** The program the search starts from (the paper's "conceptual initialization"). */
  seedDna: Dna;
  seed: Seed;
  primitives?: PrimitiveRegistry;
  /** Strategy-specific options (population size, ...); unknown keys are refused. */
  options?: Record<string, unknown>;
  /** Weights of the mutation kinds (default: all equal). */
  mutationWeights?: MutateOptions['weights'];
}

export interface StrategyDefinition {
  name: string;
  description: string;
  /** Option names with a line of help each, for `--help` and error messages. */
  options?: Record<string, string>;
  /** It ranks by several objectives (`Outcome.objectives`); a search with more than one objective needs such a strategy. */
  multiObjective?: boolean;
  /** A new strategy, or (with `state`) the one that wrote `state`. */
  create(context: StrategyContext, state?: StrategyState): Strategy;
}

export class StrategyError extends PrimerError {
  constructor(message: string) {
    super('STRATEGY', message);
  }
}

/** Reads a positive integer option, refusing nonsense with the option's name. */
export function integerOption(options: Record<string, unknown> | undefined, name: string, fallback: number, min = 1): number {
  const v = options?.[name] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    throw new StrategyError(`option ${name} must be an integer of at least ${min}; got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Refuses option names a strategy does not know, suggesting the ones it does. */
export function checkOptionNames(strategy: string, options: Record<string, unknown> | undefined, known: string[]): void {
  for (const k of Object.keys(options ?? {})) {
    if (!known.includes(k)) {
      throw new StrategyError(`${strategy} has no option ${JSON.stringify(k)}; its options: ${known.join(', ') || 'none'}`);
    }
  }
}

/**
 * The machinery the built-in strategies share: the RNG, id counter, the seed, and the set
 * of hashes that failed (never proposed again). Its `base()` state is part of theirs.
 */
export class Proposer {
  readonly rng: Rng;
  nextId: number;
  readonly failed: Set<string>;
  readonly primitives: PrimitiveRegistry;
  readonly seedDna: Dna;
  readonly seedHash: string;

  constructor(
    readonly context: StrategyContext,
    saved?: { rng: RngState; nextId: number; failed: string[] },
  ) {
    this.primitives = context.primitives ?? defaultPrimitives;
    const check = validateDna(context.seedDna, { primitives: this.primitives });
    if (!check.ok) throw new StrategyError(`the seed DNA is not valid: ${check.error.message}`);
    this.seedDna = check.dna;
    this.seedHash = dnaHash(this.seedDna, { primitives: this.primitives });
    this.rng = saved ? Rng.fromState(saved.rng) : Rng.create(context.seed).split('strategy');
    this.nextId = saved?.nextId ?? 0;
    this.failed = new Set(saved?.failed ?? []);
  }

  base(): { rng: RngState; nextId: number; failed: string[] } {
    return { rng: this.rng.state(), nextId: this.nextId, failed: [...this.failed] };
  }

  seedCandidate(): Candidate {
    return { id: this.nextId++, dna: structuredClone(this.seedDna), hash: this.seedHash, mutations: [] };
  }

  /**
   * A valid child of `parent` made by the paper's mutation step, whose program has not
   * failed before. `rounds` > 1 applies that many mutation steps in a row.
   */
  child(parent: { id: number; dna: Dna }, rounds = 1): Candidate {
    for (let attempt = 0; attempt < 50; attempt++) {
      let dna = parent.dna;
      const mutations: Mutation[] = [];
      let hash = '';
      for (let r = 0; r < rounds; r++) {
        const m = mutateDna(dna, this.rng, { primitives: this.primitives, requireValid: true, weights: this.context.mutationWeights });
        dna = m.child;
        hash = m.childHash;
        mutations.push(...m.mutations);
      }
      if (!this.failed.has(hash)) return { id: this.nextId++, dna, hash, parent: parent.id, mutations };
    }
    throw new StrategyError(`50 children of candidate ${parent.id} in a row had failed before`);
  }

  noteOutcome(candidate: Candidate, outcome: Outcome): void {
    if (outcome.status === 'failed') this.failed.add(candidate.hash);
  }
}

/** Checks a saved state's header before a strategy restores from it. */
export function expectState(name: string, version: number, state: StrategyState): void {
  if (state?.strategy !== name || state.version !== version) {
    throw new StrategyError(
      `this state was written by ${JSON.stringify(state?.strategy)} version ${JSON.stringify(state?.version)}, not ${name} version ${version}`,
    );
  }
}

/** Lower is better; unknown (undefined) loses to everything. */
export const betterThan = (a: number | undefined, b: number | undefined): boolean =>
  a !== undefined && Number.isFinite(a) && (b === undefined || !Number.isFinite(b) || a < b);
