/**
 * The contract every study store keeps, as a test suite shipped as code (in the spirit of
 * Optuna's storage tests): the SQLite store and the PostgreSQL store run it, and so can a
 * third party's. From a vitest file:
 *
 *   import { describeStoreContract } from '@primer-search/store/testing';
 *   describeStoreContract('MyStore', { create: () => MyStore.open(newUrl()), reopen: (s) => MyStore.open(s.location) });
 */
import type { CandidateRecord, NewEvaluation, NewRetrainPlan, NewRetrainRun, TrainingEnvironment, WorkerRecord } from '@primer-search/study';
import { describe, expect, it } from 'vitest';
import type { StudyStore } from './types.js';

export interface StoreFactory {
  /** A store for a new, empty study. */
  create(): Promise<StudyStore>;
  /** Another handle on the same study (another connection, as another process would have). */
  reopen(store: StudyStore): Promise<StudyStore>;
}

export const contractCandidate = (id: number, hash: string, parent: number | null = null): CandidateRecord => ({
  id,
  hash,
  parent,
  mutations: parent === null ? [] : [{ kind: 'swap', description: 'swap h2 and h3' }],
  dna: { format: 'primer-dna', note: `candidate ${id}`, unicode: 'Zürich – ✓' },
  hurdles: [null, 12.5],
  createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, id)).toISOString(),
});

export const contractEvaluation = (hash: string, candidate: number, fitness: number | null, over: Partial<NewEvaluation> = {}): NewEvaluation => ({
  hash,
  candidate,
  status: fitness === null ? 'failed' : 'completed',
  fitness,
  hurdle: null,
  reason: fitness === null ? 'diverged: the training loss stopped being finite at step 3' : null,
  curve: fitness === null ? [] : [{ step: 10, tokens: 640, seconds: 1.25, perplexity: fitness }],
  atHurdles: [fitness, null],
  steps: 10,
  tokens: 640,
  trainSeconds: 1.25,
  wallSeconds: 2.5,
  budget: '10 steps',
  backend: 'wasm',
  machine: 'test-host',
  environment: contractEnvironment('test-host'),
  parameters: 1234,
  ...over,
});

export const contractEnvironment = (host: string, over: Partial<TrainingEnvironment> = {}): TrainingEnvironment => ({
  host,
  backend: 'wasm',
  device: 'Test CPU @ 2.0GHz x2',
  tfjs: '4.22.0',
  project: '0.1.0',
  node: 'v20.19.0',
  ...over,
});

export const contractWorker = (id: string, over: Partial<WorkerRecord> = {}): WorkerRecord => ({
  id,
  environment: contractEnvironment(`host-${id}`),
  plugins: [{ name: 'ops.js', sha256: '0123456789abcdef' }, { name: '@acme/primer-ops', version: '1.2.3' }],
  allowMixedHardware: false,
  startedAt: new Date(Date.UTC(2026, 0, 2)).toISOString(),
  ...over,
});

export const contractPlan = (over: Partial<NewRetrainPlan> = {}): NewRetrainPlan => ({
  top: 2,
  budget: '5e12 FLOPs',
  seeds: [1, 2, 3],
  references: ['primer-ez'],
  settings: { dataset: 'brown', tokenizer: 'byte', layers: 2, dModel: 64, seqLen: 64, batch: 16, seed: 1, evalWindows: 64, train: {}, budget: { kind: 'flops', flops: 5e12 } },
  programs: [
    { label: 'seed (vanilla)', hash: 'h0', candidate: 0, searchFitness: 12, dna: { format: 'primer-dna', note: 'seed' } },
    { label: 'candidate 1', hash: 'h1', candidate: 1, searchFitness: 9.75, dna: { format: 'primer-dna', note: 'Zürich – ✓' } },
    { label: 'primer-ez', hash: 'hz', candidate: null, searchFitness: null, dna: { format: 'primer-dna' } },
  ],
  ...over,
});

