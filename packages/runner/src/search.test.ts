import { fileURLToPath, pathToFileURL } from 'node:url';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { baselines } from '@primer-search/baselines';
import { writeTree } from '../../datasets/src/__fixtures__/lm1b.js';
import { callChain, fanOut, opChain, wideProjections } from '../../dna/src/__fixtures__/large-programs.js';
import { DNA_LIMITS, mutateDna, type Dna } from '@primer-search/dna';
import { Rng } from '@primer-search/core';
import { Proposer, strategies, type Candidate, type StrategyDefinition, type StrategyState } from '@primer-search/search-strategies';
import { SqliteStudyStore } from '@primer-search/store';
import { DEFAULT_RUN_SETTINGS, type RunSettings } from '@primer-search/trainer-gpu';
import { describe, expect, it } from 'vitest';
import { FAILURE_CATEGORIES, InProcessPool, LocalWorkerPool, failureCategory, hurdleThresholds, machinesOf, runSearch, summarizeStudy, type EvaluationJob, type JobResult, type EvaluationPool, type StudyConfig } from './index.js';

const seedDna = baselines.get('vanilla').build({ dModel: 16, heads: 2 });
const settings = (over: Partial<RunSettings> = {}): RunSettings => ({
  ...DEFAULT_RUN_SETTINGS,
  layers: 1,
  dModel: 16,
  seqLen: 16,
  batch: 4,
  evalWindows: 4,
  budget: { kind: 'steps', steps: 4 },
  ...over,
});
const config = (over: Partial<StudyConfig> = {}): StudyConfig => ({
  format: 'primer-study',
  version: 1,
  strategy: 'evolution',
  strategyOptions: { populationSize: 4, tournamentSize: 2 },
  seedModel: 'vanilla',
  seedDna,
  seed: 1,
  candidates: 8,
  inFlight: 2,
  hurdles: [],
  hurdleMinSamples: 1,
  settings: settings(),
  plugins: [],
  candidateTimeoutSeconds: 300,
  ...over,
});
const studyFile = () => join(mkdtempSync(join(tmpdir(), 'primer-search-')), 'study.sqlite');

/** Counts trainings; runs them in this process. */
class CountingPool implements EvaluationPool {
  readonly size = 1;
  readonly trained: number[] = [];
  private readonly inner = new InProcessPool();
  run(job: EvaluationJob, o: Parameters<EvaluationPool['run']>[1]) {
    this.trained.push(job.candidate);
    return this.inner.run(job, o);
  }
  async close() {}
}

// A strategy that proposes every new child twice in a row: the second is the same program.
const twice: StrategyDefinition = {
  name: 'test-twice',
  description: 'each child twice (a test strategy)',
  create(context, state?: StrategyState) {
    const s = state as unknown as { base: ConstructorParameters<typeof Proposer>[1]; last: Candidate | null } | undefined;
    const p = new Proposer(context, s?.base);
    let last = s?.last ?? null;
    return {
      name: 'test-twice',
      ask(count = 1) {
        return Array.from({ length: count }, () => {
          if (p.nextId === 0) return p.seedCandidate();
          if (last && p.nextId % 2 === 0) return { ...structuredClone(last), id: p.nextId++ };
          last = p.child({ id: 0, dna: p.seedDna });
          return last;
        });
      },
      tell(c, o) {
        p.noteOutcome(c, o);
      },
      state: () => ({ strategy: 'test-twice', version: 1, base: p.base(), last }),
    };
  },
};
if (!strategies.has('test-twice')) strategies.register('test-twice', twice);

