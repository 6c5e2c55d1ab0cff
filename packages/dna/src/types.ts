import { escapeText } from '@primer-search/core';
/** The on-disk tag and version of a DNA file. */
export const DNA_FORMAT = 'primer-dna';
export const DNA_VERSION = 1;

/** Relative output widths an instruction may select (multiples of the base width; primer-paper.md §1). */
export const RELATIVE_DIMS = [1, 2, 4, 8, 12, 16, 24, 32, 48, 64] as const;
/** How many parallel copies an instruction may run, outputs concatenated on the feature axis. */
export const BRANCHINGS = [1, 2, 4, 8, 16] as const;
export type Branching = (typeof BRANCHINGS)[number];

/**
 * The largest programs accepted, each refused with a message naming the limit. They keep
 * every pass over a DNA (validation, hashing, planning, training) fast and within the
 * stack, whatever the input: the paper's programs and the baselines are far below them
 * (vanilla: 7 subprograms, 37 instructions, call depth 4, 14 instances, 74 operations).
 */
export const DNA_LIMITS = {
  /** Subprograms in one DNA (main included). */
  subprograms: 256,
  /** Instructions in one DNA, all subprograms together. */
  instructions: 4096,
  /** Nested calls from main to the deepest live subprogram (main alone is depth 1). */
  callDepth: 32,
  /** Subprogram instances one block builds: every live call, times its branching, through the whole call tree. */
  instances: 4096,
  /** Primitive applications one block runs: every live op of every instance, times its branching. */
  operations: 16_384,
} as const;

/** The op of an instruction that calls another subprogram (named by `target`). */
export const CALL = 'CALL';

export interface Instruction {
  /** A registered primitive's name, or `CALL`. */
  op: string;
  /** Index of an earlier hidden state of this subprogram. */
  input1: number;
  /** Index of an earlier hidden state (read by two-input ops). */
  input2: number;
  /** Index into `bank.constants` (read by ops like C_MUL). */
  constant: number;
  /** Index into `bank.dimSizes` (read by projections and convolutions). */
  dimSize: number;
  /** For `CALL`: the subprogram called; must be numbered above the caller. */
  target: number;
  branching: Branching;
}

export interface Subprogram {
  /** Free text for people (ignored by the hash). */
  name?: string;
  instructions: Instruction[];
}

export interface Bank {
  constants: number[];
  /** Relative widths, each one of RELATIVE_DIMS. */
  dimSizes: number[];
}

/**
 * A Transformer block as a program. Subprogram 0 is MAIN: its hidden state h0 is the block
 * input `[batch, seq, 8u]`, and its last instruction's output (same shape) is the block
 * output. Every other subprogram starts with two hidden states, h0 = the caller's input1
 * and h1 = its input2, and returns its last instruction's output. Instruction i of a
 * subprogram with n inputs produces hidden state h(n + i).
 */
export interface Dna {
  format: typeof DNA_FORMAT;
  version: typeof DNA_VERSION;
  name?: string;
  bank: Bank;
  subprograms: Subprogram[];
}

export function inputCount(subprogram: number): number {
  return subprogram === 0 ? 1 : 2;
}

export function subprogramLabel(dna: { subprograms: ReadonlyArray<{ name?: string | undefined }> }, index: number): string {
  const name = dna.subprograms[index]?.name;
  return index === 0 ? 'subprogram 0 (main)' : name ? `subprogram ${index} (${escapeText(name, 40)})` : `subprogram ${index}`;
}
