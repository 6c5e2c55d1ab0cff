import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { baselines } from '@primer-search/baselines';
import { planBlock } from '@primer-search/compiler';
import { dnaHash, type Dna, type Instruction } from '@primer-search/dna';
import type { TF } from '@primer-search/primitives';
import { strategies, type Candidate, type StrategyDefinition } from '@primer-search/search-strategies';
import { SqliteStudyStore } from '@primer-search/store';
import { DEFAULT_RUN_SETTINGS } from '@primer-search/study';
import { beforeAll, describe, expect, it } from 'vitest';
import { programBehaviour } from './behaviour.js';
import { InProcessPool, runSearch, summarizeStudy, type EvaluationJob, type EvaluationPool, type StudyConfig } from './index.js';

const SIZE = { dModel: 16, seqLen: 16 };
const seed = baselines.get('vanilla').build({ dModel: 16, heads: 2 });
const op = (o: Partial<Instruction> & { op: string }): Instruction => ({ input1: 0, input2: 0, constant: 0, dimSize: 0, branching: 1, target: 0, ...o }) as Instruction;

/** The seed with `edit` applied to its subprogram called `name` (and a constant 2 in the bank). */
function variant(name: string, edit: (instructions: Instruction[]) => Instruction[]): Dna {
  const d = structuredClone(seed);
  d.bank.constants.push(2);
  const sp = d.subprograms.find((s) => s.name === name)!;
  sp.instructions = edit(sp.instructions);
  return d;
}
const TWO = seed.bank.constants.length; // the index of the constant 2
// relu(x) * 2 and relu(x) + relu(x): different code, the same function
const timesTwo = variant('relu', (xs) => [...xs, op({ op: 'C_MUL', input1: 4, constant: TWO })]);
const plusItself = variant('relu', (xs) => [...xs, op({ op: 'ADD', input1: 4, input2: 4 })]);
// attention's output projection with a bias after it, or before it: the same weights (shapes and
// initialisers), a different function; at the training initialisation (bias 0) the same outputs
const biasAfter = variant('multi_head_attention', (xs) => [...xs, op({ op: 'SHIFT', input1: 3 })]);
const biasBefore = variant('multi_head_attention', ([call, dense]) => [call!, op({ op: 'SHIFT', input1: 2 }), { ...dense!, input1: 3 }]);

describe('programBehaviour (functional equivalence)', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });
  const behaviour = (dna: Dna) => programBehaviour(tf as unknown as TF, dna, SIZE);

  it('is the same for two programs that compute the same function with different code (x * 2 and x + x)', async () => {
    expect(dnaHash(timesTwo)).not.toBe(dnaHash(plusItself));
    expect(await behaviour(timesTwo)).toMatch(/^[0-9a-f]{32}$/);
    expect(await behaviour(timesTwo)).toBe(await behaviour(plusItself));
    expect(await behaviour(timesTwo)).not.toBe(await behaviour(seed));
    expect(await behaviour(seed)).toBe(await behaviour(structuredClone(seed)));
  });

  it('tells apart programs that differ only in where a weight sits (the same parameter shapes and initialisers)', async () => {
    const specs = (dna: Dna) => planBlock(dna, SIZE).params.map((p) => JSON.stringify([p.spec.shape, p.spec.init])).sort();
    expect(specs(biasAfter)).toEqual(specs(biasBefore));
    expect(await behaviour(biasAfter)).not.toBe(await behaviour(biasBefore));
    expect(await behaviour(biasAfter)).not.toBe(await behaviour(seed));
  });

  it('is null for a program that cannot be planned', async () => {
    expect(await programBehaviour(tf as unknown as TF, { nonsense: true }, SIZE)).toBeNull();
  });
});

/** A strategy proposing the seed, then a fixed list of programs (for tests). */
const listed = (programs: Dna[]): StrategyDefinition => ({
  name: 'test-listed',
  description: 'the seed, then fixed programs',
  create(context, state) {
    let next = (state as unknown as { next?: number } | undefined)?.next ?? 0;
    return {
      name: 'test-listed',
      ask(count = 1) {
        return Array.from({ length: count }, (): Candidate => {
          const dna = next === 0 ? context.seedDna : programs[(next - 1) % programs.length]!;
          return { id: next++, dna, hash: dnaHash(dna), parent: next === 1 ? undefined : 0, mutations: [] };
        });
      },
      tell() {},
      state: () => ({ strategy: 'test-listed', version: 1, next }) as never,
    };
  },
});

class CountingPool implements EvaluationPool {
  readonly size = 1;
  readonly trained: number[] = [];
  private readonly inner = new InProcessPool();
  async run(job: EvaluationJob, o: Parameters<EvaluationPool['run']>[1]) {
    const r = await this.inner.run(job, o);
    if (r.status !== 'equivalent') this.trained.push(job.candidate);
    return r;
  }
  async close() {}
}

describe('behaviour de-duplication in a search', () => {
  const config = (name: string, dedupeBehaviour: boolean): StudyConfig => ({
    format: 'primer-study',
    version: 1,
    strategy: name,
    strategyOptions: {},
    seedModel: 'vanilla',
    seedDna: seed,
    seed: 1,
    candidates: 5,
    inFlight: 1,
    hurdles: [],
    hurdleMinSamples: 1,
    dedupeBehaviour,
    settings: { ...DEFAULT_RUN_SETTINGS, layers: 1, dModel: 16, seqLen: 16, batch: 4, evalWindows: 4, budget: { kind: 'steps', steps: 4 } },
    plugins: [],
    candidateTimeoutSeconds: 300,
  });
  const file = () => join(mkdtempSync(join(tmpdir(), 'primer-behaviour-')), 'study.sqlite');

  it('two different but equivalent programs share one evaluation; two that differ only in where a weight sits are both trained; off, every program trains', async () => {
    if (!strategies.has('test-listed')) strategies.register('test-listed', listed([timesTwo, plusItself, biasAfter, biasBefore]));
    const store = SqliteStudyStore.open(file());
    const pool = new CountingPool();
    await runSearch({ store, config: config('test-listed', true), pool });
    const byCandidate = new Map((await store.evaluations()).map((e) => [e.candidate, e]));
    expect(pool.trained).toEqual([0, 1, 3, 4]);
    const [a, b] = [byCandidate.get(1)!, byCandidate.get(2)!];
    expect(b.hash).toBe(dnaHash(plusItself));
    expect(b.sameAs).toBe(a.hash);
    expect(b.behaviour).toBe(a.behaviour);
    expect([b.fitness, b.status, b.steps]).toEqual([a.fitness, a.status, a.steps]);
    expect(byCandidate.get(3)!.sameAs).toBeNull();
    expect(byCandidate.get(4)!.sameAs).toBeNull();
    expect(byCandidate.get(3)!.behaviour).not.toBe(byCandidate.get(4)!.behaviour);
    const s = await summarizeStudy(store);
    expect(s.equivalent).toEqual({ programs: 1, trainSecondsSaved: a.trainSeconds });
    expect(s.trained).toBe(4);
    expect(s.leaderboard.map((e) => e.id)).not.toContain(2);
    await store.close();

    const off = SqliteStudyStore.open(file());
    const all = new CountingPool();
    await runSearch({ store: off, config: config('test-listed', false), pool: all });
    expect(all.trained).toEqual([0, 1, 2, 3, 4]);
    expect((await off.evaluations()).every((e) => e.sameAs === null && e.behaviour === null)).toBe(true);
    expect((await summarizeStudy(off)).equivalent.programs).toBe(0);
    await off.close();
  }, 120_000);
});
