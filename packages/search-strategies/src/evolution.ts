import type { Dna } from '@primer-search/dna';
import {
  Proposer,
  betterThan,
  checkOptionNames,
  expectState,
  integerOption,
  StrategyError,
  type Candidate,
  type Outcome,
  type Strategy,
  type StrategyContext,
  type StrategyDefinition,
  type StrategyState,
} from './strategy.js';
import { crowdedBetter, crowdingDistances, nonDominatedFronts } from './pareto.js';

interface Member {
  id: number;
  hash: string;
  dna: Dna;
  fitness: number;
  /** Pareto evolution: the outcome's objectives, all minimised (absent in evolution's members). */
  objectives?: number[];
}

const OPTIONS = {
  populationSize: 'members kept alive; each new result replaces the oldest (default 100, as in the paper)',
  tournamentSize: 'members sampled per tournament; the fittest is the parent (default 10, as in the paper)',
};

/**
 * Regularized (aging) evolution, as the paper ran it: the population starts as copies of
 * the seed; each child is a mutation of the fittest of `tournamentSize` members sampled
 * without replacement; each result joins the population and the oldest member leaves.
 * Failed candidates do not join. A candidate stopped at a hurdle joins with its perplexity
 * at the hurdle (a worse one, as it trained less).
 */
class Evolution implements Strategy {
  readonly name: string = 'evolution';
  protected readonly p: Proposer;
  private readonly populationSize: number;
  private readonly tournamentSize: number;
  protected population: Member[];

  constructor(context: StrategyContext, state?: StrategyState, name = 'evolution') {
    this.name = name;
    checkOptionNames(this.name, context.options, Object.keys(OPTIONS));
    this.populationSize = integerOption(context.options, 'populationSize', 100, 2);
    this.tournamentSize = integerOption(context.options, 'tournamentSize', 10, 1);
    if (this.tournamentSize > this.populationSize) {
      // a tournament larger than the population always picks the fittest member: no selection pressure to tune
      throw new StrategyError(`option tournamentSize (${this.tournamentSize}) cannot be larger than populationSize (${this.populationSize})`);
    }
    if (state) {
      expectState(this.name, 1, state);
      const s = state as unknown as { base: ConstructorParameters<typeof Proposer>[1]; population: Member[] };
      this.p = new Proposer(context, s.base);
      this.population = s.population.map((m) => ({ ...m }));
    } else {
      this.p = new Proposer(context);
      this.population = [];
    }
  }

  ask(count = 1): Candidate[] {
    const out: Candidate[] = [];
    for (let i = 0; i < count; i++) {
      if (this.p.nextId === 0) out.push(this.p.seedCandidate());
      else out.push(this.p.child(this.tournament()));
    }
    return out;
  }

  private tournament(): { id: number; dna: Dna } {
    if (this.population.length === 0) return { id: 0, dna: this.p.seedDna };
    const n = this.population.length;
    const k = Math.min(this.tournamentSize, n);
    const better = this.preference();
    // k distinct members (partial Fisher-Yates over indexes)
    const idx = Array.from({ length: n }, (_, i) => i);
    let best: number | undefined;
    for (let i = 0; i < k; i++) {
      const j = this.p.rng.int(i, n - 1);
      [idx[i], idx[j]] = [idx[j]!, idx[i]!];
      if (best === undefined || better(idx[i]!, best)) best = idx[i]!;
    }
    return this.population[best!]!;
  }

  /** Whether population member i beats member j in a tournament: the lower perplexity. */
  protected preference(): (i: number, j: number) => boolean {
    return (i, j) => betterThan(this.population[i]!.fitness, this.population[j]!.fitness);
  }

  protected member(candidate: Candidate, outcome: Exclude<Outcome, { status: 'failed' }>): Member {
    return { id: candidate.id, hash: candidate.hash, dna: candidate.dna, fitness: outcome.fitness };
  }

  tell(candidate: Candidate, outcome: Outcome): void {
    this.p.noteOutcome(candidate, outcome);
    if (outcome.status === 'failed') return;
    const member = this.member(candidate, outcome);
    if (candidate.id === 0 && this.population.length === 0) {
      // the paper's initial population: copies of the seed
      this.population = Array.from({ length: this.populationSize }, () => ({ ...member }));
      return;
    }
    this.population.push(member);
    while (this.population.length > this.populationSize) this.population.shift();
  }

  state(): StrategyState {
    return { strategy: this.name, version: 1, base: this.p.base(), population: this.population.map((m) => ({ ...m })) };
  }
}

/**
 * Regularized evolution over several objectives (NSGA-II's ranking inside the paper's tournament
 * and ageing): a tournament's winner is the member on the lowest non-dominated front of the whole
 * population, then the one with the larger crowding distance on it (Deb et al. 2002). The
 * objectives are the outcome's (`Outcome.objectives`, all minimised; perplexity alone when absent).
 */
class ParetoEvolution extends Evolution {
  constructor(context: StrategyContext, state?: StrategyState) {
    super(context, state, 'pareto');
  }

  protected override preference(): (i: number, j: number) => boolean {
    const points = this.population.map((m) => m.objectives ?? [m.fitness]);
    const width = Math.max(...points.map((p) => p.length));
    // (a member told without every objective ranks behind every complete one)
    const complete = points.map((p) => (p.length === width && p.every(Number.isFinite) ? p : new Array<number>(width).fill(Infinity)));
    const fronts = nonDominatedFronts(complete);
    const crowding = crowdingDistances(complete, fronts);
    return (i, j) => crowdedBetter(i, j, fronts, crowding);
  }

  protected override member(candidate: Candidate, outcome: Exclude<Outcome, { status: 'failed' }>): Member {
    return { ...super.member(candidate, outcome), objectives: outcome.objectives ?? [outcome.fitness] };
  }
}

export const pareto: StrategyDefinition = {
  name: 'pareto',
  description: 'regularized evolution over several objectives (primer search --objectives): tournaments won by the lower non-dominated front, then the larger crowding distance (NSGA-II)',
  options: OPTIONS,
  multiObjective: true,
  create: (context, state) => new ParetoEvolution(context, state),
};

export const evolution: StrategyDefinition = {
  name: 'evolution',
  description: 'regularized (aging) evolution with tournament selection, as in the paper',
  options: OPTIONS,
  create: (context, state) => new Evolution(context, state),
};
