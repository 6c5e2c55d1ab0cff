import { createRegistry, type Registry } from '@primer-search/core';

export interface Tokenizer {
  name: string;
  vocabSize: number;
  /** Id that separates documents in a token stream. */
  endOfDocument: number;
  encode(text: string): Uint32Array;
  decode(ids: ArrayLike<number>): string;
  /** Identifies the vocabulary, so caches built with another one are refused. */
  fingerprint: string;
}

export interface TokenizerFactory {
  name: string;
  description: string;
  create(options: { vocabSize?: number; trainingText?: () => Iterable<string>; modelFile?: string }): Tokenizer | Promise<Tokenizer>;
}

export type TokenizerName = 'byte' | 'bpe' | 'sentencepiece' | 'gpt2';
export const tokenizers: Registry<TokenizerName, TokenizerFactory> = createRegistry<TokenizerName, TokenizerFactory>('tokenizer');

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: false });

/** UTF-8 bytes, plus one end-of-document id (256). Lossless for any text. */
export function byteTokenizer(): Tokenizer {
  return {
    name: 'byte',
    vocabSize: 257,
    endOfDocument: 256,
    fingerprint: 'byte-utf8-257',
    encode: (text) => Uint32Array.from(encoder.encode(text)),
    decode: (ids) => {
      const bytes: number[] = [];
      for (let i = 0; i < ids.length; i++) if (ids[i]! < 256) bytes.push(ids[i]!);
      return decoder.decode(Uint8Array.from(bytes));
    },
  };
}

tokenizers.register('byte', {
  name: 'byte',
  description: 'UTF-8 bytes (256 ids) plus an end-of-document id: vocabulary 257, no training, lossless.',
  create: () => byteTokenizer(),
});
