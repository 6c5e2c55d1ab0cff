import type { Dna } from '@primer-search/dna';
import {
  Proposer,
  betterThan,
  checkOptionNames,
  expectState,
  type Candidate,
  type Outcome,
  type Strategy,
  type StrategyContext,
  type StrategyDefinition,
  type StrategyState,
} from './strategy.js';

interface Best {
  id: number;
  hash: string;
  dna: Dna;
  fitness: number;
}

/**
 * Hill-climbing: every candidate is a mutation of the best completed program so far (the
 * seed until something completes better). A candidate stopped at a hurdle never becomes
 * the best: it did not finish its budget.
 */
class HillClimb implements Strategy {
  readonly name = 'hill-climb';
  private readonly p: Proposer;
  private best: Best | undefined;

  constructor(context: StrategyContext, state?: StrategyState) {
    checkOptionNames(this.name, context.options, []);
    if (state) {
      expectState(this.name, 1, state);
      const s = state as unknown as { base: ConstructorParameters<typeof Proposer>[1]; best: Best | null };
      this.p = new Proposer(context, s.base);
      this.best = s.best ? { ...s.best } : undefined;
    } else {
      this.p = new Proposer(context);
    }
  }

  ask(count = 1): Candidate[] {
    const out: Candidate[] = [];
    for (let i = 0; i < count; i++) {
      if (this.p.nextId === 0) out.push(this.p.seedCandidate());
      else out.push(this.p.child(this.best ?? { id: 0, dna: this.p.seedDna }));
    }
    return out;
  }

  tell(candidate: Candidate, outcome: Outcome): void {
    this.p.noteOutcome(candidate, outcome);
    if (outcome.status === 'completed' && betterThan(outcome.fitness, this.best?.fitness)) {
      this.best = { id: candidate.id, hash: candidate.hash, dna: candidate.dna, fitness: outcome.fitness };
    }
  }

  state(): StrategyState {
    return { strategy: this.name, version: 1, base: this.p.base(), best: this.best ? { ...this.best } : null };
  }
}

export const hillClimb: StrategyDefinition = {
  name: 'hill-climb',
  description: 'hill-climbing: mutate the best completed program so far',
  options: {},
  create: (context, state) => new HillClimb(context, state),
};