export const contractRun = (retrain: number, program: number, seed: number, fitness: number | null): NewRetrainRun => ({
  retrain,
  program,
  seed,
  status: fitness === null ? 'failed' : 'completed',
  fitness,
  reason: fitness === null ? 'diverged: the training loss stopped being finite at step 3' : null,
  curve: fitness === null ? [] : [{ step: 10, tokens: 640, seconds: 1.25, perplexity: fitness * 2, flops: 1.5e9 }, { step: 20, tokens: 1280, seconds: 2.5, perplexity: fitness, flops: 3e9 }],
  steps: 20,
  tokens: 1280,
  trainSeconds: 2.5,
  wallSeconds: 4,
  backend: 'wasm',
  machine: 'test-host',
  environment: contractEnvironment('test-host'),
  parameters: 1234,
  vocabSize: 257,
});

export function describeStoreContract(name: string, factory: StoreFactory): void {
  describe(`${name} (store contract)`, () => {
    it('holds no study when new; keeps the configuration it is given, once', async () => {
      const s = await factory.create();
      try {
        expect(await s.config()).toBeUndefined();
        expect(await s.latestSnapshot()).toBeUndefined();
        expect(await s.candidates()).toEqual([]);
        await s.createStudy({ strategy: 'evolution', seed: 1, nested: { list: [1, 2.5, null] } });
        await expect(s.createStudy({})).rejects.toThrow(/already holds a study/);
        expect(await s.config()).toEqual({ strategy: 'evolution', seed: 1, nested: { list: [1, 2.5, null] } });
        await s.updateStudy({ strategy: 'evolution', seed: 1, candidates: 40 });
        expect(await s.config()).toEqual({ strategy: 'evolution', seed: 1, candidates: 40 });
      } finally {
        await s.close();
      }
    });

    it('lets one controller at a time hold the study: a second taker is refused, naming the study, until the first lets go or closes', async () => {
      const s = await factory.create();
      const other = await factory.reopen(s);
      try {
        await s.createStudy({ candidates: 1 });
        const held = await s.lockController();
        await expect(other.lockController()).rejects.toThrow(/is in use by another primer search or study retrain \(one controller at a time\)/);
        await held.release();
        const second = await other.lockController();
        await expect(s.lockController()).rejects.toThrow(/is in use/);
        await other.close();
        // closing the holder lets go too
        const third = await s.lockController();
        await third.release();
        void second;
      } finally {
        await s.close();
        await other.close().catch(() => {});
      }
    });

    it('changes its change token (where it has one) with every write, and only then, as another handle sees it', async () => {
      const s = await factory.create();
      if (!s.changeToken) {
        await s.close();
        return;
      }
      const other = await factory.reopen(s);
      try {
        await s.createStudy({ candidates: 4 });
        const tokens = [await other.changeToken!()];
        const step = async (write: () => Promise<unknown>) => {
          await write();
          tokens.push(await other.changeToken!());
        };
        expect(await other.changeToken!()).toBe(tokens[0]);
        await step(() => s.advance({ told: 0, candidates: [contractCandidate(0, 'h0')], strategyState: {} }));
        await step(() => s.addEvaluation(contractEvaluation('h0', 0, 9.5)));
        await step(() => s.advance({ told: 1, candidates: [], strategyState: {} }));
        await step(() => s.updateStudy({ candidates: 8 }));
        await step(() => s.registerWorker(contractWorker('w1')));
        await step(() => s.createRetrain(contractPlan()));
        await step(() => s.addRetrainRun(contractRun(1, 0, 1, 10)));
        expect(new Set(tokens).size).toBe(tokens.length);
        expect(await other.changeToken!()).toBe(tokens.at(-1));
      } finally {
        await other.close();
        await s.close();
      }
    });

    it('advances atomically: a failed step leaves neither its candidates nor its snapshot, and told never goes back', async () => {
      const s = await factory.create();
      try {
        await s.createStudy({});
        await s.advance({ told: 0, candidates: [contractCandidate(0, 'h0')], strategyState: { step: 0 } });
        // candidate 0 exists: the step fails after candidate 1 went in
        await expect(s.advance({ told: 1, candidates: [contractCandidate(1, 'h1', 0), contractCandidate(0, 'again')], strategyState: { step: 1 } })).rejects.toThrow();
        expect((await s.candidates()).map((c) => c.id)).toEqual([0]);
        expect(await s.latestSnapshot()).toEqual({ told: 0, state: { step: 0 } });
        await expect(s.advance({ told: -1, candidates: [], strategyState: {} })).rejects.toThrow(/cannot go back/);
        await s.advance({ told: 1, candidates: [contractCandidate(1, 'h1', 0)], strategyState: { step: 1, big: 'x'.repeat(100_000) } });
        expect((await s.latestSnapshot())!.told).toBe(1);
      } finally {
        await s.close();
      }
    });

    it('round-trips candidates and evaluations exactly, and keeps one evaluation per program (later candidates reuse it)', async () => {
      const s = await factory.create();
      try {
        await s.createStudy({});
        const cands = [contractCandidate(0, 'h0'), contractCandidate(1, 'h1', 0), contractCandidate(2, 'h1', 0), contractCandidate(3, 'h3', 1)];
        await s.advance({ told: 0, candidates: cands, strategyState: {} });
        const e1 = await s.addEvaluation(contractEvaluation('h1', 1, 9.75));
        const e3 = await s.addEvaluation(contractEvaluation('h3', 3, null, { environment: null }));
        expect(e1).toMatchObject(contractEvaluation('h1', 1, 9.75));
        expect(typeof e1.id).toBe('number');
        expect(Number.isNaN(Date.parse(e1.finishedAt))).toBe(false);
        await expect(s.addEvaluation(contractEvaluation('h1', 2, 8))).rejects.toThrow(/already been evaluated/);
        expect(await s.evaluationOf('h1')).toEqual(e1);
        expect(await s.evaluationOf('h3')).toEqual(e3);
        expect(e3.environment).toBeNull();
        expect(e1.environment).toEqual(contractEnvironment('test-host'));
        expect(await s.evaluationOf('nope')).toBeUndefined();
        expect(await s.evaluations()).toEqual([e1, e3]);
        const views = await s.candidates();
        expect(views.map(({ told: _t, reused: _r, evaluation: _e, ...rest }) => rest)).toEqual(cands);
        expect(views.map((c) => [c.reused, c.evaluation?.id ?? null])).toEqual([
          [false, null],
          [false, e1.id],
          [true, e1.id],
          [false, e3.id],
        ]);
        await s.advance({ told: 2, candidates: [], strategyState: {} });
        expect((await s.candidates()).map((c) => c.told)).toEqual([true, true, false, false]);
        expect(await s.candidate(2)).toEqual((await s.candidates())[2]);
        expect(await s.candidate(99)).toBeUndefined();
      } finally {
        await s.close();
      }
    });

    it('concurrent writers: distinct programs are all kept, a program written twice at once is kept once', async () => {
      const a = await factory.create();
      await a.createStudy({});
      await a.advance({ told: 0, candidates: Array.from({ length: 8 }, (_, i) => contractCandidate(i, `h${i}`)), strategyState: {} });
      const b = await factory.reopen(a);
      try {
        await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? a : b).addEvaluation(contractEvaluation(`h${i}`, i, 10 + i))));
        const races = await Promise.allSettled([a.addEvaluation(contractEvaluation('dup', 0, 1)), b.addEvaluation(contractEvaluation('dup', 0, 2))]);
        expect(races.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        const all = await a.evaluations();
        expect(all.map((e) => e.hash).sort()).toEqual(['dup', 'h0', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'h7']);
        expect(await b.evaluations()).toEqual(all);
      } finally {
        await a.close();
        await b.close();
      }
    });

    it('dumps a study verbatim, and restores it into an empty store (and only there)', async () => {
      const a = await factory.create();
      const b = await factory.create();
      try {
        await a.createStudy({ strategy: 'evolution', seed: 3 });
        await a.advance({ told: 0, candidates: [contractCandidate(0, 'h0'), contractCandidate(1, 'h1', 0)], strategyState: { s: 0 } });
        await a.addEvaluation(contractEvaluation('h0', 0, 12));
        await a.addEvaluation(contractEvaluation('h1', 1, null));
        await a.registerWorker(contractWorker('w1'));
        await a.registerWorker(contractWorker('w0', { allowMixedHardware: true, environment: contractEnvironment('other', { backend: 'cpu', mixedHardware: true }) }));
        const plan = await a.createRetrain(contractPlan());
        await a.addRetrainRun(contractRun(plan.id, 1, 2, 9.5));
        await a.addRetrainRun(contractRun(plan.id, 0, 2, null));
        for (let t = 1; t <= 60; t++) await a.advance({ told: Math.min(t, 2), candidates: t === 1 ? [contractCandidate(2, 'h2', 1)] : [], strategyState: { s: t } });
        const dump = await a.dump();
        expect(dump.workers!.map((w) => w.id)).toEqual(['w1', 'w0']);
        await b.restore(dump);
        expect(await b.dump()).toEqual(dump);
        expect(await b.candidates()).toEqual(await a.candidates());
        // the next evaluation written after a restore takes the next id
        const next = await b.addEvaluation(contractEvaluation('h2', 2, 9));
        expect(next.id).toBeGreaterThan(Math.max(...dump.evaluations.map((e) => e.id)));
        expect(dump.retrains).toHaveLength(1);
        expect(dump.retrainRuns).toHaveLength(2);
        expect((await b.createRetrain(contractPlan({ top: 5 }))).id).toBe(plan.id + 1);
        await expect(b.restore(dump)).rejects.toThrow(/already holds a study/);
      } finally {
        await a.close();
        await b.close();
      }
    });

    it('keeps retrainings: plans with the next id, one run per program and seed, read by retraining', async () => {
      const s = await factory.create();
      try {
        await expect(s.createRetrain(contractPlan())).rejects.toThrow(/no study/);
        await s.createStudy({});
        expect(await s.retrains()).toEqual([]);
        expect(await s.retrainRuns()).toEqual([]);
        const p1 = await s.createRetrain(contractPlan());
        const p2 = await s.createRetrain(contractPlan({ seeds: [4], budget: '2m', settings: { ...contractPlan().settings, budget: { kind: 'seconds', seconds: 120 } } }));
        expect(p2.id).toBe(p1.id + 1);
        expect(p1).toMatchObject(contractPlan());
        expect(await s.retrains()).toEqual([p1, p2]);
        const r = await s.addRetrainRun(contractRun(p1.id, 1, 3, 9.5));
        expect(r).toMatchObject(contractRun(p1.id, 1, 3, 9.5));
        await s.addRetrainRun(contractRun(p1.id, 0, 3, null));
        await s.addRetrainRun(contractRun(p2.id, 0, 4, 11));
        await s.addRetrainRun(contractRun(p1.id, 0, 1, 10));
        await expect(s.addRetrainRun(contractRun(p1.id, 1, 3, 8))).rejects.toThrow(/already has a run of program 1 with seed 3/);
        expect((await s.retrainRuns(p1.id)).map((x) => [x.program, x.seed, x.fitness])).toEqual([[0, 1, 10], [0, 3, null], [1, 3, 9.5]]);
        expect((await s.retrainRuns(p1.id)).find((x) => x.program === 1)).toEqual(r);
        expect((await s.retrainRuns()).map((x) => x.retrain)).toEqual([p1.id, p1.id, p1.id, p2.id]);
      } finally {
        await s.close();
      }
    });

    it('keeps weights by program: put, replace, read, list, drop, and copies them with the study', async () => {
      const s = await factory.create();
      try {
        await s.createStudy({});
        expect(await s.weightsOf('h1')).toBeUndefined();
        const bytes = new Uint8Array([1, 2, 3, 250, 0, 7]);
        await s.putWeights('h1', bytes);
        await s.putWeights('h2', new Uint8Array([9]));
        await s.putWeights('h1', bytes.subarray(1)); // replaced
        expect(Array.from((await s.weightsOf('h1'))!)).toEqual([2, 3, 250, 0, 7]);
        expect(await s.weightHashes()).toEqual(['h1', 'h2']);
        await s.deleteWeights('h2');
        await s.deleteWeights('never');
        expect(await s.weightHashes()).toEqual(['h1']);
        const other = await factory.create();
        try {
          await other.restore(await s.dump());
          expect(Array.from((await other.weightsOf('h1'))!)).toEqual([2, 3, 250, 0, 7]);
        } finally {
          await other.close();
        }
      } finally {
        await s.close();
      }
    });

    it('deletes one retraining with its runs, leaving the others; refuses one it does not have', async () => {
      const s = await factory.create();
      try {
        await s.createStudy({});
        const p1 = await s.createRetrain(contractPlan());
        const p2 = await s.createRetrain(contractPlan({ top: 5 }));
        await s.addRetrainRun(contractRun(p1.id, 0, 1, 10));
        await s.addRetrainRun(contractRun(p1.id, 1, 1, 9));
        await s.addRetrainRun({ ...contractRun(p2.id, 0, 1, 10), reusedFrom: { retrain: p1.id, program: 0 } });
        // a run reused from another study's retraining that has p1's number
        const elsewhere = { retrain: p1.id, program: 1, study: 'other.sqlite' };
        await s.addRetrainRun({ ...contractRun(p2.id, 1, 1, 9), reusedFrom: elsewhere });
        expect(await s.deleteRetrain(p1.id)).toBe(2);
        expect((await s.retrains()).map((p) => p.id)).toEqual([p2.id]);
        expect((await s.retrainRuns()).map((r) => r.retrain)).toEqual([p2.id, p2.id]);
        // the copy stays, no longer naming a retraining that is gone (its id may be given again)
        expect((await s.retrainRuns(p2.id))[0]!.reusedFrom ?? null).toBeNull();
        // the other study's retraining is not this one: still named
        expect((await s.retrainRuns(p2.id))[1]!.reusedFrom).toEqual(elsewhere);
        expect((await s.retrainRuns(p2.id))[0]!.fitness).toBe(10);
        await expect(s.deleteRetrain(p1.id)).rejects.toThrow(new RegExp(`has no retraining ${p1.id}`));
        expect(await s.config()).toEqual({});
      } finally {
        await s.close();
      }
    });

    it('deletes the whole study only under the controller lock; what is left holds no study', async () => {
      const s = await factory.create();
      try {
        await s.createStudy({ a: 1 });
        await s.createRetrain(contractPlan());
        await expect(s.deleteStudy()).rejects.toThrow(/controller lock/);
        expect(await s.config()).toEqual({ a: 1 });
        await s.lockController();
        await s.deleteStudy();
        const other = await factory.reopen(s);
        try {
          expect(await other.config()).toBeUndefined();
          expect(await other.retrains()).toEqual([]);
        } finally {
          await other.close();
        }
      } finally {
        await s.close();
      }
    });

    it('keeps the behaviour of an evaluation and the program a reused result came from', async () => {
      const s = await factory.create();
      try {
        await s.createStudy({});
        await s.advance({ told: 0, candidates: [contractCandidate(0, 'h0'), contractCandidate(1, 'h1', 0)], strategyState: {} });
        const e0 = await s.addEvaluation(contractEvaluation('h0', 0, 12, { behaviour: 'b-0123' }));
        const e1 = await s.addEvaluation(contractEvaluation('h1', 1, 12, { behaviour: 'b-0123', sameAs: 'h0', trainSeconds: 0 }));
        expect(await s.evaluationOf('h0')).toEqual(e0);
        expect(await s.evaluationOf('h1')).toMatchObject({ behaviour: 'b-0123', sameAs: 'h0' });
        expect(e0.sameAs).toBeNull();
        expect((await s.evaluations()).map((e) => e.sameAs)).toEqual([null, 'h0']);
        expect(e1.id).toBeGreaterThan(e0.id);
      } finally {
        await s.close();
      }
    });

    it('records the workers that join, in order, and refuses a worker id twice', async () => {
      const s = await factory.create();
      try {
        await s.createStudy({});
        expect(await s.workers()).toEqual([]);
        const w = [contractWorker('b'), contractWorker('a', { allowMixedHardware: true }), contractWorker('c', { plugins: [] })];
        for (const x of w) await s.registerWorker(x);
        expect(await s.workers()).toEqual(w);
        await expect(s.registerWorker(contractWorker('a'))).rejects.toThrow();
        expect(await s.workers()).toHaveLength(3);
      } finally {
        await s.close();
      }
    });

    it('what was written survives a writer that never closed (a crash), seen from a new handle', async () => {
      const a = await factory.create();
      await a.createStudy({ seed: 7 });
      await a.advance({ told: 0, candidates: [contractCandidate(0, 'h0')], strategyState: { n: 1 } });
      await a.addEvaluation(contractEvaluation('h0', 0, 11));
      // a is abandoned without closing, as a killed process would leave it
      const b = await factory.reopen(a);
      try {
        expect(await b.config()).toEqual({ seed: 7 });
        expect(await b.latestSnapshot()).toEqual({ told: 0, state: { n: 1 } });
        expect((await b.evaluations()).map((e) => e.fitness)).toEqual([11]);
      } finally {
        await b.close();
        await a.close();
      }
    });
  });
}
