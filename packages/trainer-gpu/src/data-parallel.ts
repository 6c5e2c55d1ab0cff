import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { PrimerError } from '@primer-search/core';
import type { Batch } from '@primer-search/datasets';
import type { RunOptions } from '@primer-search/compiler';
import type { BackendChoice } from '@primer-search/study';

/** What a replica needs to build the same model as the main thread. */
export interface ReplicaSpec {
  dna: unknown;
  vocabSize: number;
  layers: number;
  dModel: number;
  seqLen: number;
  seed: string;
  backend: BackendChoice;
  /** Modules registering primitives the DNA uses. */
  plugins?: string[];
  /** How the main thread compiled the model (fused projections, stacked branches, fused kernels): a replica compiles it the same way. */
  runOptions?: RunOptions;
  /** The model's parameters by their stable names, in the order of the shared buffers' layout, with their sizes (every thread lays out by these names). */
  names: string[];
  sizes: number[];
  /** Most rows a replica gets in one step. */
  maxRows: number;
}

/** The messages between the main thread and a replica. */
export type ToReplica =
  | { type: 'init'; spec: ReplicaSpec; weights: SharedArrayBuffer; grads: SharedArrayBuffer; tokens: SharedArrayBuffer; control: SharedArrayBuffer }
  | { type: 'step'; rows: number };
export type FromReplica = { type: 'ready' } | { type: 'error'; message: string };

/** Atomics.waitAsync (in Node 16+, in TypeScript's lib from ES2024). */
const waitAsync = (Atomics as unknown as {
  waitAsync(a: Int32Array, index: number, value: number): { async: false; value: string } | { async: true; value: Promise<string> };
}).waitAsync;

/** control[0]: 0 while a replica computes, 1 when its gradients are written; control[1..2]: its loss as a float64. */
const DONE = 0;

