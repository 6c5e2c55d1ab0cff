// Studies written straight through the store (no training): small ones with every kind of
// result, and large ones for the page's speed.
import { baselineDna } from '@primer-search/baselines';
import { Rng } from '@primer-search/core';
import { dnaHash, mutateDna, type Dna } from '@primer-search/dna';
import { SqliteStudyStore } from '@primer-search/store';
import { DEFAULT_RUN_SETTINGS, type CandidateRecord, type NewEvaluation, type StudyConfig } from '@primer-search/study';

export function studyConfig(candidates: number): StudyConfig {
  return {
    format: 'primer-study',
    version: 1,
    strategy: 'evolution',
    strategyOptions: { populationSize: 8, tournamentSize: 3 },
    seedModel: 'vanilla',
    seedDna: baselineDna('vanilla', { dModel: 64 }),
    seed: 1,
    candidates,
    inFlight: 2,
    hurdles: [0.25, 0.5],
    hurdleMinSamples: 4,
    settings: { ...DEFAULT_RUN_SETTINGS, budget: { kind: 'steps', steps: 100 } } as StudyConfig['settings'],
    plugins: [],
    candidateTimeoutSeconds: 600,
  };
}

const T0 = Date.UTC(2026, 11, 1, 12, 0, 0);

/** A candidate record at `id` (created a second apart). */
export function candidate(id: number, dna: Dna, parent: number | null, hash = dnaHash(dna), mutations: unknown[] = []): CandidateRecord {
  return { id, hash, parent, mutations, dna, hurdles: [null, null], createdAt: new Date(T0 + id * 1000).toISOString() };
}

/** An evaluation of `c` with this perplexity (null: failed), finished `seconds` after the study began. */
export function evaluation(c: CandidateRecord, fitness: number | null, o: { seconds: number; status?: NewEvaluation['status']; hurdle?: number } = { seconds: 10 }): NewEvaluation & { finishedAt?: string } {
  const status = o.status ?? (fitness === null ? 'failed' : 'completed');
  return {
    hash: c.hash,
    candidate: c.id,
    status,
    fitness,
    hurdle: o.hurdle ?? null,
    reason: status === 'failed' ? 'diverged: the training loss stopped being finite at step 7' : null,
    curve: fitness === null ? [] : [0.25, 0.5, 0.75, 1].slice(0, status === 'hurdle' ? 1 : 4).map((f, k) => ({ step: 25 * (k + 1), tokens: 25_600 * (k + 1), seconds: 2 * (k + 1), perplexity: fitness * (1 + (3 - k) * 0.2) })),
    atHurdles: [fitness, null],
    steps: status === 'hurdle' ? 25 : 100,
    tokens: 102_400,
    trainSeconds: 8,
    wallSeconds: 9,
    budget: '100 steps',
    backend: 'wasm',
    machine: 'synthetic-host',
    environment: { host: 'synthetic-host', backend: 'wasm', device: 'Synthetic CPU', tfjs: '4.22.0', project: '0.1.0', node: process.version },
    parameters: 100_000 + (c.id % 17) * 5_000,
  };
}

/**
 * A study of `n` candidates: the seed and mutants of it (distinct programs, `distinct` of them
 * at most, reused in turn beyond that), with completed, hurdle, failed and reused results; the
 * last `pending` without a result. The candidates in `sameAs` get the seed's result as programs
 * computing the same function (behaviour de-duplication).
 */
export async function writeSyntheticStudy(path: string, n: number, o: { distinct?: number; pending?: number; sameAs?: number[] } = {}): Promise<SqliteStudyStore> {
  const store = SqliteStudyStore.open(path);
  await store.createStudy(studyConfig(n) as unknown as Record<string, unknown>);
  const rng = Rng.create(5);
  const seed = baselineDna('vanilla', { dModel: 64 });
  const programs: Array<{ dna: Dna; hash: string; mutations: unknown[] }> = [{ dna: seed, hash: dnaHash(seed), mutations: [] }];
  const distinct = Math.min(o.distinct ?? n, n);
  while (programs.length < distinct) {
    const m = mutateDna(programs[rng.int(0, programs.length - 1)]!.dna, rng, { requireValid: true });
    programs.push({ dna: m.child, hash: dnaHash(m.child), mutations: m.mutations });
  }
  const records: CandidateRecord[] = [];
  for (let id = 0; id < n; id++) {
    const p = programs[id % programs.length]!;
    records.push(candidate(id, p.dna, id === 0 ? null : rng.int(0, id - 1), p.hash, p.mutations));
  }
  const told = n - (o.pending ?? 0);
  await store.advance({ told, candidates: records, strategyState: { synthetic: true } });
  const seen = new Set<string>();
  for (const c of records.slice(0, told)) {
    if (seen.has(c.hash)) continue;
    seen.add(c.hash);
    const r = rng.float();
    const fitness = 9 + rng.float() * 4 - Math.min(2, c.id / 5000);
    if (o.sameAs?.includes(c.id)) {
      const original = (await store.evaluations()).find((e) => e.candidate === 0)!;
      await store.addEvaluation({ ...original, id: undefined, finishedAt: undefined, hash: c.hash, candidate: c.id, sameAs: original.hash } as never);
      continue;
    }
    const e = r < 0.08 ? evaluation(c, null, { seconds: c.id * 10 }) : r < 0.2 ? evaluation(c, fitness + 3, { seconds: c.id * 10, status: 'hurdle', hurdle: 0 }) : evaluation(c, fitness, { seconds: c.id * 10 });
    await store.addEvaluation(e);
  }
  return store;
}