describe('runSearch', () => {
  it('runs a study to the end, recording every candidate and its evaluation', async () => {
    const store = SqliteStudyStore.open(studyFile());
    const events: string[] = [];
    const r = await runSearch({ store, config: config(), pool: new InProcessPool(), onEvent: (e) => events.push(e.type) });
    expect(r.stopped).toBe(false);
    const s = await summarizeStudy(store);
    expect(s.candidates).toBe(8);
    expect(s.told).toBe(8);
    expect(s.trained + s.reused).toBe(8);
    expect(s.completed).toBeGreaterThan(0);
    expect(s.leaderboard.map((e) => e.fitness)).toEqual([...s.leaderboard.map((e) => e.fitness)].sort((a, b) => a - b));
    expect(s.bestLineage[0]).toBe(0);
    expect(events.filter((e) => e === 'told')).toHaveLength(8);
    for (const e of await store.evaluations()) {
      expect(e.budget).toBe('4 steps');
      expect(e.backend).toBe('wasm');
      if (e.status === 'completed') expect(e.steps).toBe(4);
    }
    await store.close();
  });

  it('trains each program once: a repeated program reuses the result', async () => {
    const store = SqliteStudyStore.open(studyFile());
    const pool = new CountingPool();
    await runSearch({ store, config: config({ strategy: 'test-twice', strategyOptions: {}, candidates: 7, inFlight: 1 }), pool });
    const cs = await store.candidates();
    const distinct = new Set(cs.map((c) => c.hash)).size;
    expect(distinct).toBe(4); // the seed and three children, each proposed twice
    expect(pool.trained).toEqual([0, 1, 3, 5]);
    expect(cs.filter((c) => c.reused).map((c) => c.id)).toEqual([2, 4, 6]);
    expect((await summarizeStudy(store)).reused).toBe(3);
    await store.close();
  });

  it('resumes after a stop and ends with the same population as an uninterrupted run', async () => {
    const whole = SqliteStudyStore.open(studyFile());
    await runSearch({ store: whole, config: config({ candidates: 10 }), pool: new InProcessPool() });

    const file = studyFile();
    const stop = new AbortController();
    let told = 0;
    const first = SqliteStudyStore.open(file);
    const r1 = await runSearch({
      store: first,
      config: config({ candidates: 10 }),
      pool: new InProcessPool(),
      signal: stop.signal,
      onEvent: (e) => {
        if (e.type === 'told' && ++told === 4) stop.abort();
      },
    });
    expect(r1.stopped).toBe(true);
    await first.close();
    const second = SqliteStudyStore.open(file);
    await expect(runSearch({ store: second, config: config(), pool: new InProcessPool() })).rejects.toThrow(/already holds a study; add --resume/);
    const r2 = await runSearch({ store: second, resume: true, pool: new InProcessPool() });
    expect(r2.stopped).toBe(false);
    expect(await second.latestSnapshot()).toEqual(await whole.latestSnapshot());
    expect((await second.candidates()).map((c) => c.hash)).toEqual((await whole.candidates()).map((c) => c.hash));
    await whole.close();
    await second.close();
  });

  it('extends a finished study with more candidates, and remembers the new total', async () => {
    const store = SqliteStudyStore.open(studyFile());
    await runSearch({ store, config: config({ candidates: 4 }), pool: new InProcessPool() });
    expect(await store.candidates()).toHaveLength(4);
    const pool = new CountingPool();
    await runSearch({ store, resume: true, candidates: 6, pool });
    expect(await store.candidates()).toHaveLength(6);
    expect(pool.trained.every((id) => id >= 4)).toBe(true);
    expect((await summarizeStudy(store)).told).toBe(6);
    const again = new CountingPool();
    await runSearch({ store, resume: true, pool: again });
    expect(again.trained).toEqual([]);
    expect(await store.candidates()).toHaveLength(6);
    await store.close();
  });

  it('takes the hurdle median over distinct programs: a program proposed three times counts once', async () => {
    const at = (v: number | null) => ({ atHurdles: [v] });
    const evaluations = new Map([['A', at(10)], ['B', at(20)], ['C', at(30)], ['D', at(null)]]);
    const config = { hurdles: [0.5], hurdleMinSamples: 3 };
    // counted per candidate, A's three proposals would make the median 10
    expect(hurdleThresholds(['A', 'A', 'B', 'A', 'C', 'D'], evaluations, config)).toEqual([20]);
    // three candidates but two programs: not yet enough samples
    expect(hurdleThresholds(['A', 'A', 'B'], evaluations, config)).toEqual([null]);
  });

  it('stops candidates below the median at a hurdle, and counts the saving', async () => {
    const store = SqliteStudyStore.open(studyFile());
    await runSearch({
      store,
      config: config({ candidates: 12, hurdles: [0.5], hurdleMinSamples: 2, settings: settings({ budget: { kind: 'steps', steps: 6 } }) }),
      pool: new InProcessPool(),
    });
    const evaluations = await store.evaluations();
    const stopped = evaluations.filter((e) => e.status === 'hurdle');
    expect(stopped.length).toBeGreaterThan(0);
    for (const e of stopped) {
      const c = (await store.candidate(e.candidate))!;
      expect(e.steps).toBe(3);
      expect(e.fitness).toBe(e.atHurdles[0]);
      expect(e.fitness!).toBeGreaterThan(c.hurdles[0]!);
    }
    for (const e of evaluations.filter((x) => x.status === 'completed')) {
      const threshold = (await store.candidate(e.candidate))!.hurdles[0];
      if (threshold !== null && threshold !== undefined) expect(e.atHurdles[0]!).toBeLessThanOrEqual(threshold);
    }
    // candidates proposed before two results existed had no threshold
    expect((await store.candidate(0))!.hurdles).toEqual([null]);
    const s = await summarizeStudy(store);
    expect(s.stoppedAtHurdle).toEqual([stopped.length]);
    expect(s.hurdleSavings.budgets).toBeCloseTo(stopped.length * 0.5);
    await store.close();
  });

  it('says clearly when the seed itself fails', async () => {
    const store = SqliteStudyStore.open(studyFile());
    const bad = config({ settings: settings({ train: { learningRate: 1e12, clipNorm: 0, warmupSteps: 0 }, budget: { kind: 'steps', steps: 8 } }) });
    await expect(runSearch({ store, config: bad, pool: new InProcessPool() })).rejects.toThrow(/the seed \(vanilla\) failed.*diverged/);
    expect((await store.evaluations())[0]!.reason).toMatch(/^diverged: the .* stopped being finite at step/);
    await store.close();
  });

  it('refuses a bad configuration, naming the field', async () => {
    const store = SqliteStudyStore.open(studyFile());
    await expect(runSearch({ store, config: config({ hurdles: [0.5, 0.25] }), pool: new InProcessPool() })).rejects.toThrow(/hurdles must be increasing/);
    await expect(runSearch({ store, resume: true, pool: new InProcessPool() })).rejects.toThrow(/holds no study to resume/);
    await store.close();
  });
});

