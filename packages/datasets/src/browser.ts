// @primer-search/datasets/browser: the tokenizers a page can rebuild from an exported model's
// files (byte and BPE), with no Node module. Node code uses loadTokenizer instead.
import { bpeFromJson } from './bpe-json.js';
import { byteTokenizer, type Tokenizer } from './tokenizer.js';

export { byteTokenizer, bpeFromJson, type Tokenizer };

/** `tokenizer.json` of an exported model: which tokenizer, and the file defining its vocabulary. */
export interface SavedTokenizer {
  format: 'primer-tokenizer';
  version: 1;
  name: string;
  vocabSize: number;
  endOfDocument: number;
  fingerprint: string;
  /** The vocabulary file in the same folder, for tokenizers that have one, and the SHA-256 of its bytes. */
  vocabularyFile?: string;
  vocabularySha256?: string;
}

/**
 * The tokenizer a `tokenizer.json` describes, from its contents and (for BPE) the text of its
 * vocabulary file: what a page fetches next to `model.json`.
 */
export function tokenizerFromSaved(saved: SavedTokenizer, vocabulary?: string): Tokenizer {
  if (saved?.format !== 'primer-tokenizer' || saved.version !== 1) throw new Error('not a primer-search tokenizer.json (version 1)');
  let t: Tokenizer;
  if (saved.name === 'byte') t = byteTokenizer();
  else if (saved.name === 'bpe') {
    if (vocabulary === undefined) throw new Error(`the bpe tokenizer needs its vocabulary file ${saved.vocabularyFile}`);
    t = bpeFromJson(JSON.parse(vocabulary), saved.fingerprint, vocabulary);
  } else throw new Error(`a page can rebuild the byte and bpe tokenizers, not ${saved.name} (primer generate can)`);
  if (t.vocabSize !== saved.vocabSize) throw new Error(`tokenizer.json says ${saved.vocabSize} ids, the ${saved.name} vocabulary has ${t.vocabSize}`);
  return t;
}
