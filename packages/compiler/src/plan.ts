import { PrimerError } from '@primer-search/core';
import {
  CALL,
  assertValidDna,
  expressionKeys,
  inputCount,
  readsOf,
  type CallShapes,
  type Dna,
  type DnaAnalysis,
} from '@primer-search/dna';
import {
  MODEL_UNITS,
  concreteWidth,
  formatWidth,
  primitives as defaultPrimitives,
  type CallShape,
  type ParamSpec,
  type PrimitiveDescriptor,
  type PrimitiveRegistry,
  type WidthContext,
} from '@primer-search/primitives';

/** The sizes a block is compiled for. `unit = dModel / 8` is the width a DNA's relative sizes count in. */
export interface BlockSize {
  dModel: number;
  seqLen: number;
}

export interface PlanLimits {
  /** Refuse blocks with more trainable parameters than this. */
  maxParameters?: number;
  /** Refuse blocks whose forward activations for one sequence take more bytes than this (float32). */
  maxActivationBytesPerSequence?: number;
  /**
   * Refuse models whose training step is estimated (`estimateTrainingBytes`) to need more
   * bytes than this, when the batch is known. The wasm heap holds at most 4 GiB.
   */
  maxTrainingBytes?: number;
  /**
   * Refuse models with a tensor (a batch's state, the logits, the embedding) larger than this
   * many bytes, when the batch is known: a GPU's largest buffer binding.
   */
  maxTensorBytes?: number;
}

export const DEFAULT_LIMITS: Required<PlanLimits> = {
  maxParameters: 50_000_000,
  maxActivationBytesPerSequence: 256 * 1024 * 1024,
  maxTrainingBytes: 3.5 * 2 ** 30,
  maxTensorBytes: Infinity,
};

/** One trainable tensor of a compiled block, named by where it sits in the call tree. */
export interface PlannedParam {
  /** e.g. `h2:multi_head_attention/h2[0]:attention_head/h2:CONV_1X1.kernel` */
  name: string;
  /**
   * The random stream its initial values are drawn from: built from what the instruction
   * computes and the calls that lead to it (`expressionKeys`), never from state numbers or
   * subprogram names, so DNAs with one canonical hash start from the same weights, and an
   * edit elsewhere in the program leaves this parameter's initial values alone.
   */
  stream: string;
  spec: ParamSpec;
}

export interface OpNode {
  kind: 'op';
  state: number;
  descriptor: PrimitiveDescriptor;
  inputs: number[];
  shape: CallShape;
  /** Parameters per branch. */
  params: PlannedParam[][];
}

export interface CallNode {
  kind: 'call';
  state: number;
  /** Hidden states passed as the callee's h0 and h1 (an unread one is passed as h0's, unused). */
  args: [number, number];
  /** One instantiation per branch (each with its own parameters). */
  branches: SubprogramPlan[];
}

export interface SubprogramPlan {
  subprogram: number;
  name: string;
  /** The input widths it was planned for, e.g. "8u,1" (a subprogram may be called with several). */
  signature: string;
  inputCount: number;
  /** Live instructions only, in order. */
  nodes: Array<OpNode | CallNode>;
  output: number;
}

export interface BlockEstimate {
  parameters: number;
  /** Forward FLOPs per token of one block (a multiply-add counts 2). */
  forwardFlopsPerToken: number;
  /** Floats of forward activations per sequence (what backprop keeps), float32 bytes = 4x. */
  activationFloatsPerSequence: number;
  /**
   * What a training step holds per sequence beyond the activations' own count, measured on the
   * wasm and cpu backends (tf.profile peaks, compiler.test.ts): each activation, with the states
   * of `[seq, seq]` shape (attention scores and their products) weighed 2.5x (their backward
   * keeps gradients and temporaries as large), and a call's branches stacked as lanes (their
   * inputs concatenated and their output split, forward and backward).
   */
  trainingFloatsPerSequence: number;
  /**
   * Floats of the largest single state per sequence, a call's branches stacked as lanes (one
   * tensor `branching` times its callee's): what the largest buffer a GPU kernel binds grows with.
   */
  largestStateFloatsPerSequence: number;
  /** Floats of the largest parameter (a call's branches' stacked as one tensor). */
  largestParameterFloats: number;
}

export interface BlockPlan {
  dna: Dna;
  analysis: DnaAnalysis;
  size: BlockSize;
  unit: number;
  root: SubprogramPlan;
  params: PlannedParam[];
  estimate: BlockEstimate;
}

export class CompileError extends PrimerError {
  constructor(code: string, message: string) {
    super(code, message);
  }
}