describe('LocalWorkerPool', () => {
  const plugin = pathToFileURL(fileURLToPath(new URL('./__fixtures__/misbehaving-plugin.ts', import.meta.url))).href;
  const withOp = (op: string): Dna => {
    const dna = structuredClone(seedDna);
    // the seed's main program: replace its first unary op's input-side instruction with a wrapper op
    dna.subprograms[0]!.instructions.unshift({ op, input1: 0, input2: 0, constant: 0, dimSize: 0, target: 0, branching: 1 });
    for (const ins of dna.subprograms[0]!.instructions.slice(1)) {
      if (ins.input1 >= 1) ins.input1++;
      if (ins.input2 >= 1) ins.input2++;
    }
    dna.subprograms[0]!.instructions[1]!.input1 = 1;
    return dna;
  };
  const job = (dna: unknown, over: Partial<EvaluationJob> = {}): EvaluationJob => ({
    candidate: 1,
    hash: 'h',
    dna,
    settings: settings(),
    hurdles: [],
    plugins: [plugin],
    ...over,
  });

  it('trains in worker processes, reusing them', async () => {
    const pool = new LocalWorkerPool(2);
    try {
      const [a, b] = await Promise.all([pool.run(job(seedDna, { candidate: 1 }), { timeoutSeconds: 120 }), pool.run(job(seedDna, { candidate: 2 }), { timeoutSeconds: 120 })]);
      expect(a.status).toBe('completed');
      expect((b as JobResult).fitness).toBeCloseTo((a as JobResult).fitness!, 4); // same program, same seed, another process
      const progress: number[] = [];
      const c = await pool.run(job(seedDna, { candidate: 3 }), { timeoutSeconds: 120, onProgress: (p) => progress.push(p.progress) });
      expect((c as JobResult).fitness).toBeCloseTo((a as JobResult).fitness!, 4);
      expect(progress.at(-1)).toBe(1);
    } finally {
      await pool.close();
    }
  });

  it('records a crash, a timeout and running out of memory as failures, and keeps going', async () => {
    const pool = new LocalWorkerPool(1, { execArgv: ['--max-old-space-size=96'] });
    try {
      const crash = await pool.run(job(withOp('TEST_CRASH')), { timeoutSeconds: 120 });
      expect(crash.status).toBe('failed');
      expect((crash as JobResult).reason).toMatch(/^crashed: the worker died \(exit code 7\)/);
      // a crash before its first step: nothing trained, nothing recorded
      expect([(crash as JobResult).steps, (crash as JobResult).tokens, (crash as JobResult).backend]).toEqual([0, 0, null]);
      const slow = await pool.run(job(seedDna, { settings: settings({ budget: { kind: 'seconds', seconds: 60 } }) }), { timeoutSeconds: 4 });
      expect((slow as JobResult).reason).toBe('timeout: no result after 4s');
      const hog = await pool.run(job(withOp('TEST_HOG')), { timeoutSeconds: 120 });
      expect((hog as JobResult).reason).toMatch(/^out of memory/);
      // a worker dying in the middle of training (at its half-way evaluation): what its last progress report said it had trained is recorded,
      // on the backend it named, so a study counts that training and its cost
      const midway = (await pool.run(job(withOp('TEST_CRASH_LATER'), { settings: settings({ budget: { kind: 'steps', steps: 40 } }), hurdles: [{ fraction: 0.5, threshold: null }] }), { timeoutSeconds: 120 })) as JobResult;
      expect(midway.reason).toMatch(/^crashed: the worker died \(exit code 7\)/);
      expect(midway.steps).toBeGreaterThan(0);
      expect(midway.steps).toBeLessThanOrEqual(20);
      expect(midway.tokens).toBe(midway.steps * 4 * 16);
      expect(midway.trainSeconds).toBeGreaterThan(0);
      expect(midway.backend).toBe('wasm');
      const fine = await pool.run(job(seedDna), { timeoutSeconds: 120 });
      expect(fine.status).toBe('completed');
      // out of memory without dying: the process retires after its result, and the very next job goes to a fresh one, not to it
      const refused = await pool.run(job(withOp('TEST_ALLOC_FAIL')), { timeoutSeconds: 120 });
      expect((refused as JobResult).reason).toMatch(/^out of memory: .*Array buffer allocation failed/);
      const next = await pool.run(job(seedDna), { timeoutSeconds: 120 });
      expect(next.status, (next as JobResult).reason ?? '').toBe('completed');
    } finally {
      await pool.close();
    }
  });

  it('an error in the middle of training records what was trained by then, on its backend', async () => {
    // (the op fails at its third application: the block is applied to build the model and record its training step, then at the first evaluation, here half-way)
    const r = (await new InProcessPool().run(job(withOp('TEST_FAIL_LATER'), { settings: settings({ budget: { kind: 'steps', steps: 40 } }), hurdles: [{ fraction: 0.5, threshold: null }] }), { timeoutSeconds: 120 })) as JobResult;
    expect([r.status, r.reason]).toEqual(['failed', 'error: a failure in the middle of training']);
    expect(r.steps).toBeGreaterThan(0);
    expect(r.steps).toBeLessThan(40);
    expect(r.tokens).toBe(r.steps * 4 * 16);
    expect(r.backend).toBe('wasm');
  });

  it('a worker process stopped from outside (SIGTERM, SIGHUP) is an interruption, never the program\'s failure; a search stopping meanwhile records nothing', async () => {
    // (worker processes ignore SIGINT: Ctrl-C reaches the whole process group, and the parent decides what stops)
    for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
      const pool = new LocalWorkerPool(1);
      try {
        const running = pool.run(job(seedDna, { settings: settings({ budget: { kind: 'seconds', seconds: 60 } }) }), { timeoutSeconds: 120 });
        const workers = (pool as unknown as { workers: Array<{ child: { kill(s: string): void } }> }).workers;
        await new Promise((r) => setTimeout(r, 1500));
        workers[0]!.child.kill(signal);
        const outcome = await running;
        expect(outcome).toMatchObject({ status: 'environment', reason: `interrupted: the worker process was stopped (killed by ${signal})` });
      } finally {
        await pool.close();
      }
    }
    // the search's own stop, arriving after its worker process's death: stopped, nothing recorded
    const file = studyFile();
    const store = SqliteStudyStore.open(file);
    const stop = new AbortController();
    const pool: EvaluationPool = {
      size: 1,
      run: async (j) => {
        setTimeout(() => stop.abort(), 300);
        return { candidate: j.candidate, hash: j.hash, status: 'environment', reason: 'interrupted: the worker process was stopped (killed by SIGINT)' };
      },
      close: async () => {},
    };
    const out = await runSearch({ store, config: config({ candidates: 2 }), pool, signal: stop.signal });
    expect(out.stopped).toBe(true);
    expect(await store.evaluations()).toEqual([]);
    await store.close();
  }, 60_000);

  it('closes its pool and lets go of the study on an early failure (the store refusing to create the study)', async () => {
    const file = studyFile();
    const store = SqliteStudyStore.open(file);
    const failing = Object.assign(Object.create(store) as SqliteStudyStore, { createStudy: async () => Promise.reject(new Error('disk full')) });
    let closed = 0;
    const pool: EvaluationPool = { size: 1, run: async () => Promise.reject(new Error('not reached')), close: async () => void closed++ };
    await expect(runSearch({ store: failing, config: config(), pool })).rejects.toThrow('disk full');
    expect(closed).toBe(1);
    // the controller lock went with it
    const again = await store.lockController();
    await again.release();
    await store.close();
  });

  it('stops the search on a failure of the environment, records nothing against the program, and resumes once it is fixed', async () => {
    const data = mkdtempSync(join(tmpdir(), 'primer-no-lm1b-'));
    const file = studyFile();
    const store = SqliteStudyStore.open(file);
    const cfg = config({ candidates: 3, settings: settings({ dataset: 'lm1b', dataDir: data, cache: join(data, 'cache') }) });
    const outcome = await new InProcessPool().run(job(seedDna, { settings: cfg.settings, plugins: [] }), { timeoutSeconds: 60 });
    expect(outcome.status).toBe('environment');
    await expect(runSearch({ store, config: cfg, pool: new InProcessPool() })).rejects.toThrow(
      /the search stopped: candidate 0 could not be trained, for a reason that is not its program's: .*LM1B.*Nothing was recorded for it; fix this, then continue with --resume/s,
    );
    expect(await store.evaluations()).toHaveLength(0);
    writeTree(data);
    const done = await runSearch({ store, resume: true, pool: new InProcessPool() });
    expect(done.stopped).toBe(false);
    expect((await store.evaluations()).filter((e) => e.status === 'completed').length).toBeGreaterThan(0);
    await store.close();
  });

  it('counts a machine only for the programs it trained: one refused before its first step was trained nowhere', () => {
    const base = { steps: 40, trainSeconds: 8, backend: 'wasm', machine: 'vm', environment: null } as const;
    const evaluation = (over: object) => ({ ...base, ...over }) as unknown as Parameters<typeof machinesOf>[0][number];
    const rows = machinesOf([
      evaluation({}),
      evaluation({ steps: 20, trainSeconds: 2 }),
      // refused by the memory limit before training: no step, no backend
      evaluation({ status: 'failed', steps: 0, trainSeconds: 0, backend: null }),
      // diverged at its first step: it was trained, on wasm
      evaluation({ status: 'failed', steps: 0, trainSeconds: 0.5 }),
    ]);
    expect(rows).toEqual([expect.objectContaining({ host: 'vm', backend: 'wasm', evaluations: 3, trainSeconds: 10.5, stepsPerSecond: 60 / 10.5 })]);
  });

  it('reports a program the compiler refuses as invalid', async () => {
    const pool = new InProcessPool();
    const dna = structuredClone(seedDna);
    dna.bank.dimSizes = dna.bank.dimSizes.map(() => 4096);
    const r = await pool.run(job(dna, { plugins: [] }), { timeoutSeconds: 60 });
    expect(r.status).toBe('failed');
    expect((r as JobResult).reason).toMatch(/^invalid: /);
  });
});

