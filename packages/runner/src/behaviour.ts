import { createHash } from 'node:crypto';
import { planBlock, runBlock, type BlockPlan } from '@primer-search/compiler';
import { Rng } from '@primer-search/core';
import type { TF, Tensor } from '@primer-search/primitives';

/** Relative resolution of the outputs that are hashed: 4 decimal digits of the largest output. */
const RESOLUTION = 1e4;
/** Sequences of the fixed input. */
const BATCH = 2;

/**
 * What a program computes, as a hash (AutoML-Zero's functional-equivalence check): its block
 * run on a fixed random input `[2, seqLen, dModel]` with fixed random weights, every output
 * rounded to 4 digits relative to the largest, hashed together with what training depends on
 * beyond the function (the parameter count, the FLOPs per token, each parameter's shape and
 * initialiser). Two programs with equal behaviours compute the same function (e.g. `x * 2` and
 * `x + x`) and train the same way, so one result serves both.
 *
 * Every parameter gets its own random values (uniform, scaled by its fan-in; never the
 * training initialiser, whose zeros and ones would hide a bias or a gain), drawn by its place
 * in the block's parameters and its shape (not by the code that computes it, which differs
 * between equivalent programs), so two programs that differ only in which weights they use, or
 * where, do not compute the same function here. Null when the
 * outputs are not all finite (many different programs overflow alike) or the program cannot
 * be planned (its training will say why). A backend that rounds differently may give an
 * equivalent program another behaviour: a missed saving, never a wrong merge.
 */
export async function programBehaviour(tf: TF, dna: unknown, size: { dModel: number; seqLen: number }): Promise<string | null> {
  let plan: BlockPlan;
  try {
    plan = planBlock(dna, size);
  } catch {
    return null;
  }
  const weights = new Map<string, Tensor>();
  const result = tf.tidy(() => {
    for (const [k, p] of plan.params.entries()) {
      const n = p.spec.shape.reduce((a, b) => a * b, 1);
      const fanIn = p.spec.shape.length >= 2 ? p.spec.shape.slice(0, -1).reduce((a, b) => a * b, 1) : 1;
      const limit = Math.sqrt(3 / fanIn);
      weights.set(p.name, tf.keep(tf.tensor(Rng.create(`behaviour|${k}|${p.spec.shape.join('x')}`).uniformArray(n, -limit, limit), p.spec.shape)));
    }
    const x = tf.tensor(Rng.create(`behaviour|input|${size.dModel}|${size.seqLen}`).normalArray(BATCH * size.seqLen * size.dModel), [BATCH, size.seqLen, size.dModel]);
    return runBlock(tf, plan, (name) => weights.get(name)!, x);
  });
  for (const w of weights.values()) w.dispose();
  // read asynchronously: a GPU backend has no synchronous read in Node
  const out = (await result.data().finally(() => result.dispose())) as Float32Array;
  let largest = 0;
  for (const v of out) {
    if (!Number.isFinite(v)) return null;
    largest = Math.max(largest, Math.abs(v));
  }
  const rounded = new Int32Array(out.length);
  if (largest > 0) for (let i = 0; i < out.length; i++) rounded[i] = Math.round((out[i]! / largest) * RESOLUTION);
  const training = {
    parameters: plan.estimate.parameters,
    flops: plan.estimate.forwardFlopsPerToken,
    largest: largest.toPrecision(4),
    params: plan.params.map((p) => JSON.stringify([p.spec.shape, p.spec.init])).sort(),
  };
  return createHash('sha256').update(JSON.stringify(training)).update(Buffer.from(rounded.buffer)).digest('hex').slice(0, 32);
}
