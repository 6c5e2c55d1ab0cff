import { Rng, type Seed } from '@primer-search/core';
import { initialValues, project, type PrimitiveRegistry, type TF, type Tensor } from '@primer-search/primitives';
import type { Variable as TfVariable } from '@tensorflow/tfjs-core';
import { planBlock, type BlockPlan, type BlockSize, type CallNode, type OpNode, type PlanLimits, type SubprogramPlan } from './plan.js';

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
  dispose(): void;
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
}

/** A CONV_1X1 of one branch: output = input @ kernel. */
const isDense = (n: OpNode) => n.descriptor.name === 'CONV_1X1' && n.params.length === 1 && n.params[0]!.length === 1;

/**
 * The fused projections of a call: for each caller state that two or more dense ops of its
 * branches read (as the branch's h0 or h1), one product with the kernels concatenated,
 * split back into each op's output. Returns the precomputed outputs per branch.
 */
function fusedProjections(tf: TF, node: CallNode, states: Tensor[], params: (name: string) => Tensor): Array<Map<OpNode, Tensor>> {
  const groups = new Map<number, Array<{ branch: number; op: OpNode }>>();
  node.branches.forEach((b, branch) => {
    for (const op of b.nodes) {
      if (op.kind !== 'op' || !isDense(op) || op.inputs[0]! >= b.inputCount) continue;
      const source = node.args[op.inputs[0]!];
      groups.set(source, [...(groups.get(source) ?? []), { branch, op }]);
    }
  });
  const out = node.branches.map(() => new Map<OpNode, Tensor>());
  for (const [source, members] of groups) {
    if (members.length < 2) continue;
    const kernels = members.map((m) => params(m.op.params[0]![0]!.name));
    const all = project(tf, states[source]!, tf.concat(kernels, 1));
    const parts = tf.split(all, members.map((m) => m.op.shape.outWidth), 2);
    members.forEach((m, i) => out[m.branch]!.set(m.op, parts[i]!));
  }
  return out;
}

/** Runs a planned block on `x` with the given parameter tensors. */
export function runBlock(tf: TF, plan: BlockPlan, params: (name: string) => Tensor, x: Tensor, options: RunOptions = {}): Tensor {
  const batch = x.shape[0] as number;
  const fuse = options.fuseProjections ?? true;
  const run = (sp: SubprogramPlan, inputs: Tensor[], precomputed?: Map<OpNode, Tensor>): Tensor => {
    const states: Tensor[] = [...inputs];
    for (const node of sp.nodes) {
      let outs: Tensor[];
      if (node.kind === 'op') {
        const ready = precomputed?.get(node);
        outs = ready
          ? [ready]
          : node.params.map((ps) =>
              node.descriptor.apply(
                tf,
                node.inputs.map((k) => states[k]!),
                ps.map((p) => params(p.name)),
                { ...node.shape, batch },
              ),
            );
      } else {
        const pre = fuse ? fusedProjections(tf, node, states, params) : undefined;
        outs = node.branches.map((b, i) => run(b, [states[node.args[0]]!, states[node.args[1]]!].slice(0, b.inputCount), pre?.[i]));
      }
      states[node.state] = outs.length === 1 ? outs[0]! : tf.concat(outs, 2);
    }
    return states[sp.output]!;
  };
  return run(plan.root, [x]);
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
      tf.variable(tf.tensor(values.get(p.name)!, p.spec.shape), options.trainable ?? true),
    );
  }
  return {
    plan,
    variables,
    apply: (x) => runBlock(tf, plan, (name) => variables.get(name)!, x, options),
    dispose: () => {
      for (const v of variables.values()) v.dispose();
      variables.clear();
    },
  };
}