export function checkBlockSize(size: BlockSize): number {
  const { dModel, seqLen } = size;
  if (!Number.isInteger(dModel) || dModel <= 0 || dModel % MODEL_UNITS !== 0 || dModel / MODEL_UNITS < 2) {
    throw new CompileError('BAD_SIZE', `dModel must be a positive multiple of ${MODEL_UNITS * 2} (its unit dModel/8 at least 2), got ${dModel}`);
  }
  if (!Number.isInteger(seqLen) || seqLen < 1) throw new CompileError('BAD_SIZE', `seqLen must be a positive integer, got ${seqLen}`);
  return dModel / MODEL_UNITS;
}

/** Refuses a block over `limits`, saying by how much. */
function checkLimits(estimate: BlockEstimate, size: BlockSize, limits: Required<PlanLimits>): void {
  if (estimate.parameters > limits.maxParameters) {
    throw new CompileError(
      'MODEL_TOO_LARGE',
      `the block has ${estimate.parameters.toLocaleString('en-US')} parameters at dModel ${size.dModel}, over the limit of ${limits.maxParameters.toLocaleString('en-US')}`,
    );
  }
  const bytes = estimate.activationFloatsPerSequence * 4;
  if (bytes > limits.maxActivationBytesPerSequence) {
    throw new CompileError(
      'MODEL_TOO_LARGE',
      `the block's activations take ${(bytes / 2 ** 20).toFixed(1)} MiB per sequence at dModel ${size.dModel}, seqLen ${size.seqLen}, over the limit of ${(limits.maxActivationBytesPerSequence / 2 ** 20).toFixed(1)} MiB`,
    );
  }
}

/**
 * Shape inference and instantiation plan for a DNA at a given size, before any tensor
 * exists: every live instruction of every call site and branch, its concrete shapes and
 * parameters, and the block's parameter count, FLOPs and activation memory. Refuses
 * blocks beyond `limits` with a CompileError that says by how much.
 */
