import { Rng } from '@primer-search/core';
import { createPrimitiveRegistry, definePrimitive } from '@primer-search/primitives';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { vanilla, vanillaJson } from './__fixtures__/vanilla.js';
import { dnaHash } from './canonical.js';
import { DnaValidationError, MutationError } from './errors.js';
import { MUTATION_KINDS, applyRandomMutation, mutateDna, randomInstruction } from './mutate.js';
import { inputCount, type Dna } from './types.js';
import { validateDna } from './validate.js';

const only = (kind: (typeof MUTATION_KINDS)[number]) =>
  Object.fromEntries(MUTATION_KINDS.map((k) => [k, k === kind ? 1 : 0]));

const structurallySound = (d: Dna) =>
  d.subprograms.every((s, si) =>
    s.instructions.every(
      (i, k) =>
        i.input1 < inputCount(si) + k &&
        i.input2 < inputCount(si) + k &&
        i.constant < d.bank.constants.length &&
        i.dimSize < d.bank.dimSizes.length &&
        (i.op !== 'CALL' || (i.target > si && i.target < d.subprograms.length)),
    ),
  );

describe('mutations', () => {
  it('are deterministic under a seed', () => {
    const a = mutateDna(vanilla(), Rng.create(11));
    const b = mutateDna(vanilla(), Rng.create(11));
    expect(a.child).toEqual(b.child);
    expect(a.mutations).toEqual(b.mutations);
    expect(mutateDna(vanilla(), Rng.create(12)).childHash).not.toBe(a.childHash);
  });

  it('never return a child that computes the same program as its parent, and leave the parent alone', () => {
    const parent = vanilla();
    const before = JSON.stringify(parent);
    const rng = Rng.create(5);
    for (let i = 0; i < 200; i++) {
      const r = mutateDna(parent, rng);
      expect(r.childHash).not.toBe(r.parentHash);
      expect(dnaHash(r.child)).toBe(r.childHash);
    }
    expect(JSON.stringify(parent)).toBe(before);
  });

  it('stack mutations when one leaves the program unchanged', () => {
    // Swapping two independent instructions (e.g. the Q and K projections) changes nothing.
    const rng = Rng.create(3);
    let stacked = 0;
    for (let i = 0; i < 200; i++) {
      const r = mutateDna(vanilla(), rng, { weights: only('swap') });
      if (r.mutations.length > 1) stacked++;
    }
    expect(stacked).toBeGreaterThan(0);
  });

  for (const kind of MUTATION_KINDS) {
    it(`${kind}: applies, keeps every index in range, and says what it did`, () => {
      const rng = Rng.create(kind);
      for (let i = 0; i < 100; i++) {
        const { dna, mutation } = applyRandomMutation(vanilla(), rng, { weights: only(kind) });
        expect(mutation.kind).toBe(kind);
        expect(mutation.description.length).toBeGreaterThan(10);
        expect(structurallySound(dna)).toBe(true);
        const count = dna.subprograms.reduce((a, s) => a + s.instructions.length, 0);
        const expected = kind === 'delete' ? 36 : kind === 'insert' ? 38 : 37;
        expect(count).toBe(expected);
      }
    });
  }

  it('insert wires the new instruction into the dataflow', () => {
    const rng = Rng.create(9);
    for (let i = 0; i < 50; i++) {
      const r = mutateDna(vanilla(), rng, { weights: only('insert') });
      expect(r.mutations).toHaveLength(1); // live at once: never needs a second mutation
    }
  });

  it('change-bank perturbs constants as v * 10^X + Y and picks widths from the paper list', () => {
    const rng = Rng.create(2);
    const seen = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const { dna, mutation } = applyRandomMutation(vanilla(), rng, { weights: only('change-bank') });
      seen.add(mutation.field!.split('[')[0]!);
      for (const d of dna.bank.dimSizes) expect([1, 2, 4, 8, 12, 16, 24, 32, 48, 64]).toContain(d);
      expect(dna.bank.constants.every(Number.isFinite)).toBe(true);
    }
    expect(seen).toEqual(new Set(['constants', 'dimSizes']));
  });

  it('requireValid returns only valid children', () => {
    const rng = Rng.create(4);
    for (let i = 0; i < 100; i++) {
      const r = mutateDna(vanilla(), rng, { requireValid: true });
      expect(r.valid).toBe(true);
      expect(validateDna(r.child).ok).toBe(true);
    }
  });

  it('sample instructions over the registered vocabulary, plugins included', () => {
    const registry = createPrimitiveRegistry();
    const gelu = definePrimitive({
      ...registry.get('TANH'),
      name: 'MY_GELU',
      doc: 'a plugin op for this test',
    });
    registry.register('MY_GELU', gelu);
    const rng = Rng.create(1);
    const ops = new Set<string>();
    for (let i = 0; i < 3000; i++) ops.add(randomInstruction(vanilla(), 1, 0, rng, registry).op);
    expect(ops).toEqual(new Set([...registry.names(), 'CALL']));
    // the last subprogram cannot call anything
    for (let i = 0; i < 300; i++) expect(randomInstruction(vanilla(), 6, 1, rng, registry).op).not.toBe('CALL');
  });

  it('give up with a typed error when no mutation can change the program', () => {
    const tiny: Dna = {
      format: 'primer-dna',
      version: 1,
      bank: { constants: [1], dimSizes: [8] },
      subprograms: [{ instructions: [{ op: 'SIN', input1: 0, input2: 0, constant: 0, dimSize: 0, target: 0, branching: 1 }] }],
    };
    expect(() => mutateDna(tiny, Rng.create(1), { weights: only('swap') })).toThrow(MutationError);
  });
});

