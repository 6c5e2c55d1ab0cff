import { baselines } from '@primer-search/baselines';
import { dnaHash } from '@primer-search/dna';
import type { CandidateView, EvaluationRecord } from '@primer-search/store';
import type { StudyConfig } from '@primer-search/study';
import { describe, expect, it } from 'vitest';
import { chooseRetrainPrograms, matchingPlan, retrainJobNumber } from './retrain.js';

const evaluation = (hash: string, candidate: number, fitness: number | null, over: Partial<EvaluationRecord> = {}): EvaluationRecord => ({
  id: candidate,
  hash,
  candidate,
  status: fitness === null ? 'failed' : 'completed',
  fitness,
  hurdle: null,
  reason: null,
  curve: [],
  atHurdles: [],
  steps: 1,
  tokens: 1,
  trainSeconds: 1,
  wallSeconds: 1,
  budget: '1 steps',
  backend: 'wasm',
  machine: 'here',
  environment: null,
  parameters: 1,
  finishedAt: '',
  ...over,
});

const view = (id: number, hash: string, e: EvaluationRecord | null): CandidateView => ({
  id, hash, parent: id === 0 ? null : 0, mutations: [], dna: { note: hash }, hurdles: [], createdAt: '', told: true, reused: e !== null && e.candidate !== id, evaluation: e,
});

describe('chooseRetrainPrograms', () => {
  const config = { seedModel: 'vanilla' } as StudyConfig;
  const e = {
    h0: evaluation('h0', 0, 20),
    h1: evaluation('h1', 1, 15),
    h2: evaluation('h2', 2, 12, { status: 'hurdle', hurdle: 0 }),
    h3: evaluation('h3', 3, 18),
    h4: evaluation('h4', 4, 15, { sameAs: 'h1' }),
    h6: evaluation('h6', 6, null),
    h7: evaluation('h7', 7, 14),
  };
  const candidates = [
    view(0, 'h0', e.h0), view(1, 'h1', e.h1), view(2, 'h2', e.h2), view(3, 'h3', e.h3), view(4, 'h4', e.h4),
    view(5, 'h1', e.h1), // the same program as candidate 1
    view(6, 'h6', e.h6), view(7, 'h7', e.h7), view(8, 'h0', e.h0),
  ];

  it('puts the seed first, then the best distinct completed programs; hurdle stops, failures, repeats and equivalents are left out', () => {
    const p = chooseRetrainPrograms(config, candidates, 3);
    expect(p.map((x) => x.label)).toEqual(['seed (vanilla)', 'candidate 7', 'candidate 1', 'candidate 3']);
    expect(p.map((x) => x.searchFitness)).toEqual([20, 14, 15, 18]);
    expect(p[1]!.dna).toEqual({ note: 'h7' });
    expect(chooseRetrainPrograms(config, candidates, 0).map((x) => x.label)).toEqual(['seed (vanilla)']);
    expect(chooseRetrainPrograms(config, candidates, 10)).toHaveLength(4);
  });

  it('adds references that are not already among them', () => {
    const ez = baselines.get('primer-ez').build({ dModel: 64 });
    const p = chooseRetrainPrograms(config, candidates, 1, [{ label: 'primer-ez', dna: ez }]);
    expect(p.map((x) => [x.label, x.candidate, x.hash])).toEqual([['seed (vanilla)', 0, 'h0'], ['candidate 7', 7, 'h7'], ['primer-ez', null, dnaHash(ez)]]);
    const seedAgain = chooseRetrainPrograms(config, [view(0, dnaHash(ez), e.h0)], 1, [{ label: 'primer-ez', dna: ez }]);
    expect(seedAgain.map((x) => x.label)).toEqual(['seed (vanilla)']);
    expect(() => chooseRetrainPrograms(config, [], 1)).toThrow(/no candidates yet/);
  });

  it('a retraining is continued only with the same top, budget, seeds and references', () => {
    const plan = { id: 1, top: 2, budget: '5e12 FLOPs', seeds: [1, 2], references: ['primer-ez'], settings: {} as never, programs: [], createdAt: '' };
    const args = { top: 2, budget: { kind: 'flops' as const, flops: 5e12 }, seeds: [1, 2], references: [{ label: 'primer-ez', dna: {} as never }] };
    expect(matchingPlan([plan], args)).toBe(plan);
    expect(matchingPlan([plan], { ...args, top: 3 })).toBeUndefined();
    expect(matchingPlan([plan], { ...args, seeds: [1, 2, 3] })).toBeUndefined();
    expect(matchingPlan([plan], { ...args, budget: { kind: 'flops', flops: 6e12 } })).toBeUndefined();
    expect(matchingPlan([plan], { ...args, references: [] })).toBeUndefined();
  });
});

describe('retrainJobNumber', () => {
  it('gives each run of each retraining its own number, above any candidate id, the same every time', () => {
    const numbers = [1, 2].flatMap((plan) => [0, 1, 999].flatMap((program) => [0, 1, 999].map((seed) => retrainJobNumber(plan, program, seed))));
    expect(new Set(numbers).size).toBe(numbers.length);
    expect(Math.min(...numbers)).toBeGreaterThan(1e9);
    expect(numbers.every(Number.isSafeInteger)).toBe(true);
    expect(retrainJobNumber(2, 1, 0)).toBe(numbers[12]);
    expect(() => retrainJobNumber(1, 1000, 0)).toThrow(RangeError);
  });
});
