// The training-memory estimate is what refuses a program before it takes the process down: it
// must be an upper bound of what a training step really holds. Measured here with tf.profile's
// peak on the backend programs train on (wasm), for programs built to be hard on it.
import * as tf from '@tensorflow/tfjs';
import { baselineDna } from '@primer-search/baselines';
import { compileLanguageModel } from '@primer-search/compiler';
import { Rng, isPrimerError } from '@primer-search/core';
import { mutateDna, type Dna } from '@primer-search/dna';
import { definePrimitive, primitives } from '@primer-search/primitives';
import { DEFAULT_RUN_SETTINGS } from '@primer-search/study';
import { describe, expect, it } from 'vitest';
import { fanOut, ins, opChain, program, wideProjections } from '../../dna/src/__fixtures__/large-programs.js';
import { selectBackend } from './backends/index.js';
import { runExperiment } from './experiment.js';

await selectBackend('wasm');

/** main calls a subprogram `branching` times; each projects to 64u and multiplies the projection by itself three ways. */
const products = (branching: number) =>
  program(
    [
      { instructions: [ins('CALL', { target: 1, branching }), ins('CONV_1X1', { input1: 1 })] },
      {
        instructions: [
          ins('CONV_1X1', { input1: 0, dimSize: 1 }),
          ins('T_MAT_MUL', { input1: 2, input2: 2 }),
          ins('T_MAT_MUL', { input1: 2, input2: 2 }),
          ins('T_MAT_MUL', { input1: 2, input2: 2 }),
          ins('ADD', { input1: 3, input2: 4 }),
          ins('ADD', { input1: 6, input2: 5 }),
          ins('MAT_MUL', { input1: 7, input2: 2 }),
        ],
      },
    ],
    [8, 64],
  );

describe('the training-memory estimate', () => {
  it('is at least the peak a training step holds, for programs built to strain it and for mutants', async () => {
    const rng = Rng.create('memory-estimate');
    const mutants = Array.from({ length: 6 }, (_, k) => {
      let dna = baselineDna(k % 2 ? 'primer' : 'vanilla', { dModel: 32 }) as Dna;
      for (let m = 0; m < 4; m++) dna = mutateDna(dna, rng, { requireValid: true }).child;
      return [`mutant ${k}`, dna] as const;
    });
    const cases: Array<readonly [string, unknown]> = [
      ['vanilla', baselineDna('vanilla', { dModel: 32 })],
      ['primer', baselineDna('primer', { dModel: 32 })],
      ['three products, branching 16', products(16)],
      ['three products, branching 2', products(2)],
      ['a call fan-out', fanOut(2, 4)],
      ['a long chain', opChain(200)],
      ['wide projections', wideProjections()],
      ...mutants,
    ];
    const ratios: string[] = [];
    for (const [name, dna] of cases) {
      for (const [batch, seqLen] of [[2, 32], [4, 64]] as const) {
        const model = compileLanguageModel(dna, { tf: tf as never, vocabSize: 256, layers: 2, dModel: 32, seqLen, seed: 1, batch });
        const x = tf.zeros([batch, seqLen], 'int32');
        const profile = await tf.profile(() => {
          const { value, grads } = tf.variableGrads(() => model.loss(x as never, x as never) as unknown as tf.Scalar);
          tf.dispose([value, ...Object.values(grads)]);
        });
        const estimate = model.estimate.trainingBytes!;
        ratios.push(`${name} b${batch} s${seqLen}: ${(profile.peakBytes / estimate).toFixed(2)}`);
        expect(profile.peakBytes, `${name} (batch ${batch}, seq ${seqLen}): peak ${profile.peakBytes} bytes, estimate ${estimate}`).toBeLessThanOrEqual(estimate);
        x.dispose();
        model.dispose();
      }
    }
    console.log(`peak / estimate: ${ratios.join('; ')}`);
  }, 300_000);

  it('running out of memory while training is the program\'s failure, said in one line, not a crash', async () => {
    if (!primitives.has('TEST_WASM_OOM')) {
      primitives.register(
        'TEST_WASM_OOM',
        definePrimitive({
          name: 'TEST_WASM_OOM',
          doc: 'throws what an overrun WebAssembly heap throws (a test fixture)',
          category: 'unary',
          arity: 1,
          sequenceMixing: 'none',
          outputWidth: ([w]) => ({ width: w! }),
          flops: () => 0,
          apply: () => {
            throw new (globalThis as unknown as { WebAssembly: { RuntimeError: new (m: string) => Error } }).WebAssembly.RuntimeError('memory access out of bounds');
          },
          code: ({ input1 }) => input1,
        }),
      );
    }
    const dna = program([{ instructions: [ins('TEST_WASM_OOM')] }]);
    const settings = { ...DEFAULT_RUN_SETTINGS, layers: 1, dModel: 16, seqLen: 8, batch: 2, evalWindows: 2, budget: { kind: 'steps' as const, steps: 2 }, backend: 'wasm' as const };
    const e = await runExperiment(dna, settings).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(isPrimerError(e)).toBe(true);
    expect((e as { code: string }).code).toBe('OUT_OF_MEMORY');
    expect((e as Error).message).toBe('out of memory: training this program needs more memory than the backend has (memory access out of bounds)');
  });
});
