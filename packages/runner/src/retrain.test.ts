import { baselines } from '@primer-search/baselines';
import { dnaHash } from '@primer-search/dna';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStudyStore, type CandidateView, type EvaluationRecord } from '@primer-search/store';
import { contractPlan, contractRun } from '@primer-search/store/testing';
import type { StudyConfig } from '@primer-search/study';
import { describe, expect, it } from 'vitest';
import { chooseFidelityPrograms, chooseRetrainPrograms, matchingPlan, retrainJobNumber, reusableRuns } from './retrain.js';

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
    // a fidelity measurement is not a retraining, nor the other way round; its sample decides, not top
    const fidelity = { ...plan, id: 2, top: 0, sample: 5, references: [] };
    expect(matchingPlan([fidelity], { ...args, references: [] })).toBeUndefined();
    expect(matchingPlan([plan, fidelity], { ...args, references: [], top: 7, sample: 5 })).toBe(fidelity);
    expect(matchingPlan([plan, fidelity], { ...args, sample: 2 })).toBeUndefined();
  });

  it('a fidelity sample: the seed first, then distinct completed programs spread over the search, the best always in', () => {
    // distinct completed programs, best first: h7 (14), h1 (15), h3 (18), h0 (20, the seed)
    expect(chooseFidelityPrograms(config, candidates, 2).map((x) => x.label)).toEqual(['seed (vanilla)', 'candidate 7']);
    // the quantiles 0, 1.5 and 3: the seed (3) takes the last, 1.5 goes to the better of 1 and 2
    expect(chooseFidelityPrograms(config, candidates, 3).map((x) => x.label)).toEqual(['seed (vanilla)', 'candidate 7', 'candidate 1']);
    const all = chooseFidelityPrograms(config, candidates, 20);
    expect(all.map((x) => [x.label, x.searchFitness])).toEqual([['seed (vanilla)', 20], ['candidate 7', 14], ['candidate 1', 15], ['candidate 3', 18]]);
    // a seed whose search run failed is still the reference, but not a point
    const failedSeed = [view(0, 'h0', evaluation('h0', 0, null)), ...candidates.slice(1)];
    expect(chooseFidelityPrograms(config, failedSeed, 3).map((x) => [x.label, x.searchFitness])).toEqual([['seed (vanilla)', null], ['candidate 7', 14], ['candidate 1', 15], ['candidate 3', 18]]);
    expect(() => chooseFidelityPrograms(config, [view(0, 'h0', e.h0)], 3)).toThrow(/at least 2 distinct programs/);
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

describe('reusableRuns: the runs another study offers a retraining', () => {
  const data = { tokenizer: 'byte-utf8-257', trainTokens: 1000, validationTokens: 100 };
  const mine = { studyId: 'a', data, plugins: [], pluginIds: [] } as unknown as StudyConfig;
  const planHere = { ...contractPlan(), id: 1, createdAt: '', settings: { ...contractPlan().settings, seed: 7 } };
  const other = async (config: Record<string, unknown> | undefined, plans: Array<Parameters<typeof contractPlan>[0]> = []) => {
    const s = SqliteStudyStore.open(join(mkdtempSync(join(tmpdir(), 'primer-reuse-')), 'other.sqlite'));
    if (config) await s.createStudy(config);
    for (const p of plans) {
      const plan = await s.createRetrain(contractPlan(p));
      for (const program of [0, 1, 2]) await s.addRetrainRun(contractRun(plan.id, program, 1, 10 + program));
    }
    return s;
  };
  const theirs = { studyId: 'b', data, plugins: [], pluginIds: [] };

  it('takes the runs of retrainings with the same settings but the study seed, keyed by program hash and seed', async () => {
    const s = await other(theirs, [{}, { settings: { ...contractPlan().settings, dModel: 128 } }]);
    // a failed run is the machine's as much as the program's: not taken
    await s.addRetrainRun(contractRun(1, 0, 2, null));
    const r = await reusableRuns(mine, planHere, s);
    expect(r.refusal).toBeUndefined();
    expect(r.studyId).toBe('b');
    expect([...r.runs.keys()].sort()).toEqual(['h0/1', 'h1/1', 'hz/1']);
    expect(r.runs.get('h1/1')).toMatchObject({ retrain: 1, program: 1, fitness: 11 });
    // seeds that do not meet: none, and it says which they are
    const elsewhere = await reusableRuns(mine, { ...planHere, seeds: [4, 5] }, s);
    expect([elsewhere.runs.size, elsewhere.refusal]).toEqual([0, "none of its completed runs with these settings is of this retraining's programs and seeds (its seeds: 1; this retraining's: 4, 5)"]);
    // a time budget's runs depend on the machine: never taken
    const timed = { ...planHere, settings: { ...planHere.settings, budget: { kind: 'seconds' as const, seconds: 60 } } };
    expect((await reusableRuns(mine, timed, s)).refusal).toMatch(/budget is a time/);
    await s.close();
  });

  it('says why it offers none: no study, no data record, other data, other plugins, no retrainings, other settings', async () => {
    const why = async (config: Record<string, unknown> | undefined, plans: Array<Parameters<typeof contractPlan>[0]> = [{}], me = mine) => {
      const s = await other(config, plans);
      const r = await reusableRuns(me, planHere, s);
      await s.close();
      expect(r.runs.size).toBe(0);
      return r.refusal;
    };
    expect(await why(undefined, [])).toBe('it holds no study');
    expect(await why(theirs, [{}], { ...mine, data: undefined })).toMatch(/this study has no record of the data it began with/);
    expect(await why({ ...theirs, data: undefined })).toBe('it has no record of the data it began with');
    expect(await why({ ...theirs, data: { ...data, trainTokens: 999 } })).toMatch(/^it began with other data \(tokenizer byte-utf8-257, 999 training tokens; this study: byte-utf8-257, 1000\)$/);
    expect(await why({ ...theirs, pluginIds: [{ name: 'x', version: '1' }] })).toBe('it was run with other plugins');
    expect(await why(theirs, [])).toBe('it has no retrainings');
    expect(await why(theirs, [{ settings: { ...contractPlan().settings, dModel: 128, seqLen: 32 } }, { budget: '1e13 FLOPs', settings: { ...contractPlan().settings, budget: { kind: 'flops', flops: 1e13 } } }])).toBe(
      "none of its 2 retrainings has this one's settings (the closest differs in budget)",
    );
  });
});
