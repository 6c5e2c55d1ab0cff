// `npm run bench:ab -- <option> [model]`: one compiler option on against off, alternated in
// one process on wasm (reference config), so the machine's noise hits both sides alike.
// Prints ms/step per side and alternation, for native products and for XNNPACK products.
import * as tf from '@tensorflow/tfjs';
import { baselineDna } from '@primer-search/baselines';
import { compileLanguageModel, type RunOptions } from '@primer-search/compiler';
import { Rng } from '@primer-search/core';
import { createOptimizer, nativeProductsOn, selectBackend, setNativeProducts } from '@primer-search/trainer-gpu';

const option = (process.argv[2] ?? 'stackBranches') as keyof RunOptions;
const model = process.argv[3] ?? 'vanilla';
const ROUNDS = 4;
const STEPS = 5;
await selectBackend('wasm');
const rng = Rng.create(1);
const tokens = tf.tensor2d(Array.from({ length: 1024 }, () => rng.int(0, 1023)), [16, 64], 'int32');

const msPerStep = (on: boolean): number => {
  const lm = compileLanguageModel(baselineDna(model, { dModel: 128 }), { tf: tf as never, vocabSize: 1024, layers: 2, dModel: 128, seqLen: 64, seed: 1, [option]: on });
  // the trainer's own Adam (one fused kernel per variable on wasm)
  const opt = createOptimizer('adam');
  opt.setLearningRate(1e-3);
  const step = () =>
    tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => lm.loss(tokens as never, tokens as never) as never, lm.variables as never);
      opt.applyGradients(grads as never);
      return value.dataSync()[0];
    });
  step();
  step();
  const t0 = performance.now();
  for (let i = 0; i < STEPS; i++) step();
  const ms = (performance.now() - t0) / STEPS;
  opt.dispose();
  lm.dispose();
  return ms;
};

const native = nativeProductsOn();
for (const products of native ? ['native', 'xnnpack'] : ['xnnpack']) {
  setNativeProducts(products === 'native');
  const rows: Array<[number, number]> = [];
  // the order alternates too: a side that always ran second would inherit the first's heap
  for (let r = 0; r < ROUNDS; r++) {
    if (r % 2 === 0) rows.push([msPerStep(false), msPerStep(true)]);
    else {
      const on = msPerStep(true);
      rows.push([msPerStep(false), on]);
    }
  }
  const mean = (i: 0 | 1) => rows.reduce((a, x) => a + x[i], 0) / rows.length;
  console.log(
    `${model}, ${products} products, ${option}: off ${rows.map((x) => x[0].toFixed(0)).join('/')} ms/step, on ${rows.map((x) => x[1].toFixed(0)).join('/')} ms/step: ` +
      `${mean(0).toFixed(0)} -> ${mean(1).toFixed(0)} (${(mean(0) / mean(1)).toFixed(2)}x)`,
  );
}
