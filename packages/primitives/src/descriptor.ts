import type * as tfc from '@tensorflow/tfjs-core';
import type { Width } from './width.js';

/** The TensorFlow.js namespace an implementation runs on (injected, so this package never imports tfjs at run time). */
export type TF = typeof tfc;
export type Tensor = tfc.Tensor;

/** Instruction fields an op may read besides its hidden-state inputs. */
export type ArgField = 'input1' | 'input2' | 'constant' | 'dimSize';

export type PrimitiveCategory =
  | 'binary'
  | 'unary'
  | 'scalar'
  | 'reduction'
  | 'matrix'
  | 'projection'
  | 'convolution'
  | 'sequence';

/** How an initial value is drawn. Pure data: the compiler turns it into numbers with a seeded RNG. */
export type InitSpec =
  | { kind: 'constant'; value: number }
  /** Uniform in ±sqrt(6 / (fanIn + fanOut)). */
  | { kind: 'glorot-uniform'; fanIn: number; fanOut: number }
  | { kind: 'normal'; mean: number; std: number }
  /** Row `i` of the first axis is filled with `rows[i]` (e.g. a per-lag conv kernel). */
  | { kind: 'rows'; rows: number[] };

export interface ParamSpec {
  /** Unique within the op, e.g. `kernel`. */
  name: string;
  shape: number[];
  init: InitSpec;
}

/** Concrete sizes one call of an op sees (one branch). */
export interface CallShape {
  batch: number;
  seqLen: number;
  /** Concrete widths of the inputs the op reads (input1, then input2 if binary). */
  inWidths: number[];
  /** Concrete output width. */
  outWidth: number;
  /** Concrete width selected by `dimSize` (bank value × unit), for ops that read it. */
  dimSize: number;
  /** The bank constant, for ops that read it. */
  constant: number;
}

/** What `applyLanes` sees: one lane's shape, and how many lanes are stacked. */
export interface LanesShape extends CallShape {
  lanes: number;
}

export type WidthRule =
  | { width: Width }
  | { error: string; field: ArgField };

export interface PrimitiveDescriptor {
  /** Contract version of this descriptor, so the contract can evolve without breaking plugins. */
  specificationVersion: 1;
  name: string;
  /** One line: exactly what the op computes, including its numerically safe form. */
  doc: string;
  category: PrimitiveCategory;
  /** Number of hidden-state inputs: input1, or input1 and input2. */
  arity: 1 | 2;
  /** Which non-input fields of an instruction it reads. */
  reads: { constant: boolean; dimSize: boolean };
  /**
   * `causal` when the op mixes sequence positions (it then guarantees that output
   * position t depends only on input positions <= t); `none` when it works on each
   * position alone.
   */
  sequenceMixing: 'none' | 'causal';
  /** Output width from input widths (symbolic), or an error naming the field at fault. */
  outputWidth(inputs: readonly Width[], args: { dimSize: number }): WidthRule;
  /** Trainable parameters one call (one branch) creates. */
  parameters(shape: CallShape): ParamSpec[];
  /** Forward FLOPs of one call (one branch); a multiply-add counts 2. */
  flops(shape: CallShape): number;
  /**
   * The TensorFlow.js implementation. Inputs are `[batch, seq, width]`; parameters come in
   * the order of `parameters()`. Must return `[batch, seq, shape.outWidth]`.
   */
  apply(tf: TF, inputs: Tensor[], params: Tensor[], shape: CallShape): Tensor;
  /**
   * Optional: `shape.lanes` independent calls at once, each with its own parameters (the
   * branches of a call, e.g. the heads of attention, which the compiler runs as one
   * computation). Inputs are the lanes' inputs stacked along the batch axis, lane-major:
   * `[lanes * batch, seq, width]`, with `shape.batch` the batch of one lane; `params[i]` are
   * lane i's parameters. Returns the outputs stacked the same way. Without it the compiler
   * applies a parameter-free op once to the stacked inputs (so `apply` must treat each
   * sequence of the batch alone, as every op of a language model does) and an op with
   * parameters once per lane.
   */
  applyLanes?(tf: TF, inputs: Tensor[], params: Tensor[][], shape: LanesShape): Tensor;
  /** How the pretty printer shows one call, in TensorFlow.js-like code. */
  code(args: { input1: string; input2: string; constant: string; dimSize: string }): string;
  /**
   * For code generation: a TypeScript expression computing one call, using `tf` and the
   * helpers of CODEGEN_PRELUDE. Optional for plugins; without it a DNA using the op cannot
   * be exported as code.
   */
  emit?(args: EmitArgs): string;
}

export interface EmitArgs {
  /** Expressions of the inputs the op reads. */
  inputs: string[];
  /** Expressions of its parameters, in the order of `parameters()`. */
  params: string[];
  outWidth: number;
  constant: number;
}

/** Plain helper for authors: checks nothing, but gives literal types and defaults. */
export function definePrimitive(
  d: Omit<PrimitiveDescriptor, 'specificationVersion' | 'parameters' | 'reads'> &
    Partial<Pick<PrimitiveDescriptor, 'parameters' | 'reads'>>,
): PrimitiveDescriptor {
  return {
    specificationVersion: 1,
    parameters: () => [],
    reads: { constant: false, dimSize: false },
    ...d,
  };
}
