import { createRegistry, type Registry } from '@primer-search/core';
import type { Corpus } from './corpus.js';

export interface Tokenizer {
  name: string;
  vocabSize: number;
  /** Id that separates documents in a token stream. */
  endOfDocument: number;
  encode(text: string): Uint32Array;
  decode(ids: ArrayLike<number>): string;
  /** Identifies the vocabulary, so caches built with another one are refused. */
  fingerprint: string;
  /**
   * The file that defines its vocabulary, when it has one (a trained BPE's tokenizer.json, a
   * SentencePiece model): what `saveTokenizer` copies next to an exported model.
   */
  vocabularyFile?: { name: string; bytes: Uint8Array };
}

export interface TokenizerFactory {
  name: string;
  description: string;
  /** Learns its vocabulary from the data: `create` gets a sample of the training split as `trainingText`. */
  trainsOnData?: boolean;
  create(options: { vocabSize?: number; trainingText?: () => Iterable<string>; modelFile?: string }): Tokenizer | Promise<Tokenizer>;
  /** Rebuilds a tokenizer from the vocabulary file it saved (`Tokenizer.vocabularyFile`), for tokenizers that have one. */
  fromVocabularyFile?(file: string, fingerprint: string): Tokenizer | Promise<Tokenizer>;
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

/** Characters of training text a tokenizer that trains on the data sees, at most. */
export const TOKENIZER_TRAINING_CHARS = 16e6;

/**
 * Creates the named tokenizer for `corpus`. One that trains on the data learns from the
 * training split only: all of it for a corpus in memory, the first 16M characters of a
 * streamed one.
 */
export async function createTokenizer(
  corpus: Corpus,
  options: { tokenizer: string; vocabSize?: number; tokenizerModel?: string },
): Promise<Tokenizer> {
  const factory = tokenizers.get(options.tokenizer);
  const sample: string[] = [];
  if (factory.trainsOnData) {
    if (corpus.documents) {
      for (const d of corpus.documents()) if (d.split === 'train') sample.push(d.text);
    } else {
      let chars = 0;
      for await (const d of corpus.stream('train')) {
        sample.push(d.text);
        if ((chars += d.text.length) >= TOKENIZER_TRAINING_CHARS) break;
      }
    }
  }
  return factory.create({ vocabSize: options.vocabSize, modelFile: options.tokenizerModel, trainingText: () => sample });
}
