import { baselineDna } from '@primer-search/baselines';
import { describe, expect, it, vi } from 'vitest';
import { DataParallel } from './data-parallel.js';
import { DEFAULT_RUN_SETTINGS, runExperiment, type RunSettings } from './experiment.js';

const settings = (dataParallel: number, batch = 6): RunSettings => ({
  ...DEFAULT_RUN_SETTINGS,
  layers: 1,
  dModel: 32,
  seqLen: 16,
  batch,
  evalWindows: 4,
  budget: { kind: 'steps', steps: 4 },
  backend: 'wasm',
  dataParallel,
  train: { checkpoints: [0.5] },
});

describe('data-parallel training', () => {
  it('follows the same loss curve as one thread, the batch split between threads', async () => {
    const dna = baselineDna('primer-ez', { dModel: 32 });
    const start = vi.spyOn(DataParallel, 'start');
    const one = await runExperiment(dna, settings(1));
    const two = await runExperiment(dna, settings(2));
    // 7 rows split 4 + 3: the combination is weighted by rows
    const oddOne = await runExperiment(dna, settings(1, 7));
    const oddTwo = await runExperiment(dna, settings(2, 7));
    // the two-thread runs did start a replica
    expect(start.mock.calls.map((c) => c[1])).toEqual([2, 2]);
    for (const [a, b] of [
      [one, two],
      [oddOne, oddTwo],
    ] as const) {
      expect(b.result.steps).toBe(a.result.steps);
      b.result.curve.forEach((p, i) => expect(p.loss).toBeCloseTo(a.result.curve[i]!.loss, 4));
      b.result.evaluations.forEach((e, i) => expect(e.loss).toBeCloseTo(a.result.evaluations[i]!.loss, 4));
    }
  });
});
