// The compiled training step (record once, replay) against the tape it replaces: bit for bit on
// every baseline and on random mutants, on both product paths; memory flat; and each way it
// falls back to the tape.
import * as tf from '@tensorflow/tfjs';
import { baselineDna, baselines } from '@primer-search/baselines';
import { compileLanguageModel } from '@primer-search/compiler';
import { Rng } from '@primer-search/core';
import type { Dna } from '@primer-search/dna';
import { describe, expect, it } from 'vitest';
import { vanillaMutants } from './__fixtures__/mutants.js';
import { loadNativeBlas, selectBackend, setNativeProducts } from './backends/index.js';
import { CompiledStep } from './compiled-step.js';
import { createOptimizer } from './optimizers.js';

await selectBackend('wasm');
const native = loadNativeBlas();
const PATHS = [{ name: 'XNNPACK products', native: false }, ...(native.ok ? [{ name: 'native products', native: true }] : [])];
if (!native.ok) console.warn(`compiled-step.test: the native product path is not tested here (${native.reason})`);

const VOCAB = 37;
const batches = (() => {
  const rng = Rng.create('compiled-step');
  return Array.from({ length: 6 }, () => ({
    x: Array.from({ length: 36 }, () => rng.int(0, VOCAB - 1)),
    y: Array.from({ length: 36 }, () => rng.int(0, VOCAB - 1)),
  }));
})();

/** Trains `dna` for a few steps with Adam, taped or compiled; the losses, final weights, and how the step ran. */
function train(dna: Dna, compiled: boolean) {
  const lm = compileLanguageModel(dna, { tf: tf as never, vocabSize: VOCAB, layers: 2, dModel: 32, seqLen: 12, seed: 3 });
  const variables = lm.variables as unknown as tf.Variable[];
  const opt = createOptimizer('adam', tf as never);
  opt.setLearningRate(0.01);
  const step = new CompiledStep(tf, (x, y) => lm.loss(x as never, y as never) as unknown as tf.Scalar, variables);
  const losses: number[] = [];
  for (const b of batches) {
    const r = tf.tidy(() => {
      const x = tf.tensor2d(b.x, [3, 12], 'int32');
      const y = tf.tensor2d(b.y, [3, 12], 'int32');
      return compiled ? step.run(x, y) : tf.variableGrads(() => lm.loss(x as never, y as never) as unknown as tf.Scalar, variables);
    });
    losses.push(r.value.dataSync()[0]!);
    opt.applyGradients(r.grads, 0.7);
    tf.dispose([r.value, ...Object.values(r.grads)]);
  }
  const weights = variables.map((v) => Array.from(v.dataSync()));
  const status = step.status;
  step.dispose();
  opt.dispose();
  lm.dispose();
  return { losses, weights, status };
}

const mutants = vanillaMutants('compiled-step-mutants', 4, 32);

for (const path of PATHS) {
  describe(`the compiled step equals the tape bit for bit, losses and weights over ${batches.length} Adam steps (${path.name})`, () => {
    for (const [name, dna] of [...baselines.names().map((n) => [n, baselineDna(n, { dModel: 32 })] as const), ...mutants]) {
      it(name, () => {
        setNativeProducts(path.native);
        try {
          const taped = train(dna, false);
          const replayed = train(dna, true);
          expect(replayed.status).toEqual({ state: 'replaying' });
          expect(replayed.losses).toEqual(taped.losses);
          expect(replayed.weights).toEqual(taped.weights);
        } finally {
          setNativeProducts(native.ok);
        }
      });
    }
  });
}