/**
 * A retraining of the seed and the `top` best completed candidates over `seeds` seeds, with runs
 * recorded for the first `runs` (program, seed) pairs, seed-major: candidate k's perplexity is the
 * seed's minus k + 0.1 per seed, its curve reaching the seed's final perplexity at half the tokens.
 */
export async function writeSyntheticRetrain(store: SqliteStudyStore, o: { top: number; seeds: number[]; runs?: number }): Promise<number> {
  const candidates = await store.candidates();
  const best = candidates.filter((c) => c.id !== 0 && !c.reused && c.evaluation?.status === 'completed' && !c.evaluation.sameAs).sort((a, b) => a.evaluation!.fitness! - b.evaluation!.fitness!).slice(0, o.top);
  const seed = candidates[0]!;
  const programs = [seed, ...best].map((c) => ({ label: c.id === 0 ? 'seed (vanilla)' : `candidate ${c.id}`, hash: c.hash, candidate: c.id, searchFitness: c.evaluation?.fitness ?? null, dna: c.dna }));
  const plan = await store.createRetrain({ top: o.top, budget: '500 steps', seeds: o.seeds, references: [], settings: { ...studyConfig(1).settings, budget: { kind: 'steps', steps: 500 } }, programs });
  const pairs = o.seeds.flatMap((seed) => programs.map((_, program) => ({ program, seed })));
  for (const { program, seed: s } of pairs.slice(0, o.runs ?? pairs.length)) {
    const final = 9 - program + 0.1 * (s - o.seeds[0]!);
    const seedFinal = 9 + 0.1 * (s - o.seeds[0]!);
    const curve = [1, 2, 3, 4].map((k) => ({ step: 125 * k, tokens: 128_000 * k, seconds: 5 * k, perplexity: program === 0 ? seedFinal * (1 + (4 - k) * 0.1) : k >= 2 ? Math.min(seedFinal, final + (4 - k) * 0.01) : seedFinal * 1.2 }));
    await store.addRetrainRun({ retrain: plan.id, program, seed: s, status: 'completed', fitness: curve.at(-1)!.perplexity, reason: null, curve, steps: 500, tokens: 512_000, trainSeconds: 20, wallSeconds: 22, backend: 'wasm', machine: 'synthetic-host', environment: null, parameters: 100_000, vocabSize: 256 });
  }
  return plan.id;
}

/**
 * A fidelity measurement (primer study fidelity) of `sample` completed candidates, every other one
 * by search perplexity, over `seeds`: a program's longer-run perplexity is half its search
 * perplexity, except that the best and the second best trade places.
 */
export async function writeSyntheticFidelity(store: SqliteStudyStore, o: { sample: number; seeds: number[] }): Promise<number> {
  const completed = (await store.candidates())
    .filter((c) => !c.reused && c.evaluation?.status === 'completed' && c.evaluation.candidate === c.id && !c.evaluation.sameAs)
    .sort((a, b) => a.evaluation!.fitness! - b.evaluation!.fitness!)
    .filter((_, i) => i % 2 === 0)
    .slice(0, o.sample);
  const programs = completed.map((c) => ({ label: c.id === 0 ? 'seed (vanilla)' : `candidate ${c.id}`, hash: c.hash, candidate: c.id, searchFitness: c.evaluation!.fitness, dna: c.dna }));
  const plan = await store.createRetrain({ top: 0, sample: o.sample, budget: '500 steps', seeds: o.seeds, references: [], settings: { ...studyConfig(1).settings, budget: { kind: 'steps', steps: 500 } }, programs });
  for (const s of o.seeds) {
    for (const [program, p] of programs.entries()) {
      const swapped = program === 0 ? programs[1]! : program === 1 ? programs[0]! : p;
      const fitness = swapped.searchFitness! / 2 + 0.01 * (s - o.seeds[0]!);
      await store.addRetrainRun({ retrain: plan.id, program, seed: s, status: 'completed', fitness, reason: null, curve: [{ step: 500, tokens: 512_000, seconds: 20, perplexity: fitness }], steps: 500, tokens: 512_000, trainSeconds: 20, wallSeconds: 22, backend: 'wasm', machine: 'synthetic-host', environment: null, parameters: 100_000, vocabSize: 256 });
    }
  }
  return plan.id;
}
