// `npm run bench:ab -- <option> [model]`: one compiler option on against off, alternated in
// one process on wasm (reference config), so the machine's noise hits both sides alike.
// `kernel:<name>` as the option registers one of our wasm kernels against leaving it out (e.g.
// `kernel:PrimerCausalMask`: the composite runs instead); `compiled` replays the trainer's
// compiled step against the tape. Prints ms/step per side and
// alternation, for native products and for XNNPACK products.
import * as tf from '@tensorflow/tfjs';
import type { RunOptions } from '@primer-search/compiler';
import { nativeProductsOn, selectBackend, setNativeProducts } from '@primer-search/trainer-gpu';
import { referenceStep } from './_reference-step.js';

const option = (process.argv[2] ?? 'stackBranches') as keyof RunOptions;
const model = process.argv[3] ?? 'vanilla';
const ROUNDS = 4;
const STEPS = 5;
await selectBackend('wasm');

const kernelName = option.startsWith('kernel:') ? option.slice('kernel:'.length) : undefined;
const kernel = kernelName === undefined ? undefined : tf.getKernel(kernelName, 'wasm');
if (kernelName !== undefined && !kernel) throw new Error(`no wasm kernel named ${kernelName} is registered`);
// only kernels of our own that stock wasm lacks: leaving out a replacement (Identity, Sum...) would leave no kernel at all
if (kernelName !== undefined && !kernelName.startsWith('Primer')) throw new Error(`kernel:${kernelName}: only our own kernels (Primer...) can be left out; the composite then runs instead`);
const setKernel = (on: boolean) => {
  const there = tf.getKernel(kernelName!, 'wasm') !== undefined;
  if (on && !there) tf.registerKernel(kernel!);
  if (!on && there) tf.unregisterKernel(kernelName!, 'wasm');
};

const msPerStep = (on: boolean): number => {
  if (kernel) setKernel(on);
  const { step, dispose } = referenceStep(model, kernel ? {} : (option as string) === 'compiled' ? { compiled: on } : { [option]: on });
  step();
  step();
  const t0 = performance.now();
  for (let i = 0; i < STEPS; i++) step();
  const ms = (performance.now() - t0) / STEPS;
  dispose();
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
