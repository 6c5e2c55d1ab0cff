import { fileURLToPath, pathToFileURL } from 'node:url';
import { baselineDna } from '@primer-search/baselines';
import type { Dna } from '@primer-search/dna';
import { describe, expect, it, vi } from 'vitest';
import { DataParallel } from './data-parallel.js';
import { DEFAULT_RUN_SETTINGS, type RunSettings } from '@primer-search/study';
import { runExperiment } from './experiment.js';

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

describe('data-parallel replicas', () => {
  const plugin = pathToFileURL(fileURLToPath(new URL('./__fixtures__/replica-plugin.ts', import.meta.url))).href;
  /** primer-ez with one plugin op inserted after the block input. */
  const withOp = (op: string) => {
    const dna = baselineDna('primer-ez', { dModel: 32 }) as Dna;
    const main = dna.subprograms[0]!;
    main.instructions.unshift({ op, input1: 0, input2: 0, constant: 0, dimSize: 0, target: 0, branching: 1 });
    for (const ins of main.instructions.slice(1)) {
      if (ins.input1 >= 1) ins.input1++;
      if (ins.input2 >= 1) ins.input2++;
    }
    main.instructions[1]!.input1 = 1;
    return dna;
  };

  it('load the plugins the DNA needs, and train it like one thread does', async () => {
    await import(plugin);
    const dna = withOp('TEST_PLUGIN_SQUARE');
    const one = await runExperiment(dna, settings(1), { plugins: [plugin] });
    const two = await runExperiment(dna, settings(2), { plugins: [plugin] });
    two.result.curve.forEach((p, i) => expect(p.loss).toBeCloseTo(one.result.curve[i]!.loss, 4));
  });

  it('train a model with a variable that has no gradient (left as it is) like one thread, its weights laid out by name', async () => {
    await import(plugin);
    const dna = withOp('TEST_UNUSED_PARAM');
    const one = await runExperiment(dna, settings(1), { plugins: [plugin] });
    const two = await runExperiment(dna, settings(2), { plugins: [plugin] });
    expect(two.result.status).toBe('completed');
    two.result.curve.forEach((p, i) => expect(p.loss).toBeCloseTo(one.result.curve[i]!.loss, 4));
  });

  it('a replica that dies mid-step fails the run at once, not after the 600 s step deadline', async () => {
    await import(plugin);
    const t0 = performance.now();
    let firstStep = 0;
    await expect(
      runExperiment(withOp('TEST_REPLICA_EXIT'), settings(2), { plugins: [plugin], onProgress: () => (firstStep ||= performance.now()) }),
    ).rejects.toThrow(/a data-parallel replica exited \(code 3\) during a step/);
    // it died in its first step: no step finished, and the error came as fast as the thread ended
    expect(firstStep).toBe(0);
    expect(performance.now() - t0).toBeLessThan(20_000);
  });
});
