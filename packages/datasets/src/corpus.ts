import { PrimerError, createRegistry, type Registry } from '@primer-search/core';

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
  /**
   * Every document in memory, each already assigned to its split (deterministically). Only
   * small corpora have it; large ones are read with `stream` (through a token cache).
   */
  documents?(): CorpusDocument[];
  /** The documents of one split, streamed in a fixed order. */
  stream(split: Split): AsyncIterable<CorpusDocument>;
  /** The source files behind the corpus (recorded in a token cache, so that changed files are noticed). */
  files?(): Array<{ path: string; size: number; mtimeMs: number }>;
  /** Lines skipped as bad so far (with `skipBadLines`). */
  skipped?(): number;
}

export interface OpenOptions {
  /** Where the user keeps the files, for corpora that do not ship with us. */
  dataDir?: string;
  /** Count and skip unreadable lines instead of stopping at the first. */
  skipBadLines?: boolean;
}

export interface CorpusSource {
  name: string;
  description: string;
  /** It reads files the user keeps (`--data-dir`): without one it cannot open, which the CLI says before any work (a usage error). */
  needsDataDir?: boolean;
  open(options?: OpenOptions): Corpus;
}

export type CorpusName = 'brown' | 'lm1b' | 'c4' | 'mqar' | 'text';

/** Streams an in-memory corpus's split (for corpora that have `documents`). */
export async function* streamDocuments(docs: CorpusDocument[], split: Split): AsyncGenerator<CorpusDocument> {
  for (const d of docs) if (d.split === split) yield d;
}

/** A corpus's documents in memory, or an error saying to use a token cache. */
export function documentsOf(corpus: Corpus): CorpusDocument[] {
  if (!corpus.documents) {
    throw new PrimerError('DATASET_TOO_LARGE', `${corpus.name} is read as a stream: prepare a token cache (primer data prepare) instead of loading it whole`);
  }
  return corpus.documents();
}
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
