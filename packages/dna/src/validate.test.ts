import { formatWidth, width } from '@primer-search/primitives';
import { describe, expect, it } from 'vitest';
import { callChain, fanOut, ins, program } from './__fixtures__/large-programs.js';
import { vanilla, vanillaJson } from './__fixtures__/vanilla.js';
import { DnaParseError, DnaValidationError } from './errors.js';
import { parseDna, validateDna } from './validate.js';

const invalid = (value: unknown) => {
  const r = validateDna(value);
  if (r.ok) throw new Error('expected an invalid DNA');
  expect(r.error).toBeInstanceOf(DnaValidationError);
  return r.error;
};

describe('validateDna', () => {
  it('accepts the vanilla seed, fills defaults and infers every shape', () => {
    const r = validateDna(vanillaJson());
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.dna).toEqual(vanilla());
    const main = r.analysis.shapes!;
    expect(main.states.map((w) => formatWidth(w!))).toEqual(['8u', '8u', '8u', '8u', '8u', '8u', '8u']);
    const head = main.calls.get(1)!.calls.get(0)!;
    expect(head.subprogram).toBe(2);
    expect(head.states.slice(2).map((w) => formatWidth(w!))).toEqual(['2u', '2u', '2u', 'seq', 'seq', 'seq', '2u']);
    // 4 branches of a 2u head make 8u
    expect(main.calls.get(1)!.states[2]).toEqual(width.units(8));
    expect(r.analysis.used).toEqual([true, true, true, true, true, true, true]);
  });

  it('names the subprogram, instruction and field of an unknown op, with close matches', () => {
    const dna = vanillaJson();
    dna.subprograms[2].instructions[3].op = 'T_MATMUL';
    const e = invalid(dna);
    expect(e.issues[0]).toMatchObject({ subprogram: 2, instruction: 3, field: 'op' });
    expect(e.message).toBe(
      'invalid DNA: subprogram 2 (attention_head), instruction 3, field op: unknown op "T_MATMUL" (did you mean T_MAT_MUL?); see `primer primitives`',
    );
  });

  it('rejects an input index out of range', () => {
    const dna = vanillaJson();
    dna.subprograms[0].instructions[2].input2 = 9;
    expect(invalid(dna).message).toBe(
      'invalid DNA: subprogram 0 (main), instruction 2, field input2: h9 does not exist here: instruction 2 can read h0..h2',
    );
  });

  it('rejects a call to a lower-numbered subprogram, or to none', () => {
    const dna = vanillaJson();
    dna.subprograms[4].instructions[2].target = 1;
    expect(invalid(dna).message).toContain(
      'subprogram 4 (feed_forward), instruction 2, field target: CALL may only call a subprogram numbered above 4, got 1',
    );
    dna.subprograms[4].instructions[2].target = 4;
    expect(invalid(dna).message).toContain('numbered above 4, got 4');
    dna.subprograms[4].instructions[2].target = 7;
    expect(invalid(dna).message).toContain('CALL target 7 does not exist (subprograms are 0..6)');
  });

  it('rejects bank indices out of range', () => {
    const dna = vanillaJson();
    dna.subprograms[2].instructions[4].constant = 5;
    dna.subprograms[2].instructions[0].dimSize = 3;
    const e = invalid(dna);
    expect(e.issues.map((i) => [i.subprogram, i.instruction, i.field])).toEqual([
      [2, 0, 'dimSize'],
      [2, 4, 'constant'],
    ]);
    expect(e.message).toContain('bank constant 5 does not exist (the bank has 2)');
  });

  it('rejects wrong shapes, naming the call path that led there', () => {
    const dna = vanillaJson();
    // MAT_MUL reads the values (2u) as if they were attention scores
    dna.subprograms[2].instructions[6].input1 = 4;
    const e = invalid(dna);
    expect(e.issues).toHaveLength(1);
    expect(e.message).toBe(
      'invalid DNA: subprogram 2 (attention_head), instruction 6, field input1: MAT_MUL needs input1 of shape [batch, seq, seq] (attention scores), got width 2u ' +
        '(called from subprogram 0 (main) h2 -> subprogram 1 (multi_head_attention) h2)',
    );
  });

  it('requires main to return the block shape', () => {
    const dna = vanillaJson();
    // (a wider MHA output would not do: ADD(h0, h2) takes h0's width)
    dna.subprograms[0].instructions.push({ op: 'CONV_1X1', input1: 6, dimSize: 2 }); // project to 32u
    expect(invalid(dna).message).toContain(
      "subprogram 0 (main), instruction 6: main must return the block input's shape [batch, seq, 8u], but its last instruction returns [batch, seq, 32u]",
    );
  });

  it('ignores shape errors in dead code', () => {
    const dna = vanillaJson();
    dna.subprograms[0].instructions.splice(5, 0, { op: 'MASK', input1: 3 });
    // h6 = MASK(h3) would be a shape error, but nothing reads it: the output is ADD(h3, h5)
    const r = validateDna(dna);
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.analysis.live[0]).toEqual([true, true, true, true, true, false, true]);
  });

  it('rejects empty programs and schema violations with the path at fault', () => {
    const empty = vanillaJson();
    empty.subprograms[0].instructions = [];
    expect(invalid(empty).message).toBe(
      'invalid DNA: subprogram 0 (main), field instructions: a subprogram needs at least one instruction',
    );
    expect(invalid({ ...vanillaJson(), subprograms: [] }).message).toContain('a DNA needs at least subprogram 0 (main)');
    expect(invalid({ ...vanillaJson(), version: 2 }).message).toContain('field version: this tool reads DNA version 1');

    const bad = vanillaJson();
    bad.subprograms[3].instructions[1].branching = 3;
    bad.subprograms[3].instructions[2].input1 = -1;
    bad.subprograms[3].instructions[2].colour = 'red';
    const e = invalid(bad);
    expect(e.issues.map((i) => [i.subprogram, i.instruction, i.field])).toEqual([
      [3, 1, 'branching'],
      [3, 2, 'input1'],
      [3, 2, undefined],
    ]);
    expect(e.message).toContain('subprogram 3 (causal_softmax), instruction 1, field branching: branching must be one of 1, 2, 4, 8, 16');
    expect(e.message).toContain('unknown field "colour"');
    expect(invalid(null).message).toContain('invalid DNA');
    expect(invalid('vanilla').message).toContain('invalid DNA');
  });

  it('gives every JSON error a line and column, and names what is wrong without quoting the file', () => {
    const cases: Array<[string, number, number]> = [
      ['{\n  "format": "primer-dna",\n  "version": +1\n}', 3, 14],
      ['{\n  "a": 1,\n}', 3, 1],
      ['{"a": tru}', 1, 7],
      ["{'a': 1}", 1, 2],
      ['{"a": 1} x', 1, 10],
      ['', 1, 1],
      ['{"a": 1 // note\n}', 1, 9],
    ];
    for (const [text, line, column] of cases) {
      let err: unknown;
      try {
        parseDna(text, { source: 'f.json' });
      } catch (e) {
        err = e;
      }
      expect(err, text).toBeInstanceOf(DnaParseError);
      expect([(err as DnaParseError).line, (err as DnaParseError).column], text).toEqual([line, column]);
      expect((err as Error).message).not.toContain('is not valid JSON');
    }
  });

  it('cuts and escapes user strings in messages, and names a missing field', () => {
    const long = vanillaJson() as { subprograms: Array<{ name?: string; instructions: Array<Record<string, unknown>> }> };
    long.subprograms[1]!.instructions[0]!.op = `${'X'.repeat(100_000)}\u202e\u0000`;
    long.subprograms[1]!.name = 'evil\u202ename\u0000';
    const m = invalid(long).message;
    expect(m.length).toBeLessThan(300);
    expect(m).not.toMatch(/[\u0000\u202e]/);
    expect(m).toContain('subprogram 1 (evil\\u202ename\\u0000)');
    expect(m).toContain('(100,002 characters)');
    const missing = vanillaJson() as { subprograms: Array<{ instructions: Array<Record<string, unknown>> }> };
    delete missing.subprograms[0]!.instructions[0]!.op;
    expect(invalid(missing).message).toContain('subprogram 0 (main), instruction 0, field op: missing field op');
  });

  it('accepts a UTF-8 byte-order mark', () => {
    expect(parseDna(`\uFEFF${JSON.stringify(vanillaJson())}`).dna).toEqual(vanilla());
  });

  it('reports bad JSON with its line and column', () => {
    const text = '{\n  "format": "primer-dna",\n  "version": 1,\n  "bank": { "constants": [1] ,, }\n}';
    let err: unknown;
    try {
      parseDna(text, { source: 'bad.json' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DnaParseError);
    expect((err as DnaParseError).line).toBe(4);
    expect((err as DnaParseError).message).toMatch(/^bad\.json:4:\d+: not valid JSON: /);
    expect(() => parseDna('{"format": "primer-dna"', { source: 'cut.json' })).toThrow(/^cut\.json:1:\d+: not valid JSON/);
  });
});