export function planBlock(
  dnaInput: unknown,
  size: BlockSize,
  options: { primitives?: PrimitiveRegistry; limits?: PlanLimits } = {},
): BlockPlan {
  const registry = options.primitives ?? defaultPrimitives;
  const unit = checkBlockSize(size);
  const { dna, analysis } = assertValidDna(dnaInput, { primitives: registry });
  const ctx: WidthContext = { unit, seqLen: size.seqLen };
  const exprs = expressionKeys(dna, analysis, { primitives: registry });

  const nameOf = (s: number) => dna.subprograms[s]!.name?.replace(/[^A-Za-z0-9_]+/g, '_') || `sub${s}`;

  /** The concrete shape of live op instruction i of one call signature, for one branch. */
  const opShape = (shapes: CallShapes, i: number) => {
    const ins = dna.subprograms[shapes.subprogram]!.instructions[i]!;
    const d = registry.get(ins.op);
    const r = readsOf(ins, d, undefined);
    const inputs = d.arity === 2 ? [ins.input1, ins.input2] : [ins.input1];
    const out = shapes.states[inputCount(shapes.subprogram) + i]!;
    const shape: CallShape = {
      batch: 1,
      seqLen: size.seqLen,
      inWidths: inputs.map((k) => concreteWidth(shapes.states[k]!, ctx)),
      outWidth: concreteWidth(out, ctx) / ins.branching,
      dimSize: r.dimSize ? dna.bank.dimSizes[ins.dimSize]! * unit : 0,
      constant: r.constant ? dna.bank.constants[ins.constant]! : 0,
    };
    return { d, inputs, shape };
  };

  // Count first, per call signature and bottom-up (DNA_LIMITS bounds the depth), so a block
  // over the limits is refused before a single instance is built.
  const totals = new Map<CallShapes, BlockEstimate>();
  const measure = (shapes: CallShapes): BlockEstimate => {
    const hit = totals.get(shapes);
    if (hit) return hit;
    const t: BlockEstimate = { parameters: 0, forwardFlopsPerToken: 0, activationFloatsPerSequence: 0, trainingFloatsPerSequence: 0, largestStateFloatsPerSequence: 0, largestParameterFloats: 0 };
    const s = shapes.subprogram;
    const floats = (state: number) => concreteWidth(shapes.states[state]!, ctx) * size.seqLen;
    // how many live instructions read each state: each reader's backward makes a gradient of its size
    const readers = new Map<number, number>();
    dna.subprograms[s]!.instructions.forEach((ins, i) => {
      if (!analysis.live[s]![i]) return;
      const d = ins.op === CALL ? undefined : registry.get(ins.op);
      const reads = ins.op === CALL ? [ins.input1, ins.input2].slice(0, inputCount(ins.target)) : d!.arity === 2 ? [ins.input1, ins.input2] : [ins.input1];
      // (a call's second argument may be one its callee never reads, unchecked: only states that exist count)
      for (const k of reads) if (shapes.states[k]) readers.set(k, (readers.get(k) ?? 0) + 1);
    });
    dna.subprograms[s]!.instructions.forEach((ins, i) => {
      if (!analysis.live[s]![i]) return;
      const state = inputCount(s) + i;
      t.activationFloatsPerSequence += floats(state);
      t.largestStateFloatsPerSequence = Math.max(t.largestStateFloatsPerSequence, floats(state));
      const op = ins.op === CALL ? undefined : opShape(shapes, i);
      const params = op ? op.d.parameters(op.shape) : [];
      // a product's or a projection's output, or a [seq, seq] state: its backward makes temporaries as large again
      const heavy = shapes.states[state]!.seq > 0 || ins.op === 'MAT_MUL' || ins.op === 'T_MAT_MUL' || params.length > 0;
      t.trainingFloatsPerSequence += floats(state) * (Math.max(1, readers.get(state) ?? 0) + (heavy ? 1 : 0));
      if (!op) {
        const c = measure(shapes.calls.get(i)!);
        t.parameters += ins.branching * c.parameters;
        t.forwardFlopsPerToken += ins.branching * c.forwardFlopsPerToken;
        t.activationFloatsPerSequence += ins.branching * c.activationFloatsPerSequence;
        t.trainingFloatsPerSequence += ins.branching * c.trainingFloatsPerSequence;
        t.largestStateFloatsPerSequence = Math.max(t.largestStateFloatsPerSequence, ins.branching * c.largestStateFloatsPerSequence);
        t.largestParameterFloats = Math.max(t.largestParameterFloats, ins.branching * c.largestParameterFloats);
        // the branches' inputs stacked (concatenated) and the output split back, each way
        if (ins.branching > 1) {
          const args = [ins.input1, ins.input2].slice(0, inputCount(ins.target)).filter((k) => shapes.states[k]);
          t.trainingFloatsPerSequence += 2 * (args.reduce((a, k) => a + floats(k), 0) * ins.branching + floats(state));
        }
        return;
      }
      t.forwardFlopsPerToken += (op.d.flops(op.shape) * ins.branching) / size.seqLen;
      t.parameters += ins.branching * params.reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0);
      for (const p of params) t.largestParameterFloats = Math.max(t.largestParameterFloats, ins.branching * p.shape.reduce((x, y) => x * y, 1));
    });
    totals.set(shapes, t);
    return t;
  };
  const estimate = { ...measure(analysis.shapes!) };
  checkLimits(estimate, size, { ...DEFAULT_LIMITS, ...options.limits });

  const params: PlannedParam[] = [];
  const build = (shapes: CallShapes, path: string, stream: string): SubprogramPlan => {
    const s = shapes.subprogram;
    const nIn = inputCount(s);
    const instructions = dna.subprograms[s]!.instructions;
    const nodes: Array<OpNode | CallNode> = [];
    instructions.forEach((ins, i) => {
      if (!analysis.live[s]![i]) return;
      const state = nIn + i;
      const tag = (b: number) => `${path}h${state}${ins.branching > 1 ? `[${b}]` : ''}`;
      const here = (b: number) => `${stream}/${exprs.keys[s]![state]}#${exprs.occurrence[s]![i]}${ins.branching > 1 ? `[${b}]` : ''}`;
      if (ins.op === CALL) {
        const callee = shapes.calls.get(i)!;
        const reads = analysis.readsInput[ins.target]!;
        nodes.push({
          kind: 'call',
          state,
          args: [reads[0] ? ins.input1 : 0, reads[1] ? ins.input2 : reads[0] ? ins.input1 : 0],
          branches: Array.from({ length: ins.branching }, (_, b) => build(callee, `${tag(b)}:${nameOf(ins.target)}/`, here(b))),
        });
        return;
      }
      const { d, inputs, shape } = opShape(shapes, i);
      const perBranch = Array.from({ length: ins.branching }, (_, b) =>
        d.parameters(shape).map((spec) => {
          const p = { name: `${tag(b)}:${ins.op}.${spec.name}`, stream: `${here(b)}.${spec.name}`, spec };
          params.push(p);
          return p;
        }),
      );
      nodes.push({ kind: 'op', state, descriptor: d, inputs, shape, params: perBranch });
    });
    return {
      subprogram: s,
      name: nameOf(s),
      signature: shapes.inputs.map(formatWidth).join(','),
      inputCount: nIn,
      nodes,
      output: nIn + instructions.length - 1,
    };
  };

  const root = build(analysis.shapes!, '', 'block');
  return { dna, analysis, size, unit, root, params, estimate };
}
