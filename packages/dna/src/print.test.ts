import { describe, expect, it } from 'vitest';
import { vanilla } from './__fixtures__/vanilla.js';
import { formatDna } from './print.js';

describe('formatDna', () => {
  it('prints one line per instruction, as TensorFlow.js-like code with widths', () => {
    const d = vanilla();
    const text = formatDna(d);
    const total = d.subprograms.reduce((a, s) => a + s.instructions.length, 0);
    expect(text.match(/^ {2}const h\d+ = /gm)).toHaveLength(total);
    expect(text).toContain('function main(h0) {  // h0: [8u]');
    expect(text).toContain('const h2 = branch(4, () => attentionHead(h0));');
    expect(text).toMatch(/const h5 = causalMatMulT\(h2, h3\); +\/\/ \[seq\] T_MAT_MUL/);
    expect(text).toMatch(/const h2 = dense\(h0, 32 \* unit\); +\/\/ \[32u\] CONV_1X1/);
    expect(text).toContain('const h6 = tf.mul(h5, 0.176777);');
    expect(text.split('\n')[0]).toMatch(/^\/\/ vanilla-transformer · hash [0-9a-f]{12} · 7 subprograms, 37 instructions \(37 live\)$/);
  });

  it('shows dead instructions as comments, and can hide them', () => {
    const d = vanilla();
    d.subprograms[6]!.instructions.push({ op: 'SIN', input1: 0, input2: 0, constant: 0, dimSize: 0, target: 0, branching: 1 });
    d.subprograms[6]!.instructions.push({ op: 'C_MUL', input1: 4, input2: 0, constant: 0, dimSize: 0, target: 0, branching: 1 });
    // relu now returns h6 = C_MUL(h4): h5 = SIN(h0) is dead
    const text = formatDna(d);
    expect(text).toContain('  // dead: const h5 = tf.sin(h0);');
    expect(formatDna(d, { showDead: false })).not.toContain('tf.sin');
    expect(text).toContain('39 instructions (38 live)');
  });

  it('can print a subprogram nothing calls as its title line only', () => {
    const d = vanilla();
    // main's first CALL (the attention sublayer) becomes an identity: nothing calls the attention subprograms any more
    const callsAttention = d.subprograms[0]!.instructions.findIndex((i) => i.op === 'CALL' && d.subprograms[i.target]!.instructions.some((j) => j.op === 'CALL'));
    expect(callsAttention).toBeGreaterThanOrEqual(0);
    d.subprograms[0]!.instructions[callsAttention] = { ...d.subprograms[0]!.instructions[callsAttention]!, op: 'C_MUL', target: 0 };
    const full = formatDna(d);
    const short = formatDna(d, { showUnused: false });
    expect(full).toMatch(/\/\/ subprogram \d \(multi_head_attention\), never called\nfunction /);
    expect(short).toMatch(/\/\/ subprogram \d \(multi_head_attention\), never called\n\n/);
    expect(short).not.toContain('causalMatMulT');
    expect(short.length).toBeLessThan(full.length);
  });

  it('prints invalid DNAs too, saying why there is no hash', () => {
    const d = vanilla();
    d.subprograms[0]!.instructions[0]!.op = 'NOPE';
    const text = formatDna(d);
    expect(text).toContain('(invalid: no hash)');
    expect(text).toContain('NOPE(h0, h0) /* unknown op */');
  });
});
