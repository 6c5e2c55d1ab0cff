// Runs the ten lines of the package README, as written, on a few pages of the Brown corpus.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { readBrown } from '@primer-search/datasets';
import { selectBackend } from '@primer-search/trainer-gpu';
import { expect, it } from 'vitest';
import * as layers from './index.js';
import { fileSystem, loadModel } from './node.js';

it('the README builds, trains, samples from and saves a Primer-EZ model in ten lines', async () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const code = /## A Primer-EZ language model in ten lines\s+```js\n([\s\S]*?)```/.exec(readme)![1]!;
  const lines = code.trim().split('\n');
  expect(lines.length).toBeLessThanOrEqual(10);
  // the wasm backend (with the trainer's kernels): the cpu backend takes minutes for this
  await selectBackend('wasm');
  let text = '';
  for (const d of readBrown()) if ((text += `${d.text}\n`).length > 12_000) break;
  const dir = mkdtempSync(join(tmpdir(), 'primer-readme-'));
  // the imports become arguments; the rest runs as written
  const body = lines.filter((l) => !l.startsWith('import ')).join('\n');
  const run = new Function('tf', 'layers', 'text', 'saveTo', `const { causalLanguageModel, generate, nextTokenExamples } = layers; return (async () => {\n${body}\nreturn { model, continuation };\n})();`);
  const { model, continuation } = (await run(tf, layers, text, fileSystem(dir))) as { model: tf.LayersModel; continuation: number[] };
  expect(continuation).toHaveLength(40);
  const loaded = await loadModel(dir);
  const ids = tf.tensor2d([Array.from(new TextEncoder().encode('The jury said'))], [1, 13], 'int32');
  const a = (model.predict(ids) as tf.Tensor).dataSync();
  const b = (loaded.predict(ids) as tf.Tensor).dataSync();
  expect(Array.from(b)).toEqual(Array.from(a));
  // it learnt something: the next-byte loss on held-in text is well below uniform (ln 256 = 5.5)
  const { xs, ys } = layers.nextTokenExamples(Array.from(new TextEncoder().encode(text.slice(0, 4000))), { seqLen: 64, vocabSize: 256 });
  const loss = tf.losses.softmaxCrossEntropy(ys, model.predict(xs) as tf.Tensor).dataSync()[0]!;
  expect(loss).toBeLessThan(3.5);
  rmSync(dir, { recursive: true, force: true });
  await tf.setBackend('cpu');
}, 120_000);
