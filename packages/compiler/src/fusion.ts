// Chains of primitives the compiler runs as one fused kernel, where the backend registers it.
import { ABS_ROOT_EPS, MASK_FILL, type TF, type Tensor } from '@primer-search/primitives';
import type { CallNode, OpNode, SubprogramPlan } from './plan.js';

/**
 * The causal softmax over the last axis of `[batch, seq, seq]` scores, as the chain
 * MASK -> RED_MAX -> DIFFERENCE -> EXP -> RED_SUM -> DIVIDE computes it (the baselines'
 * `causal_softmax`): forward (`x` -> y) and backward (`dy`, `y` -> dx = y * (dy - sum(dy * y)),
 * 0 at masked positions). A backend that registers both gets each such chain, forward and
 * backward, in one kernel call each way instead of about twenty; elsewhere the chain runs op by
 * op, and is the reference the kernels are tested against.
 */
export const FUSED_CAUSAL_SOFTMAX = 'PrimerCausalSoftmax';
export const FUSED_CAUSAL_SOFTMAX_GRAD = 'PrimerCausalSoftmaxGrad';
/** What the fused kernel fills masked positions with before the max, as MASK does. */
export const CAUSAL_SOFTMAX_FILL = MASK_FILL;

/**
 * The normalisation of layer norm over the last axis of `[batch, seq, w]`, as the chain
 * RED_MEAN -> DIFFERENCE -> SQUARE -> RED_MEAN -> ABS_ROOT -> DIVIDE computes it:
 * n = (x - mean) / sqrt(mean((x - mean)^2) + eps), eps = ABS_ROOT_EPS (the LM's final norm is
 * the same function). Forward `x` -> [n, r] (r the row's denominator, `[batch, seq, 1]`);
 * backward `dy`, `n`, `r` -> dx = dc - mean(dc) with dc = (dy - n mean(dy n)) / r.
 */
export const FUSED_NORMALIZE = 'PrimerNormalize';
export const FUSED_NORMALIZE_GRAD = 'PrimerNormalizeGrad';
export const NORMALIZE_EPS = ABS_ROOT_EPS;

const hasKernels = (tf: TF, a: string, b: string) => tf.getKernel(a, tf.getBackend()) !== undefined && tf.getKernel(b, tf.getBackend()) !== undefined;
export const hasFusedNormalize = (tf: TF): boolean => hasKernels(tf, FUSED_NORMALIZE, FUSED_NORMALIZE_GRAD);

/** The fused normalisation (the backend must have both kernels: `hasFusedNormalize`). */
export function fusedNormalize(tf: TF, x: Tensor): Tensor {
  type Save = (ts: Tensor[]) => void;
  const f = tf.customGrad(((xs: Tensor, save: Save) => {
    const [n, r] = tf.engine().runKernel(FUSED_NORMALIZE, { x: xs } as never, {}) as unknown as [Tensor, Tensor];
    save([n, r]);
    return {
      value: n,
      gradFunc: (dy: Tensor, saved: Tensor[]) => tf.engine().runKernel(FUSED_NORMALIZE_GRAD, { dy, n: saved[0]!, r: saved[1]! } as never, {}) as unknown as Tensor,
    };
  }) as unknown as Parameters<TF['customGrad']>[0]);
  return f(x);
}

export const hasFusedSoftmax = (tf: TF): boolean => hasKernels(tf, FUSED_CAUSAL_SOFTMAX, FUSED_CAUSAL_SOFTMAX_GRAD);

/** The fused causal softmax (the backend must have both kernels: `hasFusedSoftmax`). */
export function fusedCausalSoftmax(tf: TF, x: Tensor): Tensor {
  type Save = (ts: Tensor[]) => void;
  const f = tf.customGrad(((xs: Tensor, save: Save) => {
    const y = tf.engine().runKernel(FUSED_CAUSAL_SOFTMAX, { x: xs } as never, {}) as unknown as Tensor;
    save([y]);
    return {
      value: y,
      gradFunc: (dy: Tensor, saved: Tensor[]) => tf.engine().runKernel(FUSED_CAUSAL_SOFTMAX_GRAD, { dy, y: saved[0]! } as never, {}) as unknown as Tensor,
    };
  }) as unknown as Parameters<TF['customGrad']>[0]);
  return f(x);
}

