import { baselines } from '@primer-search/baselines';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { crowdedBetter, crowdingDistances, dominates, firstFront, nonDominatedFronts, pareto, strategies, type Candidate, type Outcome } from './index.js';
import { describeStrategyContract, syntheticOutcome } from './testing.js';

const seedDna = baselines.get('vanilla').build({ dModel: 64, heads: 2 });

// the contract every strategy keeps, told two objectives (perplexity and a size)
describeStrategyContract(pareto, { seedDna, options: { populationSize: 8, tournamentSize: 3 } });

describe('NSGA-II ranking, on a hand-worked population (both objectives minimised)', () => {
  //      (perplexity, parameters)
  const pop = [
    [10, 5], // a: front 0
    [12, 3], // b: front 0
    [15, 1], // c: front 0
    [11, 6], // d: dominated by a only -> front 1
    [13, 4], // e: dominated by b -> front 1
    [16, 2], // f: dominated by c -> front 1
    [14, 7], // g: dominated by a, b, d, e -> front 2
    [10, 5], // h: the same as a: neither dominates -> front 0
  ];

  it('dominance: no worse everywhere and better somewhere', () => {
    expect(dominates([10, 5], [11, 6])).toBe(true);
    expect(dominates([10, 5], [10, 6])).toBe(true);
    expect(dominates([10, 5], [10, 5])).toBe(false);
    expect(dominates([10, 5], [9, 6])).toBe(false);
    // not a number: the worst value there is
    expect(dominates([1, NaN], [2, 2])).toBe(false);
    expect(dominates([2, 2], [3, NaN])).toBe(true);
  });

  it('the first front alone, found in memory proportional to the points, is front 0 of the full sort', () => {
    expect(firstFront(pop)).toEqual([0, 1, 2, 7]);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: 3 })), { maxLength: 60 }), (xs) => {
        const points = xs.map((x) => [...x]);
        const fronts = nonDominatedFronts(points);
        expect(firstFront(points)).toEqual(points.map((_, i) => i).filter((i) => fronts[i] === 0));
      }),
    );
  });

  it('sorts into fronts', () => {
    expect(nonDominatedFronts(pop)).toEqual([0, 0, 0, 1, 1, 1, 2, 0]);
    expect(nonDominatedFronts([])).toEqual([]);
    expect(nonDominatedFronts([[1, 1]])).toEqual([0]);
  });

  it('crowding: the ends of a front are kept (infinite), inner points by the normalised gap between their neighbours', () => {
    const fronts = nonDominatedFronts(pop);
    const d = crowdingDistances(pop, fronts);
    // front 0 sorted by perplexity: a/h (10), b (12), c (15); by parameters: c (1), b (3), a/h (5)
    // b: (15 - 10) / (15 - 10) + (5 - 1) / (5 - 1) = 2; of a and h, one is an end in each objective
    expect(d[1]).toBe(2);
    expect(d[2]).toBe(Infinity);
    // front 1: d (11, 6), e (13, 4), f (16, 2): e is inner: (16 - 11) / 5 + (6 - 2) / 4 = 2
    expect([d[3], d[4], d[5]]).toEqual([Infinity, 2, Infinity]);
    // a front of one: infinite
    expect(d[6]).toBe(Infinity);
    // the crowded comparison: a lower front first, then the larger distance
    expect(crowdedBetter(4, 1, fronts, d)).toBe(false);
    expect(crowdedBetter(2, 1, fronts, d)).toBe(true);
    expect(crowdedBetter(6, 4, fronts, d)).toBe(false);
  });
});

describe('the pareto strategy', () => {
  it('is registered, ranks by several objectives, and refuses what evolution refuses', () => {
    expect(strategies.get('pareto')).toBe(pareto);
    expect(pareto.multiObjective).toBe(true);
    expect(strategies.get('evolution').multiObjective).toBeFalsy();
    expect(() => pareto.create({ seedDna, seed: 1, options: { tournamentSize: 9, populationSize: 4 } })).toThrow(/cannot be larger than populationSize/);
  });

  it('never picks a dominated program when the whole population is in the tournament: the lowest front wins, then the crowding', () => {
    // a population of three front-0 programs (the best perplexity, the smallest, one between) and one dominated
    const s = pareto.create({ seedDna, seed: 5, options: { populationSize: 4, tournamentSize: 4 } });
    const [seed] = s.ask(1);
    s.tell(seed!, { status: 'completed', fitness: 100, objectives: [100, 1000] });
    const told: Array<[Candidate, Outcome]> = [];
    const outcomes: Outcome[] = [
      { status: 'completed', fitness: 50, objectives: [50, 2000] }, // front 0 (best perplexity)
      { status: 'completed', fitness: 120, objectives: [120, 100] }, // front 0 (smallest)
      { status: 'completed', fitness: 90, objectives: [90, 3000] }, // dominated by the first
      { status: 'completed', fitness: 80, objectives: [80, 900] }, // front 0 (between)
    ];
    for (const o of outcomes) {
      const [c] = s.ask(1);
      s.tell(c!, o);
      told.push([c!, o]);
    }
    // the whole population in the tournament: the winner is on front 0 with the largest crowding (an end: the first such in order)
    const parents = new Set<number>();
    for (let i = 0; i < 20; i++) parents.add(s.ask(1)[0]!.parent!);
    const dominated = told[2]![0].id;
    expect(parents.has(dominated)).toBe(false);
    const pop = (s.state() as unknown as { population: Array<{ id: number; objectives: number[] }> }).population;
    expect(pop.map((m) => m.objectives)).toEqual(outcomes.map((o) => (o as { objectives: number[] }).objectives));
  });

  it('with perplexity alone it behaves as evolution', () => {
    const a = pareto.create({ seedDna, seed: 3, options: { populationSize: 5, tournamentSize: 2 } });
    const b = strategies.get('evolution').create({ seedDna, seed: 3, options: { populationSize: 5, tournamentSize: 2 } });
    for (let i = 0; i < 12; i++) {
      const [x] = a.ask(1);
      const [y] = b.ask(1);
      expect(x!.hash).toBe(y!.hash);
      // perplexity alone: no objectives told
      const { objectives: _, ...o } = syntheticOutcome(x!) as Outcome & { objectives?: number[] };
      a.tell(x!, o as Outcome);
      b.tell(y!, o as Outcome);
    }
  });
});
