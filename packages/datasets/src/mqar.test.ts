import { Rng } from '@primer-search/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { evaluationBatches } from './batches.js';
import { checkMqar, mqarExample, mqarQueryPositions, mqarSource, mqarTokenizer } from './mqar.js';
import { prepareData } from './prepare.js';
import { corpora } from './corpus.js';

describe('the mqar dataset', () => {
  it('examples: distinct keys per example, every query answerable from the pairs before it, tokens in range, the same for the same seed', () => {
    fc.assert(
      fc.property(fc.integer({ min: 8, max: 200 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 40 }), fc.integer(), (vocab, pairsWanted, extra, seed) => {
        const pairs = Math.min(pairsWanted, Math.floor(vocab / 2) - 1);
        const o = { vocab, pairs, length: 2 * pairs + 2 + extra };
        checkMqar(o);
        const x = mqarExample(Rng.create(`t|${seed}`), o);
        expect(x).toEqual(mqarExample(Rng.create(`t|${seed}`), o));
        const half = Math.floor(vocab / 2);
        const keys = Array.from({ length: pairs }, (_, i) => x[2 * i]!);
        expect(new Set(keys).size).toBe(pairs);
        const value = new Map(keys.map((k, i) => [k, x[2 * i + 1]!]));
        for (const k of keys) expect(k >= 1 && k < half).toBe(true);
        for (const v of value.values()) expect(v >= half && v < vocab).toBe(true);
        const positions = mqarQueryPositions(o);
        expect(positions.length).toBe(Math.floor((o.length - 2 * pairs) / 2));
        for (const p of positions) {
          // a query: a key of this example's pairs, followed by its value
          expect(value.has(x[p]!)).toBe(true);
          expect(x[p + 1]).toBe(value.get(x[p]!));
        }
        // every key is asked before any is asked twice
        const asked = positions.map((p) => x[p]!);
        expect(new Set(asked.slice(0, Math.min(pairs, asked.length))).size).toBe(Math.min(pairs, asked.length));
      }),
    );
  });

  it('a source of examples back to back, windows starting at each; evaluation windows land on examples too', () => {
    const o = { vocab: 64, pairs: 4, length: 16 };
    const s = mqarSource(o, 'validation', 20);
    expect(s.length).toBe(20 * 16 + 1);
    expect(Array.from(s.documentStarts())).toEqual(Array.from({ length: 20 }, (_, i) => i * 16));
    const batches = evaluationBatches(s, 4, 16, 8);
    for (const b of batches) {
      for (let w = 0; w < b.batch; w++) {
        const tokens = b.tokens.subarray(w * 16, (w + 1) * 16);
        const targets = b.targets.subarray(w * 16, (w + 1) * 16);
        // the window is one example: its queries' targets are their answers
        const value = new Map(Array.from({ length: 4 }, (_, i) => [tokens[2 * i]!, tokens[2 * i + 1]!]));
        for (const p of mqarQueryPositions(o)) expect(targets[p]).toBe(value.get(tokens[p]!));
      }
    }
    // train and validation differ; each is fixed
    expect(Array.from(mqarSource(o, 'train', 3).read(0, 48))).not.toEqual(Array.from(s.read(0, 48)));
    expect(Array.from(mqarSource(o, 'train', 3).read(0, 48))).toEqual(Array.from(mqarSource(o, 'train', 3).read(0, 48)));
  });

  it('refuses settings it cannot make, saying which; its tokenizer reads and writes k/v ids; prepareData gives it', async () => {
    expect(() => checkMqar({ vocab: 16, pairs: 8, length: 64 })).toThrow(/8 pairs need as many distinct keys; vocabulary 16 has 7/);
    expect(() => checkMqar({ vocab: 64, pairs: 8, length: 16 })).toThrow(/8 pairs and a query need 18 tokens; the window is 16/);
    const t = mqarTokenizer({ vocab: 64 });
    expect(t.decode([3, 40, 0])).toBe('k3 v40 _');
    expect(Array.from(t.encode('k3 v40 _'))).toEqual([3, 40, 0]);
    expect(() => t.encode('k99')).toThrow(/below 64/);
    expect(() => corpora.get('mqar').open()).toThrow(/generated, not read/);
    const d = await prepareData({ dataset: 'mqar', tokenizer: 'byte', vocabSize: 32, mqarPairs: 3, seqLen: 12 });
    expect([d.tokenizer.name, d.tokenizer.vocabSize, d.queryPositions]).toEqual(['mqar', 32, [6, 8, 10]]);
    await expect(prepareData({ dataset: 'mqar', tokenizer: 'byte' })).rejects.toThrow(/seqLen is needed/);
  });
});
