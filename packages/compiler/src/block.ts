import { Rng, type Seed } from '@primer-search/core';
import { initialValues, project, type PrimitiveRegistry, type TF, type Tensor } from '@primer-search/primitives';
import type { Variable as TfVariable } from '@tensorflow/tfjs-core';
import { fusedCausalSoftmax, fusedChains, fusedNormalize, hasFusedNormalize, hasFusedSoftmax, type FusedChain } from './fusion.js';
import { CompileError, planBlock, type BlockPlan, type BlockSize, type CallNode, type OpNode, type PlanLimits, type PlannedParam, type SubprogramPlan } from './plan.js';

export type Variable = TfVariable;

export interface CompileBlockOptions extends BlockSize, RunOptions {
  tf: TF;
  /** Seeds the initial weights. Each parameter draws from its own stream, named by what its instruction computes (`PlannedParam.stream`). */
  seed: Seed;
  primitives?: PrimitiveRegistry;
  limits?: PlanLimits;
  trainable?: boolean;
}

export interface CompiledBlock {
  plan: BlockPlan;
  /** Trainable variables by parameter name (without the prefix). */
  variables: Map<string, Variable>;
  /** `[batch, seq, dModel]` -> `[batch, seq, dModel]`. */
  apply(x: Tensor): Tensor;
  /**
   * Replace one live instruction of the main subprogram in later `apply` calls (`Ablation`), or
   * none (undefined): for measuring what a trained program's parts carry (`primer ablate`).
   */
  setAblation(ablation: Ablation | undefined): void;
  dispose(): void;
}

/**
 * One live instruction of the main subprogram (its index among `plan.root.nodes`) replaced by its
 * first input (`identity`; only where the widths agree) or by zeros of its output's shape.
 */
export interface Ablation {
  node: number;
  mode: 'identity' | 'zeros';
}

/** Why a node of the main subprogram cannot be replaced by its input: its input's width differs from its output's (undefined: it can). */
export function identityRefusal(plan: BlockPlan, node: number): string | undefined {
  const n = plan.root.nodes[node];
  if (!n) return `the main subprogram has no live instruction ${node}`;
  const input = n.kind === 'op' ? n.inputs[0] : n.args[0];
  const width = (state: number | undefined): number | undefined => {
    if (state === undefined) return undefined;
    if (state < plan.root.inputCount) return plan.size.dModel;
    const from = plan.root.nodes.find((m) => m.state === state);
    return from ? outWidth(from) : undefined;
  };
  const a = n.kind === 'op' ? n.shape.inWidths[0] : width(input);
  const b = outWidth(n);
  return a === b ? undefined : `its input is ${a ?? '?'} wide and its output ${b}`;
}

/** The width of a node's output (a call's: its branches' outputs side by side). */
function outWidth(n: OpNode | CallNode): number {
  if (n.kind === 'op') return n.shape.outWidth * n.params.length || n.shape.outWidth;
  const b = n.branches[0]!;
  const last = b.nodes.find((m) => m.state === b.output);
  return (last ? outWidth(last) : 0) * n.branches.length;
}

/** Initial values of a planned block's parameters, drawn exactly as `compileBlock` draws them. */
export function initialBlockValues(plan: BlockPlan, seed: Seed): Map<string, Float32Array> {
  return new Map(plan.params.map((p) => [p.name, initialValues(p.spec, Rng.create(`${String(seed)}|${p.stream}`))]));
}

export interface RunOptions {
  /**
   * Compute the dense projections (CONV_1X1) that the branches of one call apply to the same
   * input as one matrix product with their kernels side by side, instead of one product each
   * (e.g. the Q, K and V projections of every attention head). The same arithmetic, in fewer
   * and larger products, which is faster on every backend. Default true.
   */
  fuseProjections?: boolean;
  /**
   * Run the branches of a call (e.g. the heads of attention) as one computation: their inputs
   * stacked along the batch axis, so each parameter-free op of the callee (scores, scaling,
   * the softmax, the value product) runs once for all branches instead of once per branch,
   * and each op with parameters once with every branch's parameters (`applyLanes`). The same
   * arithmetic in fewer kernel calls. Default true.
   */
  stackBranches?: boolean;
  /**
   * Run recognised chains of primitives as one fused kernel where the backend registers it
   * (`fusion.ts`; today the causal softmax: MASK, RED_MAX, DIFFERENCE, EXP, RED_SUM, DIVIDE; and
   * layer norm's normalisation: RED_MEAN, DIFFERENCE, SQUARE, RED_MEAN, ABS_ROOT, DIVIDE).
   * The same function; elsewhere, or with this off, the chain runs op by op. Default true.
   */
  fuseKernels?: boolean;
  /** Replace one instruction of the main subprogram (`Ablation`); its fused chains then run op by op. */
  ablate?: Ablation;
}

/** A CONV_1X1 of one branch: output = input @ kernel. */
const isDense = (n: OpNode) => n.descriptor.name === 'CONV_1X1' && n.params.length === 1 && n.params[0]!.length === 1;

