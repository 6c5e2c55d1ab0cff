// One training step of the reference configuration (2 layers, dModel 128, seq 64, batch 16,
// vocabulary 1024) on random tokens, with the trainer's own Adam: what `npm run profile` and
// `npm run bench:ab` time.
import * as tf from '@tensorflow/tfjs';
import { baselineDna } from '@primer-search/baselines';
import { compileLanguageModel, type RunOptions } from '@primer-search/compiler';
import { Rng } from '@primer-search/core';
import { CompiledStep, createOptimizer } from '@primer-search/trainer-gpu';

/** The same random batch for every model, made on first use (on the backend selected by then). */
let tokens: tf.Tensor2D | undefined;
const batch = () => {
  const rng = Rng.create(1);
  return (tokens ??= tf.keep(tf.tensor2d(Array.from({ length: 1024 }, () => rng.int(0, 1023)), [16, 64], 'int32')));
};

/** The model compiled with `options`, a function running one step (returns the loss), and its disposal. */
export function referenceStep(model: string, options: RunOptions & { compiled?: boolean } = {}): { step: () => number; dispose: () => void } {
  const lm = compileLanguageModel(baselineDna(model, { dModel: 128 }), { tf: tf as never, vocabSize: 1024, layers: 2, dModel: 128, seqLen: 64, seed: 1, ...options });
  // one fused kernel per variable on wasm
  const opt = createOptimizer('adam');
  opt.setLearningRate(1e-3);
  const x = batch();
  // the trainer's compiled step (record, check, replay) when asked; the tape otherwise
  const compiled = options.compiled ? new CompiledStep(tf, (a, b) => lm.loss(a as never, b as never) as never, lm.variables as never) : undefined;
  const step = () =>
    tf.tidy(() => {
      const { value, grads } = compiled ? compiled.run(x, x) : tf.variableGrads(() => lm.loss(x as never, x as never) as never, lm.variables as never);
      opt.applyGradients(grads as never);
      return value.dataSync()[0]!;
    });
  return {
    step,
    dispose: () => {
      compiled?.dispose();
      opt.dispose();
      lm.dispose();
    },
  };
}
