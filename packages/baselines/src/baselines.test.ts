import { readFileSync } from 'node:fs';
import * as tfjs from '@tensorflow/tfjs';
import { compileBlock, type CompiledBlock } from '@primer-search/compiler';
import { dnaHash, validateDna } from '@primer-search/dna';
import type { TF, Tensor } from '@primer-search/primitives';
import { describe, expect, it } from 'vitest';
import { baselineDna, baselines, builtinBaselines } from './baselines.js';
import { baselineWeights, geluBlock, primerBlock, primerEzBlock, transformerPlusPlusBlock, transformerPlusPlusWeights, vanillaBlock } from './references/index.js';

tfjs.env().set('PROD', true);
await tfjs.setBackend('cpu');
const tf = tfjs as unknown as TF;

const D = 32;
const SEQ = 7;
const HEADS = 4;

const references: Record<string, (block: CompiledBlock, x: Tensor, scale: number) => Tensor> = {
  vanilla: (b, x, scale) => vanillaBlock(tf, x, baselineWeights(b, 'vanilla', HEADS), { scale }),
  gelu: (b, x, scale) => geluBlock(tf, x, baselineWeights(b, 'gelu', HEADS), { scale }),
  'primer-ez': (b, x, scale) => primerEzBlock(tf, x, baselineWeights(b, 'primer-ez', HEADS), { scale }),
  primer: (b, x, scale) => primerBlock(tf, x, baselineWeights(b, 'primer', HEADS), { scale }),
  'transformer++': (b, x, scale) => transformerPlusPlusBlock(tf, x, transformerPlusPlusWeights(b, HEADS), { scale }),
};

describe('baselines as DNA', () => {
  it('registers the paper\'s five baselines', () => {
    expect(baselines.names()).toEqual(['vanilla', 'gelu', 'transformer++', 'primer-ez', 'primer']);
    expect(() => baselines.get('primer_ez')).toThrow(/Did you mean "primer-ez"/);
  });

  for (const b of builtinBaselines) {
    it(`${b.name}: is a valid DNA`, () => {
      const r = validateDna(JSON.parse(JSON.stringify(b.build({ dModel: 128 }))));
      expect(r.ok, r.ok ? '' : r.error.message).toBe(true);
    });
  }

  it('vanilla computes the same program as the hand-written seed of the dna tests', () => {
    const handWritten = JSON.parse(readFileSync(new URL('../../dna/src/__fixtures__/vanilla.dna.json', import.meta.url), 'utf8'));
    const r = validateDna(handWritten);
    expect(r.ok && dnaHash(r.dna)).toBe(dnaHash(baselineDna('vanilla', { dModel: 128 })));
  });

  it('match parameter counts the way the paper sets them up', () => {
    const count = (name: string) => {
      const block = compileBlock(baselineDna(name, { dModel: 64 }), { tf, dModel: 64, seqLen: 4, seed: 0 });
      const n = block.plan.estimate.parameters;
      block.dispose();
      return n;
    };
    const vanilla = count('vanilla');
    expect(count('gelu')).toBe(vanilla);
    // Primer-EZ adds three 3-tap depthwise kernels per head: 3 * 3 * dModel
    expect(count('primer-ez') - vanilla).toBe(9 * 64);
    // Transformer++: no biases or norm shifts, SwiGLU at 3 x dModel (24u)
    expect(count('transformer++')).toBe(vanilla - (4 * 64 + 64) - 2 * 64 + (3 * 64 * 192 - 2 * 64 * 256));
  });
});

describe('compiled baselines equal their hand-written references (identical weights, 1e-5)', () => {
  for (const b of builtinBaselines) {
    it(b.name, () => {
      const block = compileBlock(baselineDna(b.name, { dModel: D, heads: HEADS }), { tf, dModel: D, seqLen: SEQ, seed: 1 });
      // random weights everywhere, so a swapped scale/shift or Q/K cannot hide behind 1s and 0s
      let k = 0;
      for (const v of block.variables.values()) v.assign(tf.randomNormal(v.shape, 0, 0.5, 'float32', ++k) as never);
      const x = tf.randomNormal([2, SEQ, D], 0, 1, 'float32', 99);
      const scale = Math.fround(1 / Math.sqrt(D / HEADS));
      const [got, want] = tf.tidy(() => [block.apply(x).arraySync(), references[b.name]!(block, x, scale).arraySync()]) as number[][][][];
      const flatGot = got!.flat(2);
      const flatWant = want!.flat(2);
      expect(flatGot).toHaveLength(2 * SEQ * D);
      let worst = 0;
      flatGot.forEach((g, i) => (worst = Math.max(worst, Math.abs(g - flatWant[i]!) / Math.max(1, Math.abs(flatWant[i]!)))));
      expect(worst).toBeLessThan(1e-5);
      block.dispose();
      x.dispose();
    });
  }
});
