// The BPE tokenizer from its tokenizer.json, in pure JS: no Node module, so pages use it too.
import { Tokenizer as JsTokenizer } from '@huggingface/tokenizers';
import { PrimerError } from '@primer-search/core';
import type { Tokenizer } from './tokenizer.js';

export const END_OF_DOCUMENT = '<|endofdocument|>';

/** A tokenizer from a byte-level BPE tokenizer.json (as written by the trainer), encoding in pure JS. */
export function bpeFromJson(json: { added_tokens: Array<{ id: number; content: string }> }, fingerprint: string, text = JSON.stringify(json)): Tokenizer {
  const eod = json.added_tokens.find((t) => t.content === END_OF_DOCUMENT)?.id;
  if (eod === undefined) throw new PrimerError('BAD_TOKENIZER', `the tokenizer has no ${END_OF_DOCUMENT} token`);
  const t = new JsTokenizer(json, { clean_up_tokenization_spaces: false });
  return {
    name: 'bpe',
    vocabSize: eod + 1,
    endOfDocument: eod,
    fingerprint,
    vocabularyFile: { name: 'bpe-tokenizer.json', bytes: new TextEncoder().encode(text) },
    encode: (text) => Uint32Array.from(t.encode(text, { add_special_tokens: false }).ids),
    decode: (ids) => {
      const kept = Array.from(ids).filter((i) => i !== eod);
      // the JS decoder refuses an empty list
      return kept.length === 0 ? '' : t.decode(kept, { skip_special_tokens: true, clean_up_tokenization_spaces: false });
    },
  };
}

