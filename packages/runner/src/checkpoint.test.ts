// A retraining's run keeps a training checkpoint in the folder its job names: a job that finds one
// of the same run continues from it, with the numbers of a run never stopped; anything else there
// (damaged, another program's) is trained over from the start.
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { baselines } from '@primer-search/baselines';
import { dnaHash } from '@primer-search/dna';
import type { EvaluationJob } from '@primer-search/study';
import { DEFAULT_RUN_SETTINGS, readCheckpoint, runExperiment, type RunSettings } from '@primer-search/trainer-gpu';
import { describe, expect, it } from 'vitest';
import { evaluateCandidate } from './job.js';
import { isInterruption, LocalWorkerPool } from './pool.js';
import { retrainCheckpointPath } from './retrain.js';

const settings: RunSettings = { ...DEFAULT_RUN_SETTINGS, layers: 1, dModel: 16, seqLen: 16, batch: 2, evalWindows: 2, budget: { kind: 'steps', steps: 20 }, backend: 'wasm', seed: 3 };
const vanilla = baselines.get('vanilla').build({ dModel: 16, heads: 2 });
// the settings a job trains with (its evaluation points as the job's)
const withEvaluations: RunSettings = { ...settings, train: { ...settings.train, checkpoints: [0.25, 0.5, 0.75] } };
const job = (checkpoint?: string): EvaluationJob => ({
  candidate: 1,
  hash: dnaHash(vanilla),
  dna: vanilla,
  settings,
  hurdles: [],
  checkpoints: [0.25, 0.5, 0.75],
  plugins: [],
  ...(checkpoint ? { checkpoint: { path: checkpoint, everySeconds: 0 } } : {}),
});
const numbers = (o: Awaited<ReturnType<typeof evaluateCandidate>>) => {
  if (o.status !== 'completed') throw new Error(`not completed: ${JSON.stringify(o)}`);
  return { fitness: o.fitness, steps: o.steps, curve: o.curve.map((c) => [c.step, c.perplexity]) };
};