describe('programs at the limits, through a worker process', () => {
  const wide = wideProjections();

  it('each end as that candidate\'s result with a reason, never the death of the worker or the search', async () => {
    const rng = Rng.create(77);
    const programs: Array<[string, unknown]> = [
      ['4,096-op chain', opChain(DNA_LIMITS.instructions)],
      ['4,097-op chain', opChain(DNA_LIMITS.instructions + 1)],
      ['call depth 32', callChain(DNA_LIMITS.callDepth)],
      ['call depth 33', callChain(DNA_LIMITS.callDepth + 1)],
      ['fan-out of 1,365 instances', fanOut(5, 4)],
      ['fan-out of 16^6 instances', fanOut(6, 16)],
      ['64u-wide projections at dModel 2048', wide],
      // twelve mutations deep
      ...Array.from({ length: 3 }, (_, k) => {
        let d: Dna = seedDna;
        for (let m = 0; m < 12; m++) d = mutateDna(d, rng, { requireValid: true }).child;
        return [`mutant ${k}`, d] as [string, unknown];
      }),
    ];
    const pool = new LocalWorkerPool(1);
    const outcomes: Record<string, string> = {};
    try {
      for (const [i, [name, program]] of programs.entries()) {
        const wideOne = name.startsWith('64u');
        const r = await pool.run(
          {
            candidate: i,
            hash: `h${i}`,
            dna: program,
            settings: settings({ budget: { kind: 'steps', steps: 2 }, dModel: wideOne ? 2048 : 16, evalWindows: 4 }),
            hurdles: [],
            plugins: [],
          },
          { timeoutSeconds: 240 },
        );
        expect(r.status, name).not.toBe('environment');
        if (r.status === 'failed') expect(FAILURE_CATEGORIES.includes(failureCategory(r.reason!) as never), `${name}: ${r.reason}`).toBe(true);
        outcomes[name] = r.status === 'failed' ? r.reason!.split(':')[0]! : r.status;
        if (r.status === 'failed') outcomes[name] += ` (${r.reason!.slice(0, 90)})`;
      }
    } finally {
      await pool.close();
    }
    expect(outcomes['4,097-op chain']).toMatch(/^invalid .*too many instructions/);
    expect(outcomes['call depth 33']).toMatch(/^invalid .*call depth/);
    expect(outcomes['fan-out of 16^6 instances']).toMatch(/^invalid .*too many subprogram instances/);
    expect(outcomes['4,096-op chain']).toBe('completed');
    expect(outcomes['call depth 32']).toBe('completed');
    expect(outcomes['fan-out of 1,365 instances']).toBe('completed');
    expect(outcomes['64u-wide projections at dModel 2048']).toMatch(/^invalid .*(parameters|estimated to hold)/);
  }, 600_000);
});
