import { describe, expect, it } from 'vitest';
import { BatchSampler, evaluationBatches, tokenStream } from './batches.js';
import { brown, detokenizeBrownLine, readBrown } from './brown.js';
import { corpora, splitOf } from './corpus.js';
import { byteTokenizer, tokenizers } from './tokenizer.js';

describe('the Brown corpus', () => {
  const docs = readBrown();

  it('reads all 500 texts in 15 genres with every sentence', () => {
    expect(docs).toHaveLength(500);
    expect(new Set(docs.map((d) => d.genre)).size).toBe(15);
    const sentences = docs.reduce((a, d) => a + d.text.split('\n').filter((l) => l.trim()).length, 0);
    expect(sentences).toBe(57_340);
    expect(docs[0]!.text.startsWith('The Fulton County Grand Jury said Friday an investigation of')).toBe(true);
  });

  it('strips part-of-speech tags at the last slash and restores plain punctuation', () => {
    expect(detokenizeBrownLine("\tThe/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' ,/, 1-1/2/cd miles/nns ./.")).toBe(
      'The jury said "no evidence", 1-1/2 miles.',
    );
    expect(detokenizeBrownLine("It/pps isn't/bez* (/( really/rb )/) so/ql ./.")).toBe("It isn't (really) so.");
    const all = docs.map((d) => d.text).join('\n');
    expect(all).not.toMatch(/\S\/(at|nn|vbd|in|jj|np)(\s|$)/m); // real slashes stay: "material/hr./in."
    expect(all).not.toContain('``');
  });

  it('splits by document, deterministically, about 90/5/5', () => {
    const count = (s: string) => docs.filter((d) => d.split === s).length;
    expect(count('train')).toBeGreaterThan(420);
    expect(count('validation')).toBeGreaterThan(10);
    expect(count('test')).toBeGreaterThan(10);
    expect(docs.every((d) => d.split === splitOf(d.id))).toBe(true);
  });

  it('is registered as the "brown" dataset', () => {
    expect(corpora.get('brown')).toBe(brown);
    expect(() => corpora.get('lm1')).toThrow(/Unknown dataset "lm1"/);
  });
});

describe('the byte tokenizer', () => {
  it('round-trips any text, non-ASCII included', async () => {
    const t = byteTokenizer();
    for (const text of ['plain', 'café ☕ — naïve 日本語 🙂', '']) expect(t.decode(t.encode(text))).toBe(text);
    expect(Array.from(t.encode('é'))).toEqual([0xc3, 0xa9]);
    expect(t.vocabSize).toBe(257);
    expect((await tokenizers.get('byte').create({})).fingerprint).toBe(t.fingerprint);
  });
});

describe('batching', () => {
  const stream = tokenStream(brown.open(), 'validation', byteTokenizer());

  it('concatenates a split with an end-of-document id after each document', () => {
    const docs = brown.open().documents!().filter((d) => d.split === 'validation');
    const bytes = docs.reduce((a, d) => a + new TextEncoder().encode(d.text).length, 0);
    expect(stream.length).toBe(bytes + docs.length);
    expect(stream.filter((x) => x === 256).length).toBe(docs.length);
  });

  it('samples the same batches from the same seed, with targets one token ahead', () => {
    const a = new BatchSampler(stream, 4, 16, 3);
    const b = new BatchSampler(stream, 4, 16, 3);
    const x = a.next();
    expect(x.tokens).toEqual(b.next().tokens);
    expect(new BatchSampler(stream, 4, 16, 4).next().tokens).not.toEqual(x.tokens);
    for (let row = 0; row < 4; row++) {
      for (let t = 0; t < 15; t++) expect(x.targets[row * 16 + t]).toBe(x.tokens[row * 16 + t + 1]);
    }
  });

  it('resumes the batch sequence from its state', () => {
    const a = new BatchSampler(stream, 2, 8, 9);
    a.next();
    const saved = a.state();
    const next = a.next();
    expect(new BatchSampler(stream, 2, 8, { state: saved }).next().tokens).toEqual(next.tokens);
  });

  it('evaluates on fixed, non-overlapping windows', () => {
    const batches = evaluationBatches(stream, 8, 32, 20);
    expect(batches.reduce((a, b) => a + b.batch, 0)).toBe(20);
    expect(batches.map((b) => b.batch)).toEqual([8, 8, 4]);
    expect(evaluationBatches(stream, 8, 32, 20)).toEqual(batches);
    expect(() => evaluationBatches(new Uint32Array(5), 1, 8, 1)).toThrow(/fewer than one window/);
  });
});