/** How to start the replica script: built, or from TypeScript source under tsx (tests, development). */
function replicaWorker(): Worker {
  const fromSource = import.meta.url.endsWith('.ts');
  if (!fromSource) return new Worker(new URL('./data-parallel-worker.js', import.meta.url));
  const url = new URL('./data-parallel-worker.ts', import.meta.url).href;
  // worker threads do not inherit --import hooks: register tsx inside the worker first
  const code = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(url)}); })`;
  return new Worker(code, { eval: true, execArgv: ['--conditions=@primer-search/source'] });
}

interface Replica {
  worker: Worker;
  grads: Float32Array;
  tokens: Int32Array;
  control: Int32Array;
  loss: Float64Array;
  /** Settles with why the replica is gone, the moment it exits or throws. */
  gone: Promise<string>;
  /** What the replica reported of its last failed step. */
  lastError?: string;
}

/**
 * Data-parallel gradients on one machine: each step's batch is split by rows between this
 * thread and `replicas - 1` worker threads, each holding a copy of the model. Before a step
 * the current weights are copied to the replicas through shared memory; each computes the
 * gradients of its rows; this thread combines them weighted by rows (the same mean loss and
 * gradients as the whole batch on one thread), so the optimizer and everything else stays
 * here.
 */
export class DataParallel {
  private constructor(
    readonly replicas: number,
    private readonly spec: ReplicaSpec,
    private readonly weights: Float32Array,
    private readonly workers: Replica[],
    /** The model's variables by stable name, in the layout's order. */
    private readonly order: Array<[string, tf.Variable]>,
  ) {
    for (const w of workers) w.worker.on('message', (m: FromReplica) => m.type === 'error' && (w.lastError = m.message));
  }

  static async start(spec: Omit<ReplicaSpec, 'names' | 'sizes'>, replicas: number, named: Array<[string, tf.Variable]>): Promise<DataParallel> {
    if (!Number.isInteger(replicas) || replicas < 2) throw new PrimerError('BAD_PARALLEL', `data parallelism needs at least 2 replicas, got ${replicas}`);
    const full: ReplicaSpec = { ...spec, names: named.map(([n]) => n), sizes: named.map(([, v]) => v.size) };
    const total = full.sizes.reduce((a, b) => a + b, 0);
    const weightsBuffer = new SharedArrayBuffer(total * 4);
    const workers: Replica[] = [];
    try {
      for (let r = 1; r < replicas; r++) {
        const grads = new SharedArrayBuffer(total * 4);
        const tokens = new SharedArrayBuffer(2 * spec.maxRows * spec.seqLen * 4);
        const control = new SharedArrayBuffer(24);
        const worker = replicaWorker();
        const replica: Replica = {
          worker,
          grads: new Float32Array(grads),
          tokens: new Int32Array(tokens),
          control: new Int32Array(control, 0, 2),
          loss: new Float64Array(control, 8, 1),
          gone: new Promise<string>((resolve) => {
            worker.once('exit', (code) => resolve(`exited (code ${code})`));
            worker.once('error', (e) => resolve(`failed: ${e.message}`));
          }),
        };
        workers.push(replica);
        await new Promise<void>((resolve, reject) => {
          replica.gone.then((why) => reject(new PrimerError('BAD_PARALLEL', `a data-parallel replica ${why} while starting`)));
          worker.once('message', (m: FromReplica) => (m.type === 'ready' ? resolve() : reject(new PrimerError('BAD_PARALLEL', `a data-parallel replica failed to start: ${m.message}`))));
          worker.postMessage({ type: 'init', spec: full, weights: weightsBuffer, grads, tokens, control } satisfies ToReplica);
        });
        worker.on('error', () => {});
      }
    } catch (e) {
      await Promise.all(workers.map((w) => w.worker.terminate()));
      throw e;
    }
    return new DataParallel(replicas, full, new Float32Array(weightsBuffer), workers, named);
  }

  /**
   * The loss and gradients of the whole batch; the caller disposes them. `local` computes
   * them for this thread's rows. Gradients are keyed like `local`'s (by tfjs variable name);
   * weights and gradients travel laid out by the variables' stable names, whatever order
   * `variables` has. A variable with no gradient here (nothing it feeds reaches the loss) has
   * none in the result either, as on one thread.
   * Waiting for the replicas does not block the event loop, so a replica that exits or
   * throws is known at once, not when a deadline passes.
   */
  async gradients(
    batch: Batch,
    variables: tf.Variable[],
    local: (x: tf.Tensor2D, y: tf.Tensor2D) => { value: tf.Scalar; grads: tf.NamedTensorMap },
  ): Promise<{ value: tf.Scalar; grads: tf.NamedTensorMap }> {
    const n = this.replicas;
    const rows = batch.batch;
    const seq = batch.seqLen;
    // rows per replica: as even as possible, this thread first
    const counts = Array.from({ length: n }, (_, r) => Math.floor(rows / n) + (r < rows % n ? 1 : 0));
    if (counts.some((c) => c === 0)) throw new PrimerError('BAD_PARALLEL', `a batch of ${rows} rows cannot be split ${n} ways`);
    void variables;
    // current weights, in the shared layout (by stable name)
    let at = 0;
    for (const [, v] of this.order) {
      this.weights.set(v.dataSync() as Float32Array, at);
      at += v.size;
    }
    let start = counts[0]!;
    this.workers.forEach((w, i) => {
      const c = counts[i + 1]!;
      w.tokens.set(batch.tokens.subarray(start * seq, (start + c) * seq), 0);
      w.tokens.set(batch.targets.subarray(start * seq, (start + c) * seq), this.spec.maxRows * seq);
      Atomics.store(w.control, DONE, 0);
      w.worker.postMessage({ type: 'step', rows: c } satisfies ToReplica);
      start += c;
    });
    const mine = counts[0]!;
    const own = tf.tidy(() => {
      const x = tf.tensor2d(batch.tokens.subarray(0, mine * seq), [mine, seq], 'int32');
      const y = tf.tensor2d(batch.targets.subarray(0, mine * seq), [mine, seq], 'int32');
      return local(x, y);
    });
    try {
      await Promise.all(this.workers.map((w) => this.finished(w)));
    } catch (e) {
      tf.dispose([own.value, ...Object.values(own.grads)]);
      throw e;
    }
    return tf.tidy(() => {
      const share = (r: number) => counts[r]! / rows;
      let loss = own.value.mul(share(0)) as tf.Scalar;
      const grads: tf.NamedTensorMap = {};
      for (const [, v] of this.order) if (own.grads[v.name]) grads[v.name] = own.grads[v.name]!.mul(share(0));
      this.workers.forEach((w, i) => {
        let offset = 0;
        for (const [, v] of this.order) {
          if (grads[v.name]) {
            const g = tf.tensor(w.grads.subarray(offset, offset + v.size), v.shape, 'float32');
            grads[v.name] = grads[v.name]!.add(g.mul(share(i + 1)));
          }
          offset += v.size;
        }
        loss = loss.add(w.loss[0]! * share(i + 1)) as tf.Scalar;
      });
      tf.dispose([own.value, ...Object.values(own.grads)]);
      return { value: loss, grads };
    });
  }

  /** Resolves when the replica has written its gradients; rejects as soon as it fails or is gone. */
  private async finished(w: Replica): Promise<void> {
    const waited = waitAsync(w.control, DONE, 0);
    const written = waited.async ? waited.value.then(() => 'written') : Promise.resolve('written');
    const outcome = await Promise.race([written, w.gone.then((why) => `gone: ${why}`)]);
    const state = Atomics.load(w.control, DONE);
    if (state === 1) return;
    if (state === 2) {
      // its message is posted before the flag is set: let it arrive
      await new Promise((r) => setImmediate(r));
      throw new PrimerError('BAD_PARALLEL', `a data-parallel replica failed during a step${w.lastError ? `: ${w.lastError}` : ''}`);
    }
    throw new PrimerError('BAD_PARALLEL', `a data-parallel replica ${outcome.replace(/^gone: /, '')} during a step`);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}
