import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tokenStream } from './batches.js';
import { END_OF_DOCUMENT, trainBpe } from './bpe.js';
import { brown } from './brown.js';
import { byteTokenizer, tokenizers } from './tokenizer.js';

const cacheDir = mkdtempSync(join(tmpdir(), 'primer-bpe-'));
const corpus = brown.open();
const trainText = () => corpus.documents!().filter((d) => d.split === 'train').map((d) => d.text);

describe('the bpe tokenizer (Hugging Face tokenizers, trained on the corpus)', () => {
  const bpe = trainBpe({ vocabSize: 512, text: trainText, cacheDir });

  it('has exactly the vocabulary size asked for, the last id ending documents', () => {
    expect(bpe.vocabSize).toBe(512);
    expect(bpe.endOfDocument).toBe(511);
    const ids = tokenStream(corpus, 'validation', bpe);
    expect(ids.reduce((m, i) => Math.max(m, i), 0)).toBe(511);
    expect(ids.every((i) => i >= 0 && i < 512)).toBe(true);
  });

  it('round-trips text exactly, non-ASCII included', () => {
    const doc = corpus.documents!().find((d) => d.split === 'validation')!.text;
    for (const text of [doc, 'café ☕ — naïve 日本語 🙂\n\n\ttabs  and  spaces', END_OF_DOCUMENT.slice(1), '']) {
      expect(bpe.decode(bpe.encode(text))).toBe(text);
    }
  });

  it('compresses English text well below one token per byte', () => {
    const text = corpus.documents!().filter((d) => d.split === 'validation').map((d) => d.text).join('\n');
    const bytes = byteTokenizer().encode(text).length;
    expect(bpe.encode(text).length / bytes).toBeLessThan(0.55);
  });

  it('caches the trained vocabulary by content and size', () => {
    const files = readdirSync(cacheDir).filter((f) => f.endsWith('.json'));
    expect(files).toHaveLength(1);
    const again = trainBpe({ vocabSize: 512, text: trainText, cacheDir });
    expect(again.fingerprint).toBe(bpe.fingerprint);
    expect(readdirSync(cacheDir).filter((f) => f.endsWith('.json'))).toHaveLength(1);
    expect(trainBpe({ vocabSize: 400, text: trainText, cacheDir }).fingerprint).not.toBe(bpe.fingerprint);
  });

  it('refuses impossible sizes and missing training text', () => {
    expect(() => trainBpe({ vocabSize: 100, text: trainText, cacheDir })).toThrow(/258 to 30000/);
    expect(() => tokenizers.get('bpe').create({})).toThrow(/give it trainingText/);
  });
});
