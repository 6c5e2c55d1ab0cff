// `npm run profile`: where one training step of the reference vanilla config spends its time
// on wasm, by kernel and (for BatchMatMul) by input shapes. Kernels our wrappers call
// directly (the stock matmul, Transpose) are counted inside the wrapper's time.
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '@primer-search/trainer-gpu';
import { referenceStep } from './_reference-step.js';

await selectBackend('wasm');
const model = process.argv[2] ?? 'vanilla';
const { step } = referenceStep(model, { stackBranches: !process.argv.includes('--per-branch') });
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
// the compiled step (what the trainer runs): the same kernels, replayed without the tape
const replayed = referenceStep(model, { stackBranches: !process.argv.includes('--per-branch'), compiled: true });
for (let i = 0; i < 3; i++) replayed.step();
const t1 = performance.now();
for (let i = 0; i < 3; i++) replayed.step();
const wallCompiled = (performance.now() - t1) / 3;
replayed.dispose();
console.log(`${model}, 2 layers, dModel 128, seq 64, batch 16, vocabulary 1024: ${wall.toFixed(0)} ms/step on the tape (${((1024 * 1000) / wall).toFixed(0)} tokens/s), ${wallCompiled.toFixed(0)} ms/step compiled (${((1024 * 1000) / wallCompiled).toFixed(0)} tokens/s)`);
console.log(`\nby kernel, taped step (${total.toFixed(0)} ms in ${profile.kernels.length} kernel calls; outside them ${(wall - total).toFixed(0)} ms taped, ${(wallCompiled - total).toFixed(0)} ms compiled):`);
for (const [name, e] of byKernel.slice(0, 15)) console.log(`  ${name.padEnd(22)} ${e.ms.toFixed(1).padStart(7)} ms ${String(e.n).padStart(5)} calls ${((100 * e.ms) / total).toFixed(0).padStart(3)}%`);
console.log('\nBatchMatMul by input shapes:');
for (const [shapes, e] of group((k) => (k.name === 'BatchMatMul' ? JSON.stringify(k.inputShapes) : undefined)).slice(0, 10)) {
  console.log(`  ${shapes.padEnd(32)} ${e.ms.toFixed(1).padStart(7)} ms ${String(e.n).padStart(5)} calls`);
}
for (const name of ['Multiply', 'Exp', 'Sum', 'Add', 'Concat', 'Identity', 'Cast', 'Select', 'Transpose', 'Reshape']) {
  const rows = group((k) => (k.name === name ? JSON.stringify(k.inputShapes) : undefined)).slice(0, 4);
  if (rows.length) console.log(`\n${name} by input shapes:\n${rows.map(([s, e]) => `  ${s.padEnd(40)} ${e.ms.toFixed(1).padStart(7)} ms ${String(e.n).padStart(5)} calls`).join('\n')}`);
}
