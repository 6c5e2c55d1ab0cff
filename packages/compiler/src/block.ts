import { Rng, type Seed } from '@primer-search/core';
import { initialValues, type PrimitiveRegistry, type TF, type Tensor } from '@primer-search/primitives';
import type { Variable as TfVariable } from '@tensorflow/tfjs-core';
import { planBlock, type BlockPlan, type BlockSize, type PlanLimits, type SubprogramPlan } from './plan.js';

export type Variable = TfVariable;

export interface CompileBlockOptions extends BlockSize {
  tf: TF;
  /** Seeds the initial weights. Each parameter draws from its own stream named by its path, so editing one part of a DNA leaves the others' initial weights alone. */
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
  return new Map(plan.params.map((p) => [p.name, initialValues(p.spec, Rng.create(`${String(seed)}|${p.name}`))]));
}

/** Runs a planned block on `x` with the given parameter tensors. */
export function runBlock(tf: TF, plan: BlockPlan, params: (name: string) => Tensor, x: Tensor): Tensor {
  const batch = x.shape[0] as number;
  const run = (sp: SubprogramPlan, inputs: Tensor[]): Tensor => {
    const states: Tensor[] = [...inputs];
    for (const node of sp.nodes) {
      const outs =
        node.kind === 'op'
          ? node.params.map((ps) =>
              node.descriptor.apply(
                tf,
                node.inputs.map((k) => states[k]!),
                ps.map((p) => params(p.name)),
                { ...node.shape, batch },
              ),
            )
          : node.branches.map((b) => run(b, [states[node.args[0]]!, states[node.args[1]]!].slice(0, b.inputCount)));
      states[node.state] = outs.length === 1 ? outs[0]! : tf.concat(outs, 2);
    }
    return states[sp.output]!;
  };
  return run(plan.root, [x]);
}

/** DNA -> a trainable block: variables created from the primitive descriptors (seeded), and `apply`. */
export function compileBlock(dna: unknown, options: CompileBlockOptions): CompiledBlock {
  const { tf } = options;
  const plan = planBlock(dna, options, { primitives: options.primitives, limits: options.limits });
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
    apply: (x) => runBlock(tf, plan, (name) => variables.get(name)!, x),
    dispose: () => {
      for (const v of variables.values()) v.dispose();
      variables.clear();
    },
  };
}
