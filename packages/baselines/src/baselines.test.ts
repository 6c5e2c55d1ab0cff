import { readFileSync } from 'node:fs';
import * as tfjs from '@tensorflow/tfjs';
import { compileBlock, type CompiledBlock } from '@primer-search/compiler';
import { dnaHash, validateDna } from '@primer-search/dna';
import type { TF, Tensor } from '@primer-search/primitives';
import { describe, expect, it } from 'vitest';
import { baselineDna, baselines, builtinBaselines } from './baselines.js';
import { geluBlock, primerBlock, primerEzBlock, transformerPlusPlusBlock, vanillaBlock, type VanillaWeights } from './references/index.js';
import type { AttentionWeights, FeedForwardWeights, NormWeights } from './references/common.js';

tfjs.env().set('PROD', true);
await tfjs.setBackend('cpu');
const tf = tfjs as unknown as TF;

const D = 32;
const SEQ = 7;
const HEADS = 4;

/** Parameters of `op` directly under `prefix` (one call level), in state order. */
function params(block: CompiledBlock, prefix: string, op: string): Tensor[] {
  const re = new RegExp(`^${prefix.replace(/[[\]+]/g, '\\$&')}h(\\d+)(\\[\\d+\\])?:${op}\\.`);
  return [...block.variables]
    .filter(([name]) => re.test(name))
    .sort(([a], [b]) => Number(re.exec(a)![1]) - Number(re.exec(b)![1]))
    .map(([, v]) => v);
}

function normWeights(block: CompiledBlock, prefix: string): NormWeights {
  const [scale] = params(block, prefix, 'SCALE');
  const [shift] = params(block, prefix, 'SHIFT');
  return { scale: scale!, shift };
}

function attentionWeights(block: CompiledBlock, prefix: string, o: { sharedQk: boolean }): AttentionWeights {
  const heads = Array.from({ length: HEADS }, (_, i) => {
    const head = `${prefix}h2[${i}]:attention_head/`;
    const proj = params(block, head, 'CONV_1X1');
    const conv = params(block, head, 'DCONV_3X1');
    // state order: shared Q/K writes K (and its dconv) first, then Q from K, then V
    const [q, k, v] = o.sharedQk ? [proj[1]!, proj[0]!, proj[2]!] : [proj[0]!, proj[1]!, proj[2]!];
    const [qConv, kConv, vConv] = o.sharedQk ? [undefined, conv[0], conv[1]] : [conv[0], conv[1], conv[2]];
    return { q, k, v, qConv, kConv, vConv };
  });
  const [out] = params(block, prefix, 'CONV_1X1');
  return { heads, out: out! };
}

function ffnWeights(block: CompiledBlock, prefix: string): FeedForwardWeights {
  const [w1, w2] = params(block, prefix, 'CONV_1X1');
  const [b1, b2] = params(block, prefix, 'SHIFT');
  return { w1: w1!, w2: w2!, b1, b2 };
}

function vanillaLayout(block: CompiledBlock, norm: string, o: { sharedQk: boolean; postFfn?: boolean }): VanillaWeights {
  // pre-norm: h1 = norm(x), h2 = attention, h4 = norm(a), h5 = ffn; Primer: h4 = ffn(a), h6 = norm(a + ffn)
  return {
    norm1: normWeights(block, `h1:${norm}/`),
    attention: attentionWeights(block, 'h2:multi_head_attention/', o),
    norm2: normWeights(block, o.postFfn ? `h6:${norm}/` : `h4:${norm}/`),
    ffn: ffnWeights(block, o.postFfn ? 'h4:feed_forward/' : 'h5:feed_forward/'),
  };
}

const references: Record<string, (block: CompiledBlock, x: Tensor, scale: number) => Tensor> = {
  vanilla: (b, x, scale) => vanillaBlock(tf, x, vanillaLayout(b, 'layer_norm', { sharedQk: false }), { scale }),
  gelu: (b, x, scale) => geluBlock(tf, x, vanillaLayout(b, 'layer_norm', { sharedQk: false }), { scale }),
  'primer-ez': (b, x, scale) => primerEzBlock(tf, x, vanillaLayout(b, 'layer_norm', { sharedQk: false }), { scale }),
  primer: (b, x, scale) => primerBlock(tf, x, vanillaLayout(b, 'primer_norm', { sharedQk: true, postFfn: true }), { scale }),
  'transformer++': (b, x, scale) => {
    const [gate, up, down] = params(b, 'h5:feed_forward/', 'CONV_1X1');
    return transformerPlusPlusBlock(
      tf,
      x,
      {
        norm1: normWeights(b, 'h1:rms_norm/'),
        attention: attentionWeights(b, 'h2:multi_head_attention/', { sharedQk: false }),
        norm2: normWeights(b, 'h4:rms_norm/'),
        ffn: { gate: gate!, up: up!, down: down! },
      },
      { scale },
    );
  },
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