/** `[batch, seq, lanes * w]` (lanes side by side) -> `[lanes * batch, seq, w]` (stacked lane-major). */
function stackLanes(tf: TF, x: Tensor, lanes: number): Tensor {
  if (lanes === 1) return x;
  const [b, s, all] = x.shape as [number, number, number];
  const w = all / lanes;
  return tf.reshape(tf.transpose(tf.reshape(x, [b, s, lanes, w]), [2, 0, 1, 3]), [lanes * b, s, w]);
}

/** The inverse of `stackLanes`: lane i's features at [i * w, (i + 1) * w). */
function unstackLanes(tf: TF, x: Tensor, lanes: number): Tensor {
  if (lanes === 1) return x;
  const [all, s, w] = x.shape as [number, number, number];
  const b = all / lanes;
  return tf.reshape(tf.transpose(tf.reshape(x, [lanes, b, s, w]), [1, 2, 0, 3]), [b, s, lanes * w]);
}

/**
 * Runs a planned block on `x` with the given parameter tensors.
 *
 * A subprogram runs for `lanes`: instantiations of one plan (the same nodes, each with its own
 * parameters), with their states stacked lane-major along the batch axis. The root is one
 * lane; a call with B branches runs its callee for B lanes per lane of the caller (or, with
 * `stackBranches` off, once per branch).
 */
export function runBlock(tf: TF, plan: BlockPlan, params: (name: string) => Tensor, x: Tensor, options: RunOptions = {}): Tensor {
  const batch = x.shape[0] as number;
  const fuse = options.fuseProjections ?? true;
  const stack = options.stackBranches ?? true;
  const fuseKernels = options.fuseKernels ?? true;
  // which fused chains this backend runs (the kernels are looked up once per call)
  const fusedKinds = new Set<FusedChain['kind']>(fuseKernels ? [...(hasFusedSoftmax(tf) ? ['causal-softmax' as const] : []), ...(hasFusedNormalize(tf) ? ['normalize' as const] : [])] : []);
  const fusedKernel = { 'causal-softmax': fusedCausalSoftmax, normalize: fusedNormalize };

  const applyOp = (node: OpNode, laneParams: PlannedParam[][], states: Tensor[]): Tensor => {
    const d = node.descriptor;
    const inputs = node.inputs.map((k) => states[k]!);
    const shape = { ...node.shape, batch };
    const ps = laneParams.map((lane) => lane.map((p) => params(p.name)));
    const lanes = ps.length;
    if (lanes === 1) return d.apply(tf, inputs, ps[0]!, shape);
    if (d.applyLanes) return d.applyLanes(tf, inputs, ps, { ...shape, lanes });
    if (ps[0]!.length === 0) return d.apply(tf, inputs, [], { ...shape, batch: lanes * batch });
    const parts = inputs.map((t) => tf.split(t, lanes, 0));
    return tf.concat(ps.map((p, i) => d.apply(tf, parts.map((part) => part[i]!), p, shape)), 0);
  };

  /**
   * The fused projections of a call made from one lane: for each caller state that two or
   * more dense ops of its branches read (as the branch's h0 or h1), one product with the
   * kernels concatenated, split back per node (stacked over the branches) or, unstacked, per
   * branch and node.
   */
  const projections = (node: CallNode, states: Tensor[]): Array<Map<number, Tensor>> => {
    const branches = node.branches;
    const groups = new Map<number, number[]>();
    branches[0]!.nodes.forEach((op, k) => {
      if (op.kind !== 'op' || !isDense(op) || op.inputs[0]! >= branches[0]!.inputCount) return;
      const source = node.args[op.inputs[0]!];
      groups.set(source, [...(groups.get(source) ?? []), k]);
    });
    const perLane = stack ? [new Map<number, Tensor>()] : branches.map(() => new Map<number, Tensor>());
    const B = branches.length;
    for (const [source, ks] of groups) {
      if (ks.length * B < 2) continue;
      const width = (k: number) => (branches[0]!.nodes[k] as OpNode).shape.outWidth;
      const kernel = (k: number, j: number) => params((branches[j]!.nodes[k] as OpNode).params[0]![0]!.name);
      if (stack) {
        // node-major, then branch: each node's part holds its branches side by side
        const all = project(tf, states[source]!, tf.concat(ks.flatMap((k) => branches.map((_, j) => kernel(k, j))), 1));
        // (a one-way split has no gradient in tfjs 4.22)
        const parts = ks.length === 1 ? [all] : tf.split(all, ks.map((k) => B * width(k)), 2);
        ks.forEach((k, i) => perLane[0]!.set(k, stackLanes(tf, parts[i]!, B)));
      } else {
        const all = project(tf, states[source]!, tf.concat(branches.flatMap((_, j) => ks.map((k) => kernel(k, j))), 1));
        const parts = tf.split(all, branches.flatMap(() => ks.map(width)), 2);
        branches.forEach((_, j) => ks.forEach((k, i) => perLane[j]!.set(k, parts[j * ks.length + i]!)));
      }
    }
    return perLane;
  };

  /** Which inputs of a subprogram some node reads itself (not through a precomputed projection). */
  const readInputs = (sp: SubprogramPlan, pre?: Map<number, Tensor>): Set<number> => {
    const read = new Set<number>();
    sp.nodes.forEach((n, k) => {
      if (n.kind === 'call') n.args.slice(0, n.branches[0]!.inputCount).forEach((a) => read.add(a));
      else if (!pre?.has(k)) n.inputs.forEach((a) => read.add(a));
    });
    return read;
  };

  const callLanes = (calls: CallNode[], states: Tensor[]): Tensor => {
    const node = calls[0]!;
    const B = node.branches.length;
    const callee = node.branches[0]!;
    const args = [states[node.args[0]]!, states[node.args[1]]!].slice(0, callee.inputCount);
    if (!stack) {
      // one lane (stacking off): each branch on its own
      const pre = fuse ? projections(node, states) : undefined;
      const outs = node.branches.map((b, j) => run([b], args, pre?.[j]));
      return outs.length === 1 ? outs[0]! : tf.concat(outs, 2);
    }
    const pre = fuse && calls.length === 1 ? projections(node, states)[0] : undefined;
    const read = readInputs(callee, pre);
    // branch-major, then the caller's lane: the B copies of the caller's stacked states
    const lanes = node.branches.flatMap((_, j) => calls.map((c) => c.branches[j]!));
    const inputs = args.map((a, i) => (!read.has(i) || B === 1 ? a : tf.concat(new Array<Tensor>(B).fill(a), 0)));
    return unstackLanes(tf, run(lanes, inputs, pre), B);
  };

  const run = (lanes: SubprogramPlan[], inputs: Tensor[], pre?: Map<number, Tensor>): Tensor => {
    const first = lanes[0]!;
    const states: Tensor[] = [...inputs];
    const ablated = options.ablate && first === plan.root ? options.ablate : undefined;
    const fused = fusedKinds.size > 0 && !ablated ? fusedChains(first) : undefined;
    first.nodes.forEach((node, k) => {
      const replacedBy = fused?.replaced.get(k);
      if (replacedBy && fusedKinds.has(replacedBy)) return;
      let out: Tensor;
      const chain = fused?.chains.get(k);
      if (chain && fusedKinds.has(chain.kind)) out = fusedKernel[chain.kind](tf, states[chain.input]!);
      else if (node.kind === 'op') {
        const ready = pre?.get(k);
        const outs = ready
          ? [ready]
          : node.params.map((_, r) => applyOp(node, lanes.map((l) => (l.nodes[k] as OpNode).params[r]!), states));
        out = outs.length === 1 ? outs[0]! : tf.concat(outs, 2);
      } else {
        out = callLanes(lanes.map((l) => l.nodes[k] as CallNode), states);
      }
      if (ablated?.node === k) out = ablated.mode === 'zeros' ? tf.zerosLike(out) : states[node.kind === 'op' ? node.inputs[0]! : node.args[0]]!;
      states[node.state] = out;
    });
    return states[first.output]!;
  };
  return run([plan.root], [x]);
}