/** A recognised chain: what it computes, the state it reads, and the nodes it replaces (all but its last). */
export interface FusedChain {
  kind: 'causal-softmax' | 'normalize';
  input: number;
  skip: Set<number>;
}

/** Who reads each state of a subprogram (op inputs, call arguments, the output), and the parameter-free unbranched ops by state. */
function wiring(sp: SubprogramPlan) {
  const byState = new Map<number, { k: number; node: OpNode }>();
  const reads = new Map<number, number>();
  const read = (s: number) => reads.set(s, (reads.get(s) ?? 0) + 1);
  sp.nodes.forEach((n, k) => {
    if (n.kind === 'op') {
      n.inputs.forEach(read);
      if (n.params.length === 1 && n.params[0]!.length === 0) byState.set(n.state, { k, node: n });
    } else (n as CallNode).args.slice(0, n.branches[0]!.inputCount).forEach(read);
  });
  read(sp.output);
  /** The op computing `state`, if it is `op` and read exactly `readers` times. */
  const producer = (state: number, op: string, readers: number) => {
    const p = byState.get(state);
    return p && p.node.descriptor.name === op && reads.get(state) === readers ? p : undefined;
  };
  return producer;
}

const chainCache = new WeakMap<SubprogramPlan, Map<number, FusedChain>>();
const normalizeCache = new WeakMap<SubprogramPlan, Map<number, FusedChain>>();

/**
 * The layer-norm normalisations of a subprogram, by the node index of their DIVIDE:
 * c = DIFFERENCE(x, RED_MEAN(x)); DIVIDE(c, ABS_ROOT(RED_MEAN(SQUARE(c)))), parameter-free,
 * unbranched, with intermediate states nothing else reads.
 */
export function normalizeChains(sp: SubprogramPlan): Map<number, FusedChain> {
  const hit = normalizeCache.get(sp);
  if (hit) return hit;
  const chains = new Map<number, FusedChain>();
  const producer = wiring(sp);
  sp.nodes.forEach((n, k) => {
    if (n.kind !== 'op' || n.descriptor.name !== 'DIVIDE' || n.params.length !== 1) return;
    const [cState, rState] = n.inputs as [number, number];
    const c = producer(cState, 'DIFFERENCE', 2);
    const r = producer(rState, 'ABS_ROOT', 1);
    if (!c || !r) return;
    const v = producer(r.node.inputs[0]!, 'RED_MEAN', 1);
    const q = v && producer(v.node.inputs[0]!, 'SQUARE', 1);
    if (!q || q.node.inputs[0] !== cState) return;
    const [xState, muState] = c.node.inputs as [number, number];
    const mu = producer(muState, 'RED_MEAN', 1);
    if (!mu || mu.node.inputs[0] !== xState || xState === muState) return;
    chains.set(k, { kind: 'normalize', input: xState, skip: new Set([mu.k, c.k, q.k, v!.k, r.k]) });
  });
  normalizeCache.set(sp, chains);
  return chains;
}

/**
 * The causal-softmax chains of a subprogram, by the node index of their DIVIDE: six
 * parameter-free, unbranched ops wired exactly as softmax is, whose intermediate states
 * nothing else reads (so skipping them changes no other result).
 */
export function softmaxChains(sp: SubprogramPlan): Map<number, FusedChain> {
  const hit = chainCache.get(sp);
  if (hit) return hit;
  const chains = new Map<number, FusedChain>();
  const producer = wiring(sp);
  sp.nodes.forEach((n, k) => {
    if (n.kind !== 'op' || n.descriptor.name !== 'DIVIDE' || n.params.length !== 1) return;
    const [dState, zState] = n.inputs as [number, number];
    const z = producer(zState, 'RED_SUM', 1);
    const e = producer(dState, 'EXP', 2);
    if (!z || !e || z.node.inputs[0] !== dState) return;
    const d = producer(e.node.inputs[0]!, 'DIFFERENCE', 1);
    if (!d) return;
    const [mState, maxState] = d.node.inputs as [number, number];
    const mx = producer(maxState, 'RED_MAX', 1);
    const m = producer(mState, 'MASK', 2);
    if (!mx || !m || mx.node.inputs[0] !== mState) return;
    chains.set(k, { kind: 'causal-softmax', input: m.node.inputs[0]!, skip: new Set([m.k, mx.k, d.k, e.k, z.k]) });
  });
  chainCache.set(sp, chains);
  return chains;
}