describe('program size limits (DNA_LIMITS)', () => {
  const chainOfCalls = callChain;
  const dna = program;

  it('accept a small fan-out and count its instances without building them', () => {
    const r = validateDna(fanOut(2, 4));
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.analysis.size).toMatchObject({ callDepth: 4, instances: 1 + 1 + 4 + 16, operations: 1 * 1 + 4 * 1 + 16 });
  });

  it('refuse a fan-out of 16^6 instances in milliseconds, with the size it would have', () => {
    const t0 = performance.now();
    const e = invalid(fanOut(6, 16));
    // counted, not enumerated: enumerating would take minutes (a guard, with room for a busy machine)
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(e.message).toContain('too many subprogram instances (calls times branching): 17,895,698, over the limit of 4,096 (DNA_LIMITS)');
  });

  it('refuse long chains of instructions or calls, naming the limit, at any stack size', () => {
    const tanh = dna([{ instructions: Array.from({ length: 10_000 }, (_, i) => ins('TANH', { input1: i })) }]);
    expect(invalid(tanh).message).toContain('too many instructions: 10,000, over the limit of 4,096');
    for (const n of [1_501, 2_001, 8_001, 100_000]) {
      expect(invalid(chainOfCalls(n)).message).toContain(`too many subprograms: ${n.toLocaleString('en-US')}, over the limit of 256`);
    }
    // within the subprogram limit, a call chain deeper than the limit is refused before any recursive pass
    expect(invalid(chainOfCalls(200)).message).toContain('nests calls too deeply (call depth): 200, over the limit of 32');
    expect(validateDna(chainOfCalls(32)).ok).toBe(true);
  });
});
