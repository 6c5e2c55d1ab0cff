import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { SentencePieceProcessor } from '@sctg/sentencepiece-js';
import { getEncoding } from 'js-tiktoken';
import { DataError } from './files.js';
import { tokenizers, type Tokenizer } from './tokenizer.js';

/** Reads a protobuf varint at `at`; returns the value and the next offset. */
function varint(buf: Uint8Array, at: number): [number, number] {
  let v = 0;
  let shift = 0;
  for (;;) {
    if (at >= buf.length) throw new Error('truncated varint');
    const b = buf[at++]!;
    v += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) return [v, at];
    shift += 7;
    if (shift > 49) throw new Error('varint too long');
  }
}

/**
 * The pieces of a SentencePiece ModelProto (field 1, each a message whose field 1 is the
 * piece text), read straight from the protobuf: the vocabulary size and the end-of-sentence
 * id are not exposed by the wasm processor.
 */
export function sentencePiecePieces(model: Uint8Array): string[] {
  const pieces: string[] = [];
  const text = new TextDecoder();
  let at = 0;
  while (at < model.length) {
    const [tag, next] = varint(model, at);
    at = next;
    const wire = tag & 7;
    if (wire === 0) [, at] = varint(model, at);
    else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else if (wire === 2) {
      const [len, start] = varint(model, at);
      at = start + len;
      if (at > model.length) throw new Error('truncated field');
      if (tag >>> 3 === 1) {
        // a SentencePiece message: find its field 1 (the piece)
        let p = start;
        let piece = '';
        while (p < start + len) {
          const [t, q] = varint(model, p);
          p = q;
          if ((t & 7) === 2) {
            const [l, s] = varint(model, p);
            if (t >>> 3 === 1) piece = text.decode(model.subarray(s, s + l));
            p = s + l;
          } else if ((t & 7) === 0) [, p] = varint(model, p);
          else if ((t & 7) === 5) p += 4;
          else if ((t & 7) === 1) p += 8;
          else throw new Error(`unexpected wire type ${t & 7}`);
        }
        pieces.push(piece);
      }
    } else throw new Error(`unexpected wire type ${wire}`);
  }
  return pieces;
}

/** Loads a SentencePiece `.model` file (e.g. T5's 32k vocabulary) for encoding and decoding. */
export async function sentencePieceTokenizer(modelFile: string): Promise<Tokenizer> {
  let bytes: Buffer;
  try {
    bytes = readFileSync(modelFile);
  } catch {
    throw new DataError(`cannot read the SentencePiece model ${modelFile}`);
  }
  let pieces: string[];
  try {
    pieces = sentencePiecePieces(bytes);
  } catch (e) {
    throw new DataError(`${modelFile} is not a SentencePiece model: ${(e as Error).message}`);
  }
  if (pieces.length === 0) throw new DataError(`${modelFile} is not a SentencePiece model: it has no pieces`);
  const spp = new SentencePieceProcessor();
  await spp.load(modelFile);
  const eos = pieces.indexOf('</s>');
  const vocabSize = eos >= 0 ? pieces.length : pieces.length + 1;
  const endOfDocument = eos >= 0 ? eos : pieces.length;
  return {
    name: 'sentencepiece',
    vocabSize,
    endOfDocument,
    fingerprint: `sentencepiece-${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}`,
    vocabularyFile: { name: 'spiece.model', bytes: new Uint8Array(bytes) },
    encode: (text) => Uint32Array.from(spp.encodeIds(text)),
    decode: (ids) => spp.decodeIds(Int32Array.from(Array.from(ids).filter((i) => i !== endOfDocument && i < pieces.length))),
  };
}

/** GPT-2's byte-level BPE (50,257 ids; <|endoftext|> ends a document), from the ranks js-tiktoken ships. */
export function gpt2Tokenizer(): Tokenizer {
  const enc = getEncoding('gpt2');
  const eot = 50256;
  return {
    name: 'gpt2',
    vocabSize: 50257,
    endOfDocument: eot,
    fingerprint: 'gpt2-tiktoken-50257',
    // special-token text in the data is encoded as plain text
    encode: (text) => Uint32Array.from(enc.encode(text, [], [])),
    decode: (ids) => enc.decode(Array.from(ids).filter((i) => i !== eot)),
  };
}

tokenizers.register('sentencepiece', {
  name: 'sentencepiece',
  description: 'A SentencePiece .model file you give with --tokenizer-model (e.g. the 32k vocabulary of T5, used for C4); loaded with @sctg/sentencepiece-js.',
  create: ({ modelFile }) => {
    if (!modelFile) throw new DataError('the sentencepiece tokenizer loads a SentencePiece .model file: give --tokenizer-model FILE');
    return sentencePieceTokenizer(modelFile);
  },
  fromVocabularyFile: (file) => sentencePieceTokenizer(file),
});

tokenizers.register('gpt2', {
  name: 'gpt2',
  description: "GPT-2's byte-level BPE (vocabulary 50,257), shipped in the js-tiktoken package: lossless for any text.",
  create: () => gpt2Tokenizer(),
});
