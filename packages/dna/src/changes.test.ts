import { describe, expect, it } from 'vitest';
import { vanilla } from './__fixtures__/vanilla.js';
import { dnaChanges } from './changes.js';
import { dnaHash } from './canonical.js';
import type { Dna, Instruction } from './types.js';

const ins = (over: Partial<Instruction>): Instruction => ({ op: 'ADD', input1: 0, input2: 0, constant: 0, dimSize: 0, target: 0, branching: 1, ...over });

/**
 * Vanilla (main 0, attention 1-3, feed-forward 4, layer norm 5, ReLU 6; bank c0 = 0.5 the ReLU's
 * scale, c1 = 1/sqrt(32) the attention logits') changed as a search might: attention's call
 * replaced by a causal convolution, the ReLU's scale raised, and changes that do not matter:
 * the attention head (no longer called) rewritten, its logits' scale changed, a dead instruction
 * in the feed-forward.
 */
function winner(): Dna {
  const w = vanilla();
  w.subprograms[0]!.instructions[1] = ins({ op: 'CONV_15X1', input1: 1, dimSize: 1 });
  w.subprograms[2]!.instructions[3] = ins({ op: 'MAX', input1: 2, input2: 3 });
  w.bank.constants[1] = 0.05;
  w.bank.constants[0] = 2;
  w.subprograms[4]!.instructions.splice(4, 0, ins({ op: 'SQUARE', input1: 2 }));
  w.subprograms[4]!.instructions[5]!.input1 = 5;
  return w;
}

describe('dnaChanges', () => {
  it("lists the changes the winner's function uses, and makes each alone, inserted into the base and removed from the winner", () => {
    const base = vanilla();
    const w = winner();
    const c = dnaChanges(base, w);
    expect([c.baseHash, c.winnerHash]).toEqual([dnaHash(base), dnaHash(w)]);
    // attention's code and its logits' scale are unused by the winner: not changes; the dead instruction changes nothing either way
    expect(c.changes.map((x) => [x.slug, x.label])).toEqual([
      ['sub0-main', 'subprogram 0 (main)'],
      ['c0', 'bank constant c0: 0.5 -> 2'],
    ]);
    // the winner aligned: the same function, its unused parts the base's
    expect(dnaHash(c.aligned)).toBe(c.winnerHash);
    expect(c.aligned.subprograms[2]).toEqual(base.subprograms[2]);
    expect(c.aligned.bank.constants).toEqual([2, base.bank.constants[1]]);

    const [main, scale] = c.changes;
    // inserting the convolution into vanilla: vanilla with that call replaced, built here by hand
    const convolved = vanilla();
    convolved.subprograms[0]!.instructions[1] = ins({ op: 'CONV_15X1', input1: 1, dimSize: 1 });
    expect([main!.inserted.valid, main!.inserted.hash]).toEqual([true, dnaHash(convolved)]);
    // removing it from the winner brings back vanilla's attention, not the rewritten head nor its scale: vanilla with the ReLU's scale raised,
    // which is also inserting the scale into vanilla
    const scaled = vanilla();
    scaled.bank.constants[0] = 2;
    expect(main!.removed.hash).toBe(dnaHash(scaled));
    expect(scale!.inserted.hash).toBe(dnaHash(scaled));
    expect(main!.removed.dna.bank.constants[1]).toBe(base.bank.constants[1]);
    // and removing the scale from the winner is inserting the convolution into vanilla
    expect(scale!.removed.hash).toBe(dnaHash(convolved));
  });

  it('finds no change between a program and itself, and refuses programs of different layouts or invalid ones, saying why', () => {
    expect(dnaChanges(vanilla(), vanilla()).changes).toEqual([]);
    // the same program with its defaults left out of the JSON: no change
    const sparse = vanilla() as unknown as { subprograms: Array<{ instructions: Array<Record<string, unknown>> }> };
    for (const sub of sparse.subprograms) for (const i of sub.instructions) for (const [k, v] of Object.entries(i)) if (k !== 'op' && (v === 0 || (k === 'branching' && v === 1))) delete i[k];
    expect(dnaChanges(vanilla(), sparse as unknown as Dna).changes).toEqual([]);
    const fewer = vanilla();
    fewer.bank.constants.push(3);
    expect(() => dnaChanges(vanilla(), fewer)).toThrow(/differ in layout \(7 subprograms, 2 bank constants and 3 dim sizes against 7 subprograms, 3 bank constants and 3 dim sizes\)/);
    const broken = vanilla();
    broken.subprograms[0]!.instructions[1]!.op = 'NOT_AN_OP';
    expect(() => dnaChanges(vanilla(), broken)).toThrow(/the winner is not a valid program: .*unknown op/);
  });

  it('reports a change that is not a valid program alone, with the reason', () => {
    // the winner's softmax masks its second argument, which its caller now passes the logits as: each change is invalid without the other
    const w = vanilla();
    w.subprograms[2]!.instructions[5]!.input2 = 6;
    w.subprograms[3]!.instructions[0]!.input1 = 1;
    const c = dnaChanges(vanilla(), w);
    expect(c.changes.map((x) => x.slug)).toEqual(['sub2-attention_head', 'sub3-causal_softmax']);
    const [caller, softmax] = c.changes;
    // passing the logits to a softmax that does not read them changes nothing in vanilla; taking them away from the winner's breaks it
    expect([caller!.inserted.valid, caller!.inserted.hash]).toEqual([true, c.baseHash]);
    expect(caller!.removed.valid).toBe(false);
    expect(softmax!.inserted.valid).toBe(false);
    expect(softmax!.inserted.error).toMatch(/^subprogram 3 \(causal_softmax\), instruction 0.*MASK/);
    expect(softmax!.removed).toMatchObject({ valid: true, hash: c.baseHash });
  });
});
