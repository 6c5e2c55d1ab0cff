import {
  Proposer,
  checkOptionNames,
  expectState,
  integerOption,
  type Candidate,
  type Outcome,
  type Strategy,
  type StrategyContext,
  type StrategyDefinition,
  type StrategyState,
} from './strategy.js';

const OPTIONS = {
  maxMutations: 'each candidate is the seed after 1 to this many mutation steps, uniformly (default 3)',
};

/**
 * Random search over the same mutation operators: every candidate is the seed after a
 * random number of mutation steps, whatever the results so far. The control for selection.
 */
class RandomSearch implements Strategy {
  readonly name = 'random';
  private readonly p: Proposer;
  private readonly maxMutations: number;

  constructor(context: StrategyContext, state?: StrategyState) {
    checkOptionNames(this.name, context.options, Object.keys(OPTIONS));
    this.maxMutations = integerOption(context.options, 'maxMutations', 3, 1);
    if (state) expectState(this.name, 1, state);
    this.p = new Proposer(context, state ? (state as unknown as { base: ConstructorParameters<typeof Proposer>[1] }).base : undefined);
  }

  ask(count = 1): Candidate[] {
    const out: Candidate[] = [];
    for (let i = 0; i < count; i++) {
      if (this.p.nextId === 0) out.push(this.p.seedCandidate());
      else out.push(this.p.child({ id: 0, dna: this.p.seedDna }, this.p.rng.int(1, this.maxMutations)));
    }
    return out;
  }

  tell(candidate: Candidate, outcome: Outcome): void {
    this.p.noteOutcome(candidate, outcome);
  }

  state(): StrategyState {
    return { strategy: this.name, version: 1, base: this.p.base() };
  }
}

export const random: StrategyDefinition = {
  name: 'random',
  description: 'random search: the seed after 1 to maxMutations random mutations, no selection',
  options: OPTIONS,
  create: (context, state) => new RandomSearch(context, state),
};
