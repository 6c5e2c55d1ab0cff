// A third-party primitive, written as docs/adding-a-primitive.md says, registered on the
// shared registry: it must pass the contract suite and be usable in DNA like a built-in.
import * as tfjs from '@tensorflow/tfjs';
import { Rng } from '@primer-search/core';
import { definePrimitive, primitives, type TF } from '@primer-search/primitives';
import { describePrimitiveContract } from '@primer-search/primitives/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { vanillaJson } from './__fixtures__/vanilla.js';
import { dnaHash } from './canonical.js';
import { mutateDna } from './mutate.js';
import { formatDna } from './print.js';
import { validateDna } from './validate.js';

tfjs.env().set('PROD', true);
await tfjs.setBackend('cpu');
const tf = tfjs as unknown as TF;

const GELU = definePrimitive({
  name: 'GELU',
  doc: 'x * Φ(x), tanh approximation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).',
  category: 'unary',
  arity: 1,
  sequenceMixing: 'none',
  outputWidth: ([w]) => ({ width: w! }),
  flops: (s) => 8 * s.batch * s.seqLen * s.outWidth,
  apply: (tf, [x]) =>
    tf.tidy(() => {
      const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x!, tf.mul(0.044715, tf.pow(x!, 3))));
      return tf.mul(tf.mul(0.5, x!), tf.add(1, tf.tanh(inner)));
    }),
  code: ({ input1 }) => `gelu(${input1})`,
});

primitives.register('GELU', GELU);
afterAll(() => primitives.unregister('GELU'));

describePrimitiveContract(GELU, { tf });

describe('a plugin primitive', () => {
  it('computes what its doc says', () => {
    const x = [-2, -0.5, 0, 0.5, 2];
    const got = tf.tidy(() => Array.from(GELU.apply(tf, [tf.tensor3d(x, [1, 5, 1])], [], { batch: 1, seqLen: 5, inWidths: [1], outWidth: 1, dimSize: 0, constant: 0 }).dataSync()));
    const want = x.map((v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
    got.forEach((g, i) => expect(g).toBeCloseTo(want[i]!, 5));
  });

  it('is usable in a DNA: validates, hashes, prints, and is drawn by mutations', () => {
    const dna = vanillaJson();
    // Transformer+GELU: replace the ReLU subprogram's body with the plugin op
    dna.subprograms[6].instructions = [{ op: 'GELU' }];
    const r = validateDna(dna);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(formatDna(r.dna)).toContain('const h2 = gelu(h0);');
    const seed = validateDna(vanillaJson());
    expect(seed.ok && dnaHash(seed.dna) !== dnaHash(r.dna)).toBe(true);
    const rng = Rng.create(3);
    let drawn = false;
    for (let i = 0; i < 400 && !drawn; i++) {
      drawn = mutateDna(r.dna, rng, { weights: { 'delete-insert': 1, insert: 1, 'change-field': 0, delete: 0, swap: 0, 'change-bank': 0 } })
        .mutations.some((m) => m.description.includes('GELU') && !m.description.includes('GELU ->'));
    }
    expect(drawn).toBe(true);
  });
});
