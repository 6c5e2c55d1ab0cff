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

interface Member {
  id: number;
  hash: string;
  dna: Dna;
  fitness: number;
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
  readonly name = 'evolution';
  private readonly p: Proposer;
  private readonly populationSize: number;
  private readonly tournamentSize: number;
  private population: Member[];

  constructor(context: StrategyContext, state?: StrategyState) {
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
    // k distinct members (partial Fisher-Yates over indexes)
    const idx = Array.from({ length: n }, (_, i) => i);
    let best: Member | undefined;
    for (let i = 0; i < k; i++) {
      const j = this.p.rng.int(i, n - 1);
      [idx[i], idx[j]] = [idx[j]!, idx[i]!];
      const m = this.population[idx[i]!]!;
      if (!best || betterThan(m.fitness, best.fitness)) best = m;
    }
    return best!;
  }

  tell(candidate: Candidate, outcome: Outcome): void {
    this.p.noteOutcome(candidate, outcome);
    if (outcome.status === 'failed') return;
    const member: Member = { id: candidate.id, hash: candidate.hash, dna: candidate.dna, fitness: outcome.fitness };
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

export const evolution: StrategyDefinition = {
  name: 'evolution',
  description: 'regularized (aging) evolution with tournament selection, as in the paper',
  options: OPTIONS,
  create: (context, state) => new Evolution(context, state),
};
