// `npm run profile`: where one training step of the reference vanilla config spends its time
// on wasm, by kernel and (for BatchMatMul) by input shapes. Kernels our wrappers call
// directly (the stock matmul, Transpose) are counted inside the wrapper's time.
import * as tf from '@tensorflow/tfjs';
import { baselineDna } from '@primer-search/baselines';
import { compileLanguageModel } from '@primer-search/compiler';
import { Rng } from '@primer-search/core';
import { createOptimizer, selectBackend } from '@primer-search/trainer-gpu';

await selectBackend('wasm');
const model = process.argv[2] ?? 'vanilla';
const stackBranches = !process.argv.includes('--per-branch');
const lm = compileLanguageModel(baselineDna(model, { dModel: 128 }), { tf: tf as never, vocabSize: 1024, layers: 2, dModel: 128, seqLen: 64, seed: 1, stackBranches });
const rng = Rng.create(1);
const tokens = tf.tensor2d(Array.from({ length: 1024 }, () => rng.int(0, 1023)), [16, 64], 'int32');
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
for (let i = 0; i < 3; i++) step();
const wall = (performance.now() - t0) / 3;
const profile = await tf.profile(() => {
  step();
});
const group = (keyOf: (k: (typeof profile.kernels)[number]) => string | undefined) => {
  const m = new Map<string, { ms: number; n: number }>();
  for (const k of profile.kernels) {
    const key = keyOf(k);
    if (key === undefined) continue;
    const e = m.get(key) ?? { ms: 0, n: 0 };
    e.ms += k.kernelTimeMs as number;
    e.n++;
    m.set(key, e);
  }
  return [...m].sort((a, b) => b[1].ms - a[1].ms);
};
const byKernel = group((k) => k.name);
const total = byKernel.reduce((a, [, e]) => a + e.ms, 0);
console.log(`${model}, 2 layers, dModel 128, seq 64, batch 16, vocabulary 1024: ${wall.toFixed(0)} ms/step (${((1024 * 1000) / wall).toFixed(0)} tokens/s)`);
console.log(`\nby kernel (${total.toFixed(0)} ms in ${profile.kernels.length} kernel calls):`);
for (const [name, e] of byKernel.slice(0, 15)) console.log(`  ${name.padEnd(22)} ${e.ms.toFixed(1).padStart(7)} ms ${String(e.n).padStart(5)} calls ${((100 * e.ms) / total).toFixed(0).padStart(3)}%`);
console.log('\nBatchMatMul by input shapes:');
for (const [shapes, e] of group((k) => (k.name === 'BatchMatMul' ? JSON.stringify(k.inputShapes) : undefined)).slice(0, 10)) {
  console.log(`  ${shapes.padEnd(32)} ${e.ms.toFixed(1).padStart(7)} ms ${String(e.n).padStart(5)} calls`);
}
for (const name of ['Multiply', 'Exp', 'Sum', 'Add', 'Concat', 'Identity', 'Cast', 'Select', 'Transpose', 'Reshape']) {
  const rows = group((k) => (k.name === name ? JSON.stringify(k.inputShapes) : undefined)).slice(0, 4);
  if (rows.length) console.log(`\n${name} by input shapes:\n${rows.map(([s, e]) => `  ${s.padEnd(40)} ${e.ms.toFixed(1).padStart(7)} ms ${String(e.n).padStart(5)} calls`).join('\n')}`);
}
