/**
 * A data-parallel replica (a worker thread): builds the same model as the main thread, and
 * for each step takes the current weights and its rows from shared memory, computes their
 * loss and gradients, and writes them back. See DataParallel.
 */
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { compileLanguageModel } from '@primer-search/compiler';
import { selectBackend } from './backends/index.js';
import { CompiledStep } from './compiled-step.js';
import type { FromReplica, ToReplica } from './data-parallel.js';

const port = parentPort;
if (port) {
  let state:
    | {
        variables: tf.Variable[];
        /** The loss and gradients of its rows: the same compiled step as one thread's (record, check, replay; the tape where it cannot). */
        step: CompiledStep;
        weights: Float32Array;
        grads: Float32Array;
        tokens: Int32Array;
        control: Int32Array;
        lossOut: Float64Array;
        maxRows: number;
        seqLen: number;
      }
    | undefined;
  port.on('message', async (m: ToReplica) => {
    if (m.type === 'init') {
      try {
        const s = m.spec;
        for (const p of s.plugins ?? []) await import(p);
        await selectBackend(s.backend);
        // the main thread's run options: the same kernels, fused or not, as the model whose steps it shares
        const model = compileLanguageModel(s.dna, { ...s.runOptions, tf: tf as never, vocabSize: s.vocabSize, layers: s.layers, dModel: s.dModel, seqLen: s.seqLen, seed: s.seed });
        const named = new Map(model.namedVariables as unknown as Map<string, tf.Variable>);
        const variables = s.names.map((n, i) => {
          const v = named.get(n);
          if (!v || v.size !== s.sizes[i]) throw new Error(`the replica's model has no parameter ${n} of ${s.sizes[i]} values`);
          return v;
        });
        state = {
          variables,
          step: new CompiledStep(tf, (x, y) => model.loss(x as never, y as never) as unknown as tf.Scalar, variables),
          weights: new Float32Array(m.weights),
          grads: new Float32Array(m.grads),
          tokens: new Int32Array(m.tokens),
          control: new Int32Array(m.control, 0, 2),
          lossOut: new Float64Array(m.control, 8, 1),
          maxRows: s.maxRows,
          seqLen: s.seqLen,
        };
        port.postMessage({ type: 'ready' } satisfies FromReplica);
      } catch (e) {
        port.postMessage({ type: 'error', message: (e as Error).message } satisfies FromReplica);
      }
      return;
    }
    const s = state!;
    try {
      tf.tidy(() => {
        let at = 0;
        for (const v of s.variables) {
          tf.tidy(() => v.assign(tf.tensor(s.weights.subarray(at, at + v.size), v.shape, 'float32')));
          at += v.size;
        }
        const n = m.rows * s.seqLen;
        const x = tf.tensor2d(s.tokens.subarray(0, n), [m.rows, s.seqLen], 'int32');
        const y = tf.tensor2d(s.tokens.subarray(s.maxRows * s.seqLen, s.maxRows * s.seqLen + n), [m.rows, s.seqLen], 'int32');
        const { value, grads } = s.step.run(x, y);
        at = 0;
        for (const v of s.variables) {
          // a variable with no gradient (nothing it feeds reaches the loss): zeros here, left out by the main thread
          const g = grads[v.name];
          if (g) s.grads.set(g.dataSync() as Float32Array, at);
          else s.grads.fill(0, at, at + v.size);
          at += v.size;
        }
        s.lossOut[0] = value.dataSync()[0]!;
      });
      Atomics.store(s.control, 0, 1);
    } catch (e) {
      port.postMessage({ type: 'error', message: (e as Error).message } satisfies FromReplica);
      Atomics.store(s.control, 0, 2);
    }
    Atomics.notify(s.control, 0);
  });
}
