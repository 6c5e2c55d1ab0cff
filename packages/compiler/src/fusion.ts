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

/**
 * A fused kernel pair as a differentiable op: `forward` gives the value (and what the backward
 * needs, when it outputs several tensors: the value first), `backward` takes `dy` and what
 * the forward saved, under the names `saved` gives them.
 */
function fusedOp(tf: TF, forward: string, backward: string, saved: string[]): (x: Tensor) => Tensor {
  type Save = (ts: Tensor[]) => void;
  return tf.customGrad(((xs: Tensor, save: Save) => {
    const out = tf.engine().runKernel(forward, { x: xs } as never, {}) as unknown as Tensor | Tensor[];
    const outs = Array.isArray(out) ? out : [out];
    save(outs);
    return {
      value: outs[0]!,
      gradFunc: (dy: Tensor, kept: Tensor[]) =>
        tf.engine().runKernel(backward, { dy, ...Object.fromEntries(saved.map((name, i) => [name, kept[i]!])) } as never, {}) as unknown as Tensor,
    };
  }) as unknown as Parameters<TF['customGrad']>[0]) as unknown as (x: Tensor) => Tensor;
}

/** The fused normalisation (the backend must have both kernels: `hasFusedNormalize`). */
export const fusedNormalize = (tf: TF, x: Tensor): Tensor => fusedOp(tf, FUSED_NORMALIZE, FUSED_NORMALIZE_GRAD, ['n', 'r'])(x);

export const hasFusedSoftmax = (tf: TF): boolean => hasKernels(tf, FUSED_CAUSAL_SOFTMAX, FUSED_CAUSAL_SOFTMAX_GRAD);

/** The fused causal softmax (the backend must have both kernels: `hasFusedSoftmax`). */
export const fusedCausalSoftmax = (tf: TF, x: Tensor): Tensor => fusedOp(tf, FUSED_CAUSAL_SOFTMAX, FUSED_CAUSAL_SOFTMAX_GRAD, ['y'])(x);

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

type ChainFinder = (producer: ReturnType<typeof wiring>, divide: OpNode) => FusedChain | undefined;

/** The layer-norm normalisation ending at DIVIDE(c, ABS_ROOT(RED_MEAN(SQUARE(c)))), c = DIFFERENCE(x, RED_MEAN(x)). */
const normalizeAt: ChainFinder = (producer, n) => {
  const [cState, rState] = n.inputs as [number, number];
  const c = producer(cState, 'DIFFERENCE', 2);
  const r = producer(rState, 'ABS_ROOT', 1);
  if (!c || !r) return undefined;
  const v = producer(r.node.inputs[0]!, 'RED_MEAN', 1);
  const q = v && producer(v.node.inputs[0]!, 'SQUARE', 1);
  if (!q || q.node.inputs[0] !== cState) return undefined;
  const [xState, muState] = c.node.inputs as [number, number];
  const mu = producer(muState, 'RED_MEAN', 1);
  if (!mu || mu.node.inputs[0] !== xState || xState === muState) return undefined;
  return { kind: 'normalize', input: xState, skip: new Set([mu.k, c.k, q.k, v!.k, r.k]) };
};

/** The causal softmax ending at DIVIDE(e, RED_SUM(e)), e = EXP(DIFFERENCE(m, RED_MAX(m))), m = MASK(x). */
const softmaxAt: ChainFinder = (producer, n) => {
  const [dState, zState] = n.inputs as [number, number];
  const z = producer(zState, 'RED_SUM', 1);
  const e = producer(dState, 'EXP', 2);
  if (!z || !e || z.node.inputs[0] !== dState) return undefined;
  const d = producer(e.node.inputs[0]!, 'DIFFERENCE', 1);
  if (!d) return undefined;
  const [mState, maxState] = d.node.inputs as [number, number];
  const mx = producer(maxState, 'RED_MAX', 1);
  const m = producer(mState, 'MASK', 2);
  if (!mx || !m || mx.node.inputs[0] !== mState) return undefined;
  return { kind: 'causal-softmax', input: m.node.inputs[0]!, skip: new Set([m.k, mx.k, d.k, e.k, z.k]) };
};

/** Every recognised chain of a subprogram, by the node index of its last op (a DIVIDE), and which chain owns each node it replaces. */
export interface SubprogramChains {
  chains: Map<number, FusedChain>;
  /** Node index -> the kind of the chain that replaces it. */
  replaced: Map<number, FusedChain['kind']>;
}

const chainCache = new WeakMap<SubprogramPlan, SubprogramChains>();

/**
 * The fusable chains of a subprogram (computed once per plan): the causal softmax and layer
 * norm's normalisation, each of parameter-free unbranched ops wired exactly so, whose
 * intermediate states nothing else reads (so skipping them changes no other result).
 */
export function fusedChains(sp: SubprogramPlan): SubprogramChains {
  const hit = chainCache.get(sp);
  if (hit) return hit;
  const found: SubprogramChains = { chains: new Map(), replaced: new Map() };
  const producer = wiring(sp);
  sp.nodes.forEach((n, k) => {
    if (n.kind !== 'op' || n.descriptor.name !== 'DIVIDE' || n.params.length !== 1) return;
    const chain = softmaxAt(producer, n) ?? normalizeAt(producer, n);
    if (!chain) return;
    found.chains.set(k, chain);
    for (const j of chain.skip) found.replaced.set(j, chain.kind);
  });
  chainCache.set(sp, found);
  return found;
}

const ofKind = (sp: SubprogramPlan, kind: FusedChain['kind']) => new Map([...fusedChains(sp).chains].filter(([, c]) => c.kind === kind));

/** The layer-norm normalisations of a subprogram, by the node index of their DIVIDE. */
export const normalizeChains = (sp: SubprogramPlan): Map<number, FusedChain> => ofKind(sp, 'normalize');

/** The causal-softmax chains of a subprogram, by the node index of their DIVIDE. */
export const softmaxChains = (sp: SubprogramPlan): Map<number, FusedChain> => ofKind(sp, 'causal-softmax');
