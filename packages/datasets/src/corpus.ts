import { createRegistry, type Registry } from '@primer-search/core';

export type Split = 'train' | 'validation' | 'test';
export const SPLITS: readonly Split[] = ['train', 'validation', 'test'];

export interface CorpusDocument {
  id: string;
  split: Split;
  /** Plain text; sentences on their own lines, paragraphs separated by a blank line. */
  text: string;
  genre?: string;
}

export interface Corpus {
  name: string;
  description: string;
  /** Every document, each already assigned to its split (deterministically). */
  documents(): CorpusDocument[];
}

export interface CorpusSource {
  name: string;
  description: string;
  /** `dataDir` is where the user keeps the files, for corpora that do not ship with us. */
  open(options?: { dataDir?: string }): Corpus;
}

export type CorpusName = 'brown';
export const corpora: Registry<CorpusName, CorpusSource> = createRegistry<CorpusName, CorpusSource>('dataset');

/** FNV-1a of the document id, so a document's split never depends on the others. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** About 90% train, 5% validation, 5% test, by a hash of the document id. */
export function splitOf(id: string): Split {
  const r = hash(id) % 20;
  return r === 0 ? 'validation' : r === 1 ? 'test' : 'train';
}