describe('the compiled step', () => {
  const model = () => compileLanguageModel(baselineDna('primer-ez', { dModel: 32 }), { tf: tf as never, vocabSize: VOCAB, layers: 1, dModel: 32, seqLen: 12, seed: 1 });
  const batch = (i: number, rows = 3) => [tf.tensor2d(batches[i]!.x.slice(0, rows * 12), [rows, 12], 'int32'), tf.tensor2d(batches[i]!.y.slice(0, rows * 12), [rows, 12], 'int32')] as const;
  const backend = () => tf.backend() as unknown as { numDataIds(): number };

  it('keeps the backend memory flat over 60 replayed steps and frees what it kept on dispose', () => {
    const lm = model();
    const variables = lm.variables as unknown as tf.Variable[];
    const opt = createOptimizer('adam', tf as never);
    const before = backend().numDataIds();
    const engineBefore = tf.memory() as tf.MemoryInfo & { numDataBuffers: number };
    const step = new CompiledStep(tf, (x, y) => lm.loss(x as never, y as never) as unknown as tf.Scalar, variables);
    const counts: number[] = [];
    for (let i = 0; i < 60; i++) {
      const r = tf.tidy(() => step.run(...batch(i % batches.length)));
      opt.applyGradients(r.grads);
      tf.dispose([r.value, ...Object.values(r.grads)]);
      counts.push(backend().numDataIds());
    }
    expect(step.status.state).toBe('replaying');
    // the optimizer's moments appear on the first step; from the third (replaying) nothing grows
    expect(new Set(counts.slice(3)).size).toBe(1);
    step.dispose();
    opt.dispose();
    const afterOptimizer = backend().numDataIds();
    expect(afterOptimizer).toBe(before);
    // the engine's books too: its tensors and data buffers are back where they were
    const engineAfter = tf.memory() as tf.MemoryInfo & { numDataBuffers: number };
    expect([engineAfter.numTensors, engineAfter.numDataBuffers]).toEqual([engineBefore.numTensors, engineBefore.numDataBuffers]);
    lm.dispose();
  });

  it('runs the tape for a call whose inputs differ in shape from the recorded ones, and replays again after', () => {
    const lm = model();
    const variables = lm.variables as unknown as tf.Variable[];
    const step = new CompiledStep(tf, (x, y) => lm.loss(x as never, y as never) as unknown as tf.Scalar, variables);
    const loss = (r: { value: tf.Scalar; grads: tf.NamedTensorMap }) => {
      const v = r.value.dataSync()[0]!;
      tf.dispose([r.value, ...Object.values(r.grads)]);
      return v;
    };
    tf.tidy(() => loss(step.run(...batch(0))));
    tf.tidy(() => loss(step.run(...batch(1))));
    expect(step.status.state).toBe('replaying');
    const taped = tf.tidy(() => loss(tf.variableGrads(() => lm.loss(...(batch(2, 2) as unknown as [never, never])) as unknown as tf.Scalar, variables)));
    expect(tf.tidy(() => loss(step.run(...batch(2, 2))))).toBe(taped);
    expect(tf.tidy(() => loss(step.run(...batch(3))))).toBe(tf.tidy(() => loss(tf.variableGrads(() => lm.loss(...(batch(3) as unknown as [never, never])) as unknown as tf.Scalar, variables))));
    expect(step.status.state).toBe('replaying');
    step.dispose();
    lm.dispose();
  });

  it('falls back to the tape for a step that runs a kernel drawing random numbers, naming it', () => {
    expect(tf.getKernel('Multinomial', 'wasm')).toBeDefined();
    const w = tf.variable(tf.ones([4]), true, 'compiled-step-multinomial');
    const step = new CompiledStep(tf, (x) => tf.sum(tf.mul(tf.mul(w, x), tf.cast(tf.multinomial(tf.zeros([4, 3]) as tf.Tensor2D, 1).reshape([4]), 'float32'))) as tf.Scalar, [w]);
    const x = tf.ones([4]);
    const r = step.run(x);
    tf.dispose([r.value, ...Object.values(r.grads)]);
    expect(step.status).toEqual({ state: 'tape', reason: expect.stringMatching(/Multinomial, whose result is not a function of its inputs/) });
    step.dispose();
    tf.dispose([x, w]);
  });

  it('falls back to the tape for random numbers drawn in JavaScript (tf.randomUniform): the replay would repeat them', () => {
    const w = tf.variable(tf.ones([4]), true, 'compiled-step-random');
    const step = new CompiledStep(tf, (x) => tf.sum(tf.mul(tf.mul(w, x), tf.randomUniform([4]))) as tf.Scalar, [w]);
    const x = tf.ones([4]);
    for (let i = 0; i < 3; i++) {
      const r = step.run(x);
      tf.dispose([r.value, ...Object.values(r.grads)]);
    }
    expect(step.status).toEqual({ state: 'tape', reason: expect.stringMatching(/differs from the taped one/) });
    step.dispose();
    tf.dispose([x, w]);
  });

  it('falls back to the tape when the replay would differ from the tape (a value read from JavaScript each step)', () => {
    const w = tf.variable(tf.ones([3]), true, 'compiled-step-js-constant');
    let k = 1;
    // a constant made outside any kernel whose value changes from step to step: the recording cannot know
    const step = new CompiledStep(tf, (x) => tf.sum(tf.mul(tf.mul(w, x), tf.scalar(k++))) as tf.Scalar, [w]);
    const x = tf.ones([3]);
    const values: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = step.run(x);
      values.push(r.value.dataSync()[0]!);
      tf.dispose([r.value, ...Object.values(r.grads)]);
    }
    expect(values).toEqual([3, 6, 9, 12]);
    expect(step.status).toEqual({ state: 'tape', reason: expect.stringMatching(/differs from the taped one \(the loss/) });
    step.dispose();
    tf.dispose([x, w]);
  });

  it('keeps nothing from a recording whose step throws, and records again on the next call', () => {
    const w = tf.variable(tf.ones([3]), true, 'compiled-step-throws');
    let fail = true;
    const step = new CompiledStep(tf, (x) => {
      // the scalar feeds Neg, whose gradient saves nothing: only the recording would keep it
      const y = tf.add(tf.mul(w, x), tf.neg(tf.scalar(2)));
      if (fail) throw new Error('the model failed');
      return tf.sum(y) as tf.Scalar;
    }, [w]);
    const x = tf.ones([3]);
    const ids = () => (tf.backend() as unknown as { numDataIds(): number }).numDataIds();
    // tfjs's tape itself leaves the buffers it saved for the backward pass when the forward throws: the recording adds nothing to that
    let before = ids();
    expect(() => tf.tidy(() => tf.variableGrads(() => step['loss'](x), [w]))).toThrow('the model failed');
    const tapeLeaves = ids() - before;
    before = ids();
    expect(() => tf.tidy(() => step.run(x))).toThrow('the model failed');
    expect(ids() - before).toBe(tapeLeaves);
    fail = false;
    for (let i = 0; i < 3; i++) {
      const r = step.run(x);
      expect(r.value.dataSync()[0]).toBe(-3);
      expect(Array.from(r.grads[w.name]!.dataSync())).toEqual([1, 1, 1]);
      tf.dispose([r.value, ...Object.values(r.grads)]);
    }
    expect(step.status.state).toBe('replaying');
    step.dispose();
    tf.dispose([x, w]);
  });

  it('records the same tensor given twice as one input, and runs the tape when later inputs are distinct', () => {
    const w = tf.variable(tf.tensor1d([1, 2, 3]), true, 'compiled-step-aliases');
    const step = new CompiledStep(tf, (x, y) => tf.sum(tf.mul(tf.mul(w, x), tf.square(y))) as tf.Scalar, [w]);
    const value = (x: tf.Tensor, y: tf.Tensor) => {
      const r = step.run(x, y);
      const v = r.value.dataSync()[0]!;
      tf.dispose([r.value, ...Object.values(r.grads)]);
      return v;
    };
    const a = tf.tensor1d([1, 1, 1]);
    const b = tf.tensor1d([2, 2, 2]);
    value(a, a);
    value(a, a);
    expect(step.status.state).toBe('replaying');
    // w * a * b^2 = (1 + 2 + 3) * 4: read from b, not from the recorded alias of a
    expect(value(a, b)).toBe(24);
    expect(value(b, b)).toBe(48);
    step.dispose();
    tf.dispose([a, b, w]);
  });

  it('falls back to the tape, with the reason, when a replay throws', () => {
    const w = tf.variable(tf.ones([3]), true, 'compiled-step-replay-throws');
    const step = new CompiledStep(tf, (x) => tf.sum(tf.exp(tf.mul(w, x))) as tf.Scalar, [w]);
    const x = tf.ones([3]);
    const run = () => {
      const r = step.run(x);
      const v = r.value.dataSync()[0]!;
      tf.dispose([r.value, ...Object.values(r.grads)]);
      return v;
    };
    run();
    run();
    expect(step.status.state).toBe('replaying');
    // the recorded kernel function fails from now on (the registry is untouched, so no re-registration is seen)
    const ids = (tf.backend() as unknown as { numDataIds(): number }).numDataIds();
    const program = (step as unknown as { program: { constants: unknown[]; ops: Array<{ name: string; kernel: tf.KernelFunc }> } }).program;
    const kept = program.constants.length;
    program.ops.find((o) => o.name === 'Exp')!.kernel = () => {
      throw new Error('out of memory');
    };
    expect(run()).toBeCloseTo(3 * Math.E, 4);
    expect(step.status).toEqual({ state: 'tape', reason: 'the replay failed: out of memory' });
    // what the replay had made is freed, and the recording's constants with it
    expect((tf.backend() as unknown as { numDataIds(): number }).numDataIds()).toBe(ids - kept);
    step.dispose();
    tf.dispose([x, w]);
  });

  it('stays on the tape with PRIMER_COMPILED_STEP=off, saying so', () => {
    const w = tf.variable(tf.ones([2]), true, 'compiled-step-off');
    process.env.PRIMER_COMPILED_STEP = 'off';
    let step: CompiledStep;
    try {
      step = new CompiledStep(tf, (x) => tf.sum(tf.mul(w, x)) as tf.Scalar, [w]);
    } finally {
      delete process.env.PRIMER_COMPILED_STEP;
    }
    const x = tf.ones([2]);
    for (let i = 0; i < 3; i++) {
      const r = step.run(x);
      expect(r.value.dataSync()[0]).toBe(2);
      tf.dispose([r.value, ...Object.values(r.grads)]);
    }
    expect(step.status).toEqual({ state: 'tape', reason: 'turned off (PRIMER_COMPILED_STEP=off)' });
    tf.dispose([x, w]);
  });

  it('stays on the tape on a backend other than wasm, saying so', async () => {
    const w = tf.variable(tf.ones([2]), true, 'compiled-step-backend');
    const step = new CompiledStep({ ...tf, getBackend: () => 'tensorflow' } as typeof tf, (x) => tf.sum(tf.mul(w, x)) as tf.Scalar, [w]);
    expect(step.status).toEqual({ state: 'tape', reason: 'steps are replayed on wasm only, not on tensorflow' });
    const x = tf.ones([2]);
    const r = step.run(x);
    expect(r.value.dataSync()[0]).toBe(2);
    tf.dispose([r.value, ...Object.values(r.grads), x, w]);
  });

  it('replays a kernel whose optional inputs were not given (a fused product without bias)', () => {
    const w = tf.variable(tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]), true, 'compiled-step-absent');
    const step = new CompiledStep(tf, (x) => tf.sum(tf.square(tf.fused.matMul({ a: x as tf.Tensor2D, b: w }))) as tf.Scalar, [w]);
    const x = tf.tensor2d([1, -1, 0.5, 2], [2, 2]);
    const runs = Array.from({ length: 3 }, () => {
      const r = step.run(x);
      const out = [r.value.dataSync()[0]!, ...Array.from(r.grads[w.name]!.dataSync())];
      tf.dispose([r.value, ...Object.values(r.grads)]);
      return out;
    });
    expect(step.status.state).toBe('replaying');
    expect(runs[2]).toEqual(runs[0]);
    step.dispose();
    tf.dispose([x, w]);
  });

  it('stays on the tape on the cpu backend (some of its kernels return engine tensors), with the same results', async () => {
    await tf.setBackend('cpu');
    try {
      const taped = train(mutants[0]![1], false);
      const compiled = train(mutants[0]![1], true);
      expect(compiled.status).toEqual({ state: 'tape', reason: 'steps are replayed on wasm only, not on cpu' });
      expect(compiled.losses).toEqual(taped.losses);
      expect(compiled.weights).toEqual(taped.weights);
    } finally {
      await tf.setBackend('wasm');
    }
  });

  it('falls back to the tape, saying so, when the backend changes after recording', async () => {
    const w = tf.variable(tf.ones([3]), true, 'compiled-step-backend-change');
    const step = new CompiledStep(tf, (x) => tf.sum(tf.square(tf.mul(w, x))) as tf.Scalar, [w]);
    const x = tf.tensor1d([1, 2, 3]);
    const run = (input: tf.Tensor) => {
      const r = step.run(input);
      const g = Array.from(r.grads[w.name]!.dataSync());
      tf.dispose([r.value, ...Object.values(r.grads)]);
      return g;
    };
    run(x);
    run(x);
    expect(step.status.state).toBe('replaying');
    await tf.setBackend('cpu');
    try {
      const xc = tf.tensor1d([1, 2, 3]);
      expect(run(xc)).toEqual([2, 8, 18]);
      expect(step.status).toEqual({ state: 'tape', reason: 'the backend changed from wasm to cpu after the step was recorded' });
      xc.dispose();
    } finally {
      await tf.setBackend('wasm');
    }
    step.dispose();
    tf.dispose([x, w]);
  });

  it('falls back to the tape when a kernel it recorded is registered anew', () => {
    const w = tf.variable(tf.ones([3]), true, 'compiled-step-reregistered');
    const step = new CompiledStep(tf, (x) => tf.sum(tf.square(tf.mul(w, x))) as tf.Scalar, [w]);
    const x = tf.tensor1d([1, 2, 3]);
    const run = () => {
      const r = step.run(x);
      const g = Array.from(r.grads[w.name]!.dataSync());
      tf.dispose([r.value, ...Object.values(r.grads)]);
      return g;
    };
    run();
    run();
    expect(step.status.state).toBe('replaying');
    const square = tf.getKernel('Square', 'wasm')!;
    tf.unregisterKernel('Square', 'wasm');
    tf.registerKernel({ ...square });
    try {
      expect(run()).toEqual([2, 8, 18]);
      expect(step.status).toEqual({ state: 'tape', reason: expect.stringMatching(/Square was registered anew/) });
    } finally {
      tf.unregisterKernel('Square', 'wasm');
      tf.registerKernel(square);
    }
    step.dispose();
    tf.dispose([x, w]);
  });
});
