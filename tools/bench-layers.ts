// Training throughput of @primer-search/layers' models against the trainer, side by side in one
// process: Primer-EZ at the reference configuration (2 layers, dModel 128, seq 64, batch 16,
// vocabulary 1024) trained one step at a time (a) by the trainer's compiled model and Adam,
// (b) by causalLanguageModel({ block: 'primer-ez' }) with model.trainOnBatch, and (c) by the
// same with block { dna } (DnaBlock). Rounds interleave the three; the median is reported.
// Usage: npm run bench:layers [-- --backend wasm|cpu] [--rounds 5] [--steps 8]
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { baselineDna } from '@primer-search/baselines';
import { Rng } from '@primer-search/core';
import { causalLanguageModel, type BlockChoice } from '@primer-search/layers';
import { describeBackend } from '@primer-search/study';
import { selectBackend } from '@primer-search/trainer-gpu';
import { referenceStep } from './_reference-step.js';

const { values } = parseArgs({ options: { backend: { type: 'string', default: 'wasm' }, rounds: { type: 'string', default: '5' }, steps: { type: 'string', default: '8' } } });
const backend = await selectBackend(values.backend as never);
const rounds = Number(values.rounds);
const steps = Number(values.steps);
const TOKENS = 16 * 64;

const rng = Rng.create(1);
const ids = Array.from({ length: 16 * 65 }, () => rng.int(0, 1023));
const xs = tf.tensor2d(Array.from({ length: 16 }, (_, r) => ids.slice(r * 65, r * 65 + 64)), [16, 64], 'int32');
const ys = tf.oneHot(tf.tensor2d(Array.from({ length: 16 }, (_, r) => ids.slice(r * 65 + 1, r * 65 + 65)), [16, 64], 'int32'), 1024).toFloat();

function layersStep(block: BlockChoice): () => Promise<unknown> {
  const model = causalLanguageModel({ vocabSize: 1024, dModel: 128, layers: 2, maxLength: 64, block });
  const opt = tf.train.adam(1e-3);
  model.compile({ optimizer: opt, loss: tf.losses.softmaxCrossEntropy });
  return () => model.trainOnBatch(xs, ys);
}

const reference = referenceStep('primer-ez');
const runs: Record<string, () => unknown> = {
  'trainer (compiled DNA, fused kernels)': () => reference.step(),
  'layers: PrimerEZBlock, model.trainOnBatch': layersStep('primer-ez'),
  'layers: DnaBlock(primer-ez), model.trainOnBatch': layersStep({ dna: baselineDna('primer-ez', { dModel: 128 }) }),
};
const rates: Record<string, number[]> = Object.fromEntries(Object.keys(runs).map((k) => [k, []]));
for (const run of Object.values(runs)) await run(); // warm up
for (let r = 0; r < rounds; r++) {
  for (const [name, run] of Object.entries(runs)) {
    const t0 = performance.now();
    for (let s = 0; s < steps; s++) await run();
    rates[name]!.push((steps * TOKENS) / ((performance.now() - t0) / 1000));
  }
}
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
const base = median(Object.values(rates)[0]!);
console.log(`Primer-EZ, 2 layers, dModel 128, seq 64, batch 16, vocabulary 1024 · backend ${describeBackend(backend)} · median of ${rounds} rounds of ${steps} steps`);
for (const [name, r] of Object.entries(rates)) console.log(`  ${name.padEnd(50)} ${median(r).toFixed(0).padStart(7)} tokens/s  ${(median(r) / base).toFixed(2)}x`);