describe("a retraining run's checkpoint", () => {
  it('continues a stopped run with the numbers of one never stopped; a damaged or foreign checkpoint is trained over', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'primer-job-ckpt-'));
    const straight = numbers(await evaluateCandidate(job()));
    expect(straight.steps).toBe(20);

    // the same run stopped at step 7, its checkpoint left behind
    const path = join(dir, 'run');
    const stop = new AbortController();
    const part = await runExperiment(vanilla, withEvaluations, { checkpoint: { path, everySeconds: 0 }, signal: stop.signal, onProgress: (e) => e.step === 7 && stop.abort() });
    expect([part.result.status, part.result.steps, readCheckpoint(path).step]).toEqual(['stopped', 7, 7]);
    const steps: number[] = [];
    const resumed = await evaluateCandidate(job(path), (p) => steps.push(p.step));
    expect(numbers(resumed)).toEqual(straight);
    expect(resumed).toMatchObject({ resumedAt: 7 });
    // from step 8 on: steps 1-7 were not trained again
    expect(Math.min(...steps)).toBe(8);
    // the job leaves its finished checkpoint (the controller removes it once the run is recorded)
    expect(readCheckpoint(path).step).toBe(20);

    // damaged: trained from the start, and written over
    const damaged = join(dir, 'damaged');
    mkdirSync(damaged);
    writeFileSync(join(damaged, 'checkpoint.json'), '{ not json');
    const fresh: number[] = [];
    const over = await evaluateCandidate(job(damaged), (p) => fresh.push(p.step));
    expect(numbers(over)).toEqual(straight);
    expect(Math.min(...fresh)).toBe(1);
    expect(over).not.toHaveProperty('resumedAt');
    expect(readCheckpoint(damaged).step).toBe(20);

    // another program's (Primer-EZ's weights): not this run's, so trained from the start
    const foreign = join(dir, 'foreign');
    const ez = baselines.get('primer-ez').build({ dModel: 16, heads: 2 });
    const stopEz = new AbortController();
    // (the same settings, evaluation points included: only the program differs)
    await runExperiment(ez, withEvaluations, { checkpoint: { path: foreign, everySeconds: 0 }, signal: stopEz.signal, onProgress: (e) => e.step === 5 && stopEz.abort() });
    expect(readCheckpoint(foreign).step).toBe(5);
    const notEz = await evaluateCandidate(job(foreign));
    expect(numbers(notEz)).toEqual(straight);
    expect(notEz).not.toHaveProperty('resumedAt');
    expect(readCheckpoint(foreign).step).toBe(20);

    // this run under another budget (30 steps, stopped at 25): not this run, though all else is the same
    const longer = join(dir, 'longer');
    const stopLonger = new AbortController();
    await runExperiment(vanilla, { ...withEvaluations, budget: { kind: 'steps', steps: 30 } }, { checkpoint: { path: longer, everySeconds: 0 }, signal: stopLonger.signal, onProgress: (e) => e.step === 25 && stopLonger.abort() });
    expect(readCheckpoint(longer).step).toBe(25);
    const notLonger = await evaluateCandidate(job(longer));
    expect(numbers(notLonger)).toEqual(straight);
    expect(notLonger).not.toHaveProperty('resumedAt');

    // a search's candidate (hurdles) keeps no checkpoint
    const hurdled = join(dir, 'hurdled');
    await evaluateCandidate({ ...job(hurdled), hurdles: [{ fraction: 0.5, threshold: null }] });
    expect(existsSync(hurdled)).toBe(false);
  }, 120_000);

  it("names a run's folder from the study's record only when that record is integers and a hexadecimal hash", () => {
    expect(retrainCheckpointPath('/s.sqlite.checkpoints', 2, 3, 4, 'a'.repeat(64))).toBe(`/s.sqlite.checkpoints/retrain-2-program-3-seed-4-${'a'.repeat(12)}`);
    for (const [plan, program, seed, hash] of [
      [1, 0, 1, '/../../../..'],
      [1, 0, '1/../../../x', 'abcdefabcdef'],
      [1, -1, 1, 'abcdefabcdef'],
      [1.5, 0, 1, 'abcdefabcdef'],
      ['1', 0, 1, 'abcdefabcdef'],
      [1, 0, 1, 'abcdef'],
      [1, 0, 1, undefined],
    ] as const) {
      expect(retrainCheckpointPath('/s.sqlite.checkpoints', plan, program, seed, hash)).toBeUndefined();
    }
  });
});

describe('a worker process stopped by SIGTERM', () => {
  it('saves the run\'s checkpoint where it stopped (not only its last periodic one) and ends as stopped, recording nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'primer-worker-ckpt-'));
    const path = join(dir, 'run');
    const pool = new LocalWorkerPool(1);
    // a long run, whose periodic checkpoint would come only after an hour of training
    const long: EvaluationJob = { ...job(), settings: { ...settings, budget: { kind: 'steps', steps: 1_000_000 } }, checkpoint: { path, everySeconds: 3600 } };
    let step = 0;
    const reached = new Promise<void>((resolve) => {
      void pool
        .run(long, { timeoutSeconds: 600, onProgress: (p) => ((step = p.step), p.step >= 5 && resolve()) })
        .then((outcome) => (result = outcome));
    });
    let result: Awaited<ReturnType<typeof pool.run>> | undefined;
    await reached;
    await pool.close(); // SIGTERM to the worker
    for (let i = 0; i < 100 && result === undefined; i++) await new Promise((r) => setTimeout(r, 50));
    expect(result && isInterruption(result), JSON.stringify(result)).toBe(true);
    const saved = readCheckpoint(path);
    expect(saved.step).toBeGreaterThanOrEqual(Math.min(step, 5));
    expect(saved.step).toBeLessThan(1_000_000);
  }, 120_000);
});
