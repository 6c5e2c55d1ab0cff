import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PrimerError } from '@primer-search/core';
import { tokenizers, type Tokenizer } from './tokenizer.js';
import type { SavedTokenizer } from './browser.js';

export type { SavedTokenizer };

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

export const SAVED_TOKENIZER = 'tokenizer.json';

/** Writes `tokenizer.json` (and the vocabulary file, if the tokenizer has one) into `dir`. */
export function saveTokenizer(t: Tokenizer, dir: string): SavedTokenizer {
  const saved: SavedTokenizer = {
    format: 'primer-tokenizer',
    version: 1,
    name: t.name,
    vocabSize: t.vocabSize,
    endOfDocument: t.endOfDocument,
    fingerprint: t.fingerprint,
    ...(t.vocabularyFile ? { vocabularyFile: t.vocabularyFile.name, vocabularySha256: sha256(t.vocabularyFile.bytes) } : {}),
  };
  if (t.vocabularyFile) writeFileSync(join(dir, t.vocabularyFile.name), t.vocabularyFile.bytes);
  writeFileSync(join(dir, SAVED_TOKENIZER), `${JSON.stringify(saved, null, 2)}\n`);
  return saved;
}

/** Rebuilds the tokenizer `saveTokenizer` wrote into `dir`, checking it is the same vocabulary. */
export async function loadTokenizer(dir: string): Promise<Tokenizer> {
  const file = join(dir, SAVED_TOKENIZER);
  const fail = (what: string) => new PrimerError('BAD_TOKENIZER', `${file} ${what}`);
  if (!existsSync(file)) throw fail('does not exist: the folder is not a model exported by primer-search (no tokenizer)');
  let saved: SavedTokenizer;
  try {
    saved = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw fail(`is not JSON: ${(e as Error).message}`);
  }
  if (saved?.format !== 'primer-tokenizer' || saved.version !== 1 || typeof saved.name !== 'string') throw fail('is not a primer-search tokenizer file (version 1)');
  const factory = tokenizers.get(saved.name);
  let t: Tokenizer;
  if (saved.vocabularyFile !== undefined) {
    if (!factory.fromVocabularyFile) throw fail(`names a vocabulary file, but the ${saved.name} tokenizer cannot load one`);
    const vocabulary = join(dir, saved.vocabularyFile);
    if (!existsSync(vocabulary)) throw fail(`names the vocabulary file ${saved.vocabularyFile}, which is missing`);
    if (saved.vocabularySha256 !== undefined && sha256(readFileSync(vocabulary)) !== saved.vocabularySha256) {
      throw fail(`names the vocabulary file ${saved.vocabularyFile}, whose contents have changed since it was saved (SHA-256 differs)`);
    }
    t = await factory.fromVocabularyFile(vocabulary, saved.fingerprint);
  } else {
    t = await factory.create({});
  }
  if (t.fingerprint !== saved.fingerprint || t.vocabSize !== saved.vocabSize) {
    throw fail(`describes the ${saved.name} vocabulary ${saved.fingerprint} (${saved.vocabSize} ids), but loads ${t.fingerprint} (${t.vocabSize} ids)`);
  }
  return t;
}
