import { baselines } from '@primer-search/baselines';
import { describe, expect, it } from 'vitest';
import { evolution, hillClimb, random, strategies, type Candidate } from './index.js';
import { describeStrategyContract, driveStrategy, syntheticOutcome } from './testing.js';

const seedDna = baselines.get('vanilla').build({ dModel: 64, heads: 2 });

describeStrategyContract(evolution, { seedDna, options: { populationSize: 8, tournamentSize: 3 } });
describeStrategyContract(random, { seedDna });
describeStrategyContract(hillClimb, { seedDna });

describe('built-in strategies', () => {
  it('are registered by name', () => {
    expect(strategies.names()).toEqual(expect.arrayContaining(['evolution', 'random', 'hill-climb']));
    expect(() => strategies.get('evolutoin')).toThrow(/evolution/);
  });

  it('refuse unknown or bad options, naming them', () => {
    expect(() => evolution.create({ seedDna, seed: 1, options: { population: 5 } })).toThrow(/no option "population".*populationSize/);
    expect(() => evolution.create({ seedDna, seed: 1, options: { tournamentSize: 0 } })).toThrow(/tournamentSize must be an integer of at least 1/);
  });

  it('refuse a state written by another strategy', () => {
    const s = random.create({ seedDna, seed: 1 });
    expect(() => evolution.create({ seedDna, seed: 1 }, s.state())).toThrow(/written by "random"/);
  });

  it('evolution: the population starts as copies of the seed, then ages out its oldest members', () => {
    const s = evolution.create({ seedDna, seed: 2, options: { populationSize: 4, tournamentSize: 2 } });
    const [seed] = s.ask(1);
    s.tell(seed!, { status: 'completed', fitness: 10 });
    type Pop = Array<{ id: number; fitness: number }>;
    const pop = () => (s.state() as unknown as { population: Pop }).population.map((m) => m.id);
    expect(pop()).toEqual([0, 0, 0, 0]);
    const told: Candidate[] = [];
    for (let i = 0; i < 5; i++) {
      const [c] = s.ask(1);
      s.tell(c!, i === 2 ? { status: 'failed', reason: 'x' } : { status: 'completed', fitness: 9 - i });
      told.push(c!);
    }
    // the failed one (the third) never joined; the four newest others remain, oldest first
    expect(pop()).toEqual([told[0]!.id, told[1]!.id, told[3]!.id, told[4]!.id]);
  });

  it('evolution: tournaments favour fitter parents', () => {
    // one member far fitter than the rest: with tournaments of 3 in a population of 8 it is
    // sampled in about 3/8 of tournaments, far above the 1/8 of uniform choice
    const s = evolution.create({ seedDna, seed: 4, options: { populationSize: 8, tournamentSize: 3 } });
    const [seed] = s.ask(1);
    s.tell(seed!, { status: 'completed', fitness: 50 });
    const [star] = s.ask(1);
    s.tell(star!, { status: 'completed', fitness: 1 });
    let fromStar = 0;
    const n = 200;
    for (let i = 0; i < n; i++) if (s.ask(1)[0]!.parent === star!.id) fromStar++;
    expect(fromStar / n).toBeGreaterThan(0.25);
    expect(fromStar / n).toBeLessThan(0.5);
  });

  it('hill-climb: mutates the best completed program, ignoring hurdled ones', () => {
    const s = hillClimb.create({ seedDna, seed: 3 });
    const [seed] = s.ask(1);
    s.tell(seed!, { status: 'completed', fitness: 10 });
    const [a, b] = s.ask(2);
    s.tell(a!, { status: 'hurdle', hurdle: 0, fitness: 1 });
    s.tell(b!, { status: 'completed', fitness: 9 });
    expect(s.ask(3).map((c) => c.parent)).toEqual([b!.id, b!.id, b!.id]);
  });

  it('random: every candidate descends directly from the seed', () => {
    const cs = driveStrategy(random.create({ seedDna, seed: 5, options: { maxMutations: 2 } }), 20);
    expect(cs.slice(1).every((c) => c.parent === 0)).toBe(true);
    expect(new Set(cs.map((c) => c.hash)).size).toBeGreaterThan(15);
    expect(syntheticOutcome(cs[0]!).status).toBe('completed');
  });
});