const isPlan = (x: unknown): x is BlockPlan => typeof x === 'object' && x !== null && 'root' in x && 'params' in x && 'analysis' in x;

/**
 * DNA (or a plan of one at these sizes) -> a trainable block: variables created from the
 * primitive descriptors (seeded), and `apply`.
 */
export function compileBlock(dna: unknown, options: CompileBlockOptions): CompiledBlock {
  const { tf } = options;
  const plan = isPlan(dna) && dna.size.dModel === options.dModel && dna.size.seqLen === options.seqLen
    ? dna
    : planBlock(dna, options, { primitives: options.primitives, limits: options.limits });
  const values = initialBlockValues(plan, options.seed);
  const variables = new Map<string, Variable>();
  for (const p of plan.params) {
    variables.set(
      p.name,
      // tfjs variable names are process-wide, so they are left to tfjs; our names are the map's keys.
      // (inside tidy: the variable takes its own reference, so the initial tensor is disposed, not leaked)
      tf.tidy(() => tf.variable(tf.tensor(values.get(p.name)!, p.spec.shape), options.trainable ?? true)),
    );
  }
  let ablation: Ablation | undefined;
  return {
    plan,
    variables,
    apply: (x) => runBlock(tf, plan, (name) => variables.get(name)!, x, ablation ? { ...options, ablate: ablation } : options),
    setAblation: (a) => {
      if (a && a.mode === 'identity') {
        const why = identityRefusal(plan, a.node);
        if (why) throw new CompileError('BAD_ABLATION', `instruction ${a.node} of the main subprogram cannot be replaced by its input: ${why}`);
      }
      if (a && !plan.root.nodes[a.node]) throw new CompileError('BAD_ABLATION', `the main subprogram has no live instruction ${a.node}`);
      ablation = a;
    },
    dispose: () => {
      for (const v of variables.values()) v.dispose();
      variables.clear();
    },
  };
}
