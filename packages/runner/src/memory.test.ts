// A worker process trains candidate after candidate: what one leaves behind accumulates until a
// large study runs out of the wasm heap. Fifty candidates in one process must leave nothing.
import * as tf from '@tensorflow/tfjs';
import { baselines } from '@primer-search/baselines';
import { Rng } from '@primer-search/core';
import { dnaHash, mutateDna, type Dna } from '@primer-search/dna';
import { clearMaskCache } from '@primer-search/primitives';
import { DEFAULT_RUN_SETTINGS, type RunSettings } from '@primer-search/trainer-gpu';
import { describe, expect, it } from 'vitest';
import { evaluateCandidate } from './job.js';

const settings: RunSettings = { ...DEFAULT_RUN_SETTINGS, layers: 1, dModel: 16, seqLen: 16, batch: 2, evalWindows: 2, budget: { kind: 'steps', steps: 2 }, backend: 'wasm' };

describe('a worker training many candidates', () => {
  it('leaves no tensor and no byte behind after 50 candidates (mutants, behaviour hashing, hurdles)', async () => {
    const seed = baselines.get('vanilla').build({ dModel: 16, heads: 2 });
    const rng = Rng.create('memory');
    const programs: Dna[] = [seed];
    while (programs.length < 50) programs.push(mutateDna(programs[rng.int(0, programs.length - 1)]!, rng, { requireValid: true }).child);
    const memory: Array<[number, number]> = [];
    for (const [k, dna] of programs.entries()) {
      const outcome = await evaluateCandidate({
        candidate: k,
        hash: dnaHash(dna),
        dna,
        settings,
        hurdles: [{ fraction: 0.5, threshold: k % 3 === 0 ? 1 : null }],
        plugins: [],
        behaviours: [],
      });
      expect(['completed', 'hurdle', 'failed', 'equivalent']).toContain(outcome.status);
      // the causal masks cached per shape (bounded) are made when a program first needs one, which may be late
      clearMaskCache();
      memory.push([tf.memory().numTensors, tf.memory().numBytes]);
    }
    // after the first few (caches of the data and the backend, made once), flat
    expect(memory.slice(5).every(([n, b]) => n === memory[4]![0] && b === memory[4]![1]), JSON.stringify(memory)).toBe(true);
  }, 300_000);
});
