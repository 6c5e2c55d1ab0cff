// A retraining's run keeps a training checkpoint in the folder its job names: a job that finds one
// of the same run continues from it, with the numbers of a run never stopped; anything else there
// (damaged, another program's) is trained over from the start.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { baselines } from '@primer-search/baselines';
import { dnaHash } from '@primer-search/dna';
import type { EvaluationJob } from '@primer-search/study';
import { DEFAULT_RUN_SETTINGS, readCheckpoint, runExperiment, type RunSettings } from '@primer-search/trainer-gpu';
import { describe, expect, it } from 'vitest';
import { evaluateCandidate } from './job.js';

const settings: RunSettings = { ...DEFAULT_RUN_SETTINGS, layers: 1, dModel: 16, seqLen: 16, batch: 2, evalWindows: 2, budget: { kind: 'steps', steps: 20 }, backend: 'wasm', seed: 3 };
const vanilla = baselines.get('vanilla').build({ dModel: 16, heads: 2 });
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
    const part = await runExperiment(vanilla, { ...settings, train: { ...settings.train, checkpoints: [0.25, 0.5, 0.75] } }, { checkpoint: { path, everySeconds: 0 }, signal: stop.signal, onProgress: (e) => e.step === 7 && stop.abort() });
    expect([part.result.status, part.result.steps, readCheckpoint(path).step]).toEqual(['stopped', 7, 7]);
    const steps: number[] = [];
    const resumed = await evaluateCandidate(job(path), (p) => steps.push(p.step));
    expect(numbers(resumed)).toEqual(straight);
    // from step 8 on: steps 1-7 were not trained again
    expect(Math.min(...steps)).toBe(8);
    // the job leaves its finished checkpoint (the controller removes it once the run is recorded)
    expect(readCheckpoint(path).step).toBe(20);

    // damaged: trained from the start, and written over
    const damaged = join(dir, 'damaged');
    mkdirSync(damaged);
    writeFileSync(join(damaged, 'checkpoint.json'), '{ not json');
    const fresh: number[] = [];
    expect(numbers(await evaluateCandidate(job(damaged), (p) => fresh.push(p.step)))).toEqual(straight);
    expect(Math.min(...fresh)).toBe(1);
    expect(readCheckpoint(damaged).step).toBe(20);

    // another program's (Primer-EZ's weights): not this run's, so trained from the start
    const foreign = join(dir, 'foreign');
    const ez = baselines.get('primer-ez').build({ dModel: 16, heads: 2 });
    const stopEz = new AbortController();
    await runExperiment(ez, settings, { checkpoint: { path: foreign, everySeconds: 0 }, signal: stopEz.signal, onProgress: (e) => e.step === 5 && stopEz.abort() });
    expect(readCheckpoint(foreign).step).toBe(5);
    expect(numbers(await evaluateCandidate(job(foreign)))).toEqual(straight);
    expect(readCheckpoint(foreign).step).toBe(20);
  }, 120_000);
});
