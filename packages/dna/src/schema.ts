import { z } from 'zod';
import { BRANCHINGS, DNA_FORMAT, DNA_VERSION, RELATIVE_DIMS } from './types.js';

const index = (what: string) =>
  z.number().int().min(0).default(0).describe(what);

export const instructionSchema = z
  .object({
    op: z.string().min(1).describe('A registered primitive (see `primer primitives`) or CALL.'),
    input1: index('Index of an earlier hidden state of this subprogram.'),
    input2: index('Index of an earlier hidden state (read by two-input ops and by calls whose callee reads h1).'),
    constant: index('Index into bank.constants (read by ops that use a constant).'),
    dimSize: index('Index into bank.dimSizes (read by ops that choose an output width).'),
    target: index('For CALL: the subprogram called; must be numbered above the caller.'),
    branching: z
      .literal(BRANCHINGS, { error: `branching must be one of ${BRANCHINGS.join(', ')}` })
      .default(1)
      .describe('Parallel copies of the instruction (each with its own parameters), outputs concatenated on the feature axis.'),
  })
  .strict();

export const subprogramSchema = z
  .object({
    name: z.string().optional().describe('Free text for people; ignored by the hash.'),
    instructions: z.array(instructionSchema).min(1, 'a subprogram needs at least one instruction'),
  })
  .strict();

export const dnaSchema = z
  .object({
    $schema: z.string().optional(),
    format: z.literal(DNA_FORMAT, { error: `format must be "${DNA_FORMAT}"` }),
    version: z.literal(DNA_VERSION, { error: `this tool reads DNA version ${DNA_VERSION}` }),
    name: z.string().optional(),
    bank: z
      .object({
        constants: z.array(z.number()).min(1, 'the bank needs at least one constant'),
        dimSizes: z
          .array(z.literal(RELATIVE_DIMS, { error: `a dimension size must be one of ${RELATIVE_DIMS.join(', ')}` }))
          .min(1, 'the bank needs at least one dimension size')
          .describe(`Relative widths, each one of ${RELATIVE_DIMS.join(', ')} (in units of dModel / 8).`),
      })
      .strict(),
    subprograms: z.array(subprogramSchema).min(1, 'a DNA needs at least subprogram 0 (main)'),
  })
  .strict()
  .describe('A Transformer block as a program of primitives (primer-search DNA).');

/** The JSON Schema of a DNA file (what `docs/dna.schema.json` holds). */
export function dnaJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(dnaSchema, { io: 'input', target: 'draft-2020-12' }) as Record<string, unknown>;
}
