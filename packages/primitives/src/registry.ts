import { createRegistry, type Registry } from '@primer-search/core';
import type { PrimitiveDescriptor } from './descriptor.js';
import { convolutionPrimitives } from './ops/convolution.js';
import { elementwisePrimitives } from './ops/elementwise.js';
import { matrixPrimitives } from './ops/matrix.js';
import { reductionPrimitives } from './ops/reductions.js';
import { sequencePrimitives } from './ops/sequence.js';

/** The paper's vocabulary, in the order of primer-paper.md §1. */
export const builtinPrimitives: readonly PrimitiveDescriptor[] = [
  ...elementwisePrimitives,
  ...reductionPrimitives,
  ...matrixPrimitives,
  ...convolutionPrimitives,
  ...sequencePrimitives,
];

export type BuiltinPrimitiveName =
  | 'ADD' | 'DIFFERENCE' | 'MULTIPLY' | 'DIVIDE' | 'MAX' | 'MIN'
  | 'ABS_ROOT' | 'SQUARE' | 'EXP' | 'LOG' | 'ABS' | 'RECIP' | 'SIGN' | 'COS' | 'SIN' | 'TANH' | 'SIGMOID'
  | 'C_MUL' | 'SCALE' | 'SHIFT'
  | 'RED_MEAN' | 'RED_SUM' | 'RED_MIN' | 'RED_MAX' | 'RED_PROD'
  | 'MAT_MUL' | 'T_MAT_MUL'
  | 'CONV_1X1' | 'CONV_3X1' | 'CONV_7X1' | 'CONV_15X1' | 'CONV_31X1'
  | 'DCONV_3X1' | 'DCONV_7X1' | 'DCONV_15X1' | 'DCONV_31X1'
  | 'MASK' | 'CUM_SUM' | 'CUM_PROD';

export type PrimitiveRegistry = Registry<BuiltinPrimitiveName, PrimitiveDescriptor>;

/** Reserved: the op name DNA uses for a call to another subprogram. */
export const CALL_OP = 'CALL';

const NAME = /^[A-Za-z][A-Za-z0-9_]*$/;
const FUNCTIONS = ['outputWidth', 'parameters', 'flops', 'apply', 'code'] as const;

function checkDescriptor(name: string, d: PrimitiveDescriptor): string | undefined {
  if (!d || typeof d !== 'object') return 'the entry must be a primitive descriptor object';
  if (d.specificationVersion !== 1) return `specificationVersion must be 1, got ${String(d.specificationVersion)}`;
  if (d.name !== name) return `the descriptor's name "${String(d.name)}" differs from the registered name`;
  if (!NAME.test(name)) return 'names are letters, digits and underscores, starting with a letter';
  if (name === CALL_OP) return `"${CALL_OP}" is reserved for subprogram calls`;
  if (typeof d.doc !== 'string' || d.doc.trim().length < 4) return 'doc must say in one line what the op computes';
  if (d.arity !== 1 && d.arity !== 2) return `arity must be 1 or 2, got ${String(d.arity)}`;
  if (!d.reads || typeof d.reads.constant !== 'boolean' || typeof d.reads.dimSize !== 'boolean') {
    return 'reads must be { constant: boolean, dimSize: boolean }';
  }
  if (d.sequenceMixing !== 'none' && d.sequenceMixing !== 'causal') return "sequenceMixing must be 'none' or 'causal'";
  for (const f of FUNCTIONS) if (typeof d[f] !== 'function') return `${f} must be a function`;
  return undefined;
}

/** A fresh primitive registry holding the built-in vocabulary (for isolated use, e.g. tests). */
export function createPrimitiveRegistry(options: { builtins?: boolean } = {}): PrimitiveRegistry {
  const registry = createRegistry<BuiltinPrimitiveName, PrimitiveDescriptor>('primitive', { validate: checkDescriptor });
  if (options.builtins !== false) for (const d of builtinPrimitives) registry.register(d.name, d);
  return registry;
}

/**
 * The shared registry every package reads by default. Plugins add their ops here:
 * `primitives.register('GELU', definePrimitive({...}))`.
 */
export const primitives: PrimitiveRegistry = createPrimitiveRegistry();
