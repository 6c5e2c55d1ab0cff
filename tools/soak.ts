// `npm run bench:soak`: 1,000 training steps of a small model on wasm, printing tensors,
// backend bytes and process memory every 100 steps (they must stay flat), and the
// per-candidate overhead a search pays besides training, against a 60 s budget.
import * as tf from '@tensorflow/tfjs';
import { baselineDna } from '@primer-search/baselines';
import { compileLanguageModel } from '@primer-search/compiler';
import { BatchSampler, brown, byteTokenizer, evaluationBatches, tokenStream } from '@primer-search/datasets';
import { selectBackend, trainModel } from '@primer-search/trainer-gpu';

const steps = Number(process.argv[2] ?? 1000);
await selectBackend('wasm');
const tokenizer = byteTokenizer();
const t0 = performance.now();
const train = tokenStream(brown.open(), 'train', tokenizer);
const validation = evaluationBatches(tokenStream(brown.open(), 'validation', tokenizer), 16, 64, 64);
const dataSeconds = (performance.now() - t0) / 1000;

// Overhead of one candidate: compile + initialise, the first (slow) step, one evaluation.
const t1 = performance.now();
const model = compileLanguageModel(baselineDna('primer-ez', { dModel: 64 }), { tf: tf as never, vocabSize: tokenizer.vocabSize, layers: 2, dModel: 64, seqLen: 64, seed: 1 });
const compileSeconds = (performance.now() - t1) / 1000;
const sampler = new BatchSampler(train, 16, 64, 1);
const first = await trainModel({ model, sampler, evaluation: validation, budget: { kind: 'steps', steps: 1 }, config: { checkpoints: [] } });
const second = await trainModel({ model, sampler, evaluation: validation, budget: { kind: 'steps', steps: 5 }, config: { checkpoints: [] } });
const stepSeconds = second.trainSeconds / second.steps;
const firstStepExtra = Math.max(0, first.trainSeconds - stepSeconds);
const evalSeconds = second.evalSeconds;
const overhead = compileSeconds + firstStepExtra + evalSeconds;
console.log(`per-candidate overhead (dModel 64, 2 layers, 64 validation windows):`);
console.log(`  compile + initialise ${compileSeconds.toFixed(3)} s, first-step extra ${firstStepExtra.toFixed(3)} s, final evaluation ${evalSeconds.toFixed(3)} s`);
console.log(`  = ${overhead.toFixed(2)} s = ${((100 * overhead) / 60).toFixed(1)}% of a 60 s budget (data preparation, once per process: ${dataSeconds.toFixed(1)} s)`);

console.log(`\n${steps}-step soak:`);
console.log('  step   tensors   backend MB   heap MB   rss MB');
const report = (step: number) => {
  const m = tf.memory();
  const p = process.memoryUsage();
  console.log(`  ${String(step).padStart(4)}  ${String(m.numTensors).padStart(8)}  ${(m.numBytes / 2 ** 20).toFixed(2).padStart(11)}  ${(p.heapUsed / 2 ** 20).toFixed(1).padStart(8)}  ${(p.rss / 2 ** 20).toFixed(1).padStart(7)}`);
};
report(0);
for (let done = 0; done < steps; done += 100) {
  await trainModel({ model, sampler, evaluation: validation.slice(0, 1), budget: { kind: 'steps', steps: Math.min(100, steps - done) }, config: { checkpoints: [] } });
  report(done + Math.min(100, steps - done));
}
model.dispose();
