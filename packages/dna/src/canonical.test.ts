import { describe, expect, it } from 'vitest';
import { vanilla } from './__fixtures__/vanilla.js';
import { canonicalDna, dnaHash, stableDnaJson } from './canonical.js';
import { DnaValidationError } from './errors.js';
import { validateDna } from './validate.js';
import type { Dna, Instruction } from './types.js';

const ins = (op: string, fields: Partial<Instruction> = {}): Instruction => ({
  op, input1: 0, input2: 0, constant: 0, dimSize: 0, target: 0, branching: 1, ...fields,
});
const base = dnaHash(vanilla());
const edited = (edit: (d: Dna) => void) => {
  const d = vanilla();
  edit(d);
  return d;
};

describe('canonical form and hash', () => {
  it('is stable: a fixed hex digest of the canonical JSON, equal for equal DNAs', () => {
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    expect(dnaHash(vanilla())).toBe(base);
  });

  it('ignores dead instructions', () => {
    const d = edited((d) => {
      d.subprograms[0]!.instructions.splice(2, 0, ins('TANH', { input1: 1 })); // h3 = tanh(h1), read by nobody
      // keep later readers pointing at the same instructions
      for (const i of d.subprograms[0]!.instructions.slice(3)) {
        if (i.input1 >= 3) i.input1++;
        if (i.input2 >= 3) i.input2++;
      }
    });
    expect(validateDna(d).ok).toBe(true);
    expect(dnaHash(d)).toBe(base);
  });

  it('ignores arguments an op does not read', () => {
    const d = edited((d) => {
      const relu = d.subprograms[6]!.instructions;
      relu[0]!.input2 = 0; // ABS reads no input2
      relu[0]!.constant = 1; // nor a constant
      relu[0]!.dimSize = 2; // nor a width
      relu[0]!.target = 3; // nor a target
      d.subprograms[2]!.instructions[5]!.input2 = 5; // softmax reads only h0: input2 of its call is unused
    });
    expect(dnaHash(d)).toBe(base);
  });

  it('ignores names, unused subprograms and unused or duplicated bank entries', () => {
    const d = edited((d) => {
      d.name = 'renamed';
      d.subprograms[3]!.name = 'soft';
      d.subprograms.push({ name: 'never called', instructions: [ins('SIN')] });
      d.bank.constants.push(3.14, 0.5); // unused, and a duplicate of c0
      d.bank.dimSizes.unshift(64); // shifts every dimSize index
      for (const s of d.subprograms) for (const i of s.instructions) i.dimSize += 1;
      d.subprograms[6]!.instructions[2]!.constant = 3; // the duplicate 0.5
    });
    expect(validateDna(d).ok).toBe(true);
    expect(dnaHash(d)).toBe(base);
  });

  it('ignores how subprograms are numbered', () => {
    // Swap relu (6) and layer_norm (5): both are leaves, so calls still go upwards.
    const d = edited((d) => {
      [d.subprograms[5], d.subprograms[6]] = [d.subprograms[6]!, d.subprograms[5]!];
      for (const s of d.subprograms) {
        for (const i of s.instructions) if (i.op === 'CALL') i.target = i.target === 5 ? 6 : i.target === 6 ? 5 : i.target;
      }
    });
    expect(validateDna(d).ok).toBe(true);
    expect(dnaHash(d)).toBe(base);
  });

  it('changes when the computation changes', () => {
    const variants = [
      edited((d) => (d.subprograms[6]!.instructions[1]!.op = 'MULTIPLY')),
      edited((d) => (d.subprograms[1]!.instructions[0]!.branching = 8)),
      edited((d) => (d.bank.constants[1] = 0.2)),
      edited((d) => (d.bank.dimSizes[2] = 24)),
      edited((d) => (d.subprograms[0]!.instructions[2]!.input2 = 1)),
      edited((d) => (d.subprograms[0]!.instructions[3]!.target = 6)),
    ];
    const hashes = variants.map((v) => dnaHash(v));
    expect(new Set([base, ...hashes]).size).toBe(variants.length + 1);
  });

  it('is itself a valid DNA, and canonicalising twice changes nothing', () => {
    const c = canonicalDna(vanilla());
    expect(validateDna(c).ok).toBe(true);
    expect(stableDnaJson(canonicalDna(c))).toBe(stableDnaJson(c));
    expect(c.subprograms).toHaveLength(7);
    // callers first, in the order MAIN reaches them: main, feed_forward, relu, multi_head_attention, ...
    expect(c.bank).toEqual({ constants: [0.5, Math.fround(1 / Math.sqrt(32))], dimSizes: [32, 8, 2] });
  });

  it('keeps a shape-invalid program hashable, but refuses a structurally broken one', () => {
    const shapeBad = edited((d) => (d.subprograms[2]!.instructions[6]!.input1 = 4));
    expect(validateDna(shapeBad).ok).toBe(false);
    expect(dnaHash(shapeBad)).not.toBe(base);
    const broken = edited((d) => (d.subprograms[0]!.instructions[0]!.op = 'NOPE'));
    expect(() => dnaHash(broken)).toThrow(DnaValidationError);
  });
});