describe('property: seeded mutation chains from a valid DNA', () => {
  it('always yield a DNA that validates or is rejected with a typed error, never a crash', () => {
    let valid = 0;
    let invalid = 0;
    const chains = 150;
    const steps = 20;
    for (let seed = 0; seed < chains; seed++) {
      const rng = Rng.create(seed);
      let dna = vanilla();
      for (let step = 0; step < steps; step++) {
        const r = mutateDna(dna, rng);
        expect(structurallySound(r.child)).toBe(true);
        const check = validateDna(JSON.parse(JSON.stringify(r.child)));
        expect(check.ok).toBe(r.valid);
        if (check.ok) {
          valid++;
          // a mutation changes the program: the child's canonical hash is its own
          expect(r.childHash).not.toBe(r.parentHash);
          expect(r.childHash).toBe(dnaHash(check.dna));
        } else {
          expect(check.error).toBeInstanceOf(DnaValidationError);
          expect(check.error.issues.length).toBeGreaterThan(0);
          // each problem is located: the subprogram at least
          for (const issue of check.error.issues) expect(issue.subprogram, issue.message).toBeTypeOf('number');
          invalid++;
        }
        // walk on from valid children, as a search would
        if (r.valid) dna = r.child;
      }
    }
    // Both outcomes occur: the property is not vacuous.
    expect(valid).toBeGreaterThan(chains * steps * 0.3);
    expect(invalid).toBeGreaterThan(0);
  });

  it('arbitrary edits of a DNA file never crash the validator', () => {
    const paths: Array<(d: any) => [any, string | number]> = [
      (d) => [d, 'bank'],
      (d) => [d.bank, 'constants'],
      (d) => [d.bank.dimSizes, 0],
      (d) => [d.subprograms, 1],
      (d) => [d.subprograms[2], 'instructions'],
      (d) => [d.subprograms[2].instructions, 3],
      (d) => [d.subprograms[2].instructions[3], 'op'],
      (d) => [d.subprograms[2].instructions[3], 'input1'],
      (d) => [d.subprograms[0].instructions[0], 'target'],
      (d) => [d.subprograms[1].instructions[0], 'branching'],
      (d) => [d, 'format'],
    ];
    fc.assert(
      fc.property(fc.integer({ min: 0, max: paths.length - 1 }), fc.anything(), (p, value) => {
        const d = vanillaJson();
        const [obj, key] = paths[p]!(d);
        obj[key] = value;
        const r = validateDna(d);
        if (!r.ok) expect(r.error).toBeInstanceOf(DnaValidationError);
      }),
      { numRuns: 2000, seed: 42 },
    );
  });
});
