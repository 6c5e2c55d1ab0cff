import { existsSync, lstatSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { corpora, type Corpus, type CorpusDocument, type OpenOptions, type Split } from './corpus.js';
import { DataError, readLines } from './files.js';

/** The file names a split may have in --data-dir, plain or gzipped. */
const NAMES: Record<Split, string[]> = {
  train: ['train.txt', 'train.txt.gz'],
  validation: ['validation.txt', 'validation.txt.gz'],
  test: ['test.txt', 'test.txt.gz'],
};

/**
 * A document longer than this is cut at the next line end: a file without blank lines would
 * otherwise be one document held whole in memory.
 */
export const TEXT_DOCUMENT_CHARS = 1 << 20;

/** The file of one split in `dir`, or undefined; both a plain and a gzipped one is an error (which would be read?). */
function fileOf(dir: string, split: Split): string | undefined {
  const found = NAMES[split].filter((n) => existsSync(join(dir, n)) || isLink(join(dir, n)));
  if (found.length > 1) throw new DataError(`${dir} holds both ${found.join(' and ')}: keep one`);
  if (!found.length) return undefined;
  const path = join(dir, found[0]!);
  if (!existsSync(path)) throw new DataError(`${path} is a link to ${readlinkSync(path)}, which does not exist`);
  const st = statSync(path);
  if (!st.isFile()) throw new DataError(`${path} is not a file`);
  if (st.size === 0) throw new DataError(`${path} is empty`);
  return path;
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

export const text = {
  name: 'text',
  needsDataDir: true,
  description:
    'Your own plain text: train.txt and validation.txt (test.txt optional; each may be gzipped, .txt.gz) in --data-dir, UTF-8 (bytes that are not become U+FFFD; a byte-order mark is dropped). Documents are separated by blank lines; the lines of one document stay together (up to 1M characters: a longer one is cut at the next line end).',
  open(options: OpenOptions = {}): Corpus {
    const dir = options.dataDir;
    if (!dir) throw new DataError('the text dataset reads train.txt and validation.txt: give --data-dir DIR');
    if (!existsSync(dir)) throw new DataError(`--data-dir ${dir} does not exist`);
    if (!statSync(dir).isDirectory()) throw new DataError(`--data-dir ${dir} is not a folder (the text dataset reads train.txt and validation.txt in it)`);
    for (const split of ['train', 'validation'] as const) {
      if (!fileOf(dir, split)) throw new DataError(`no ${NAMES[split].join(' or ')} in ${dir} (the text dataset needs train.txt and validation.txt; test.txt is optional)`);
    }
    const file = (split: Split): string => {
      const f = fileOf(dir, split);
      if (!f) throw new DataError(`no ${NAMES[split].join(' or ')} in ${dir}: this text dataset has no ${split} split`);
      return f;
    };
    return {
      name: 'text',
      description: text.description,
      files: () =>
        (['train', 'validation', 'test'] as const)
          .map((s) => fileOf(dir, s))
          .filter((f): f is string => f !== undefined)
          .map((path) => {
            const st = statSync(path);
            return { path, size: st.size, mtimeMs: st.mtimeMs };
          }),
      async *stream(split): AsyncGenerator<CorpusDocument> {
        const path = file(split);
        let lines: string[] = [];
        let chars = 0;
        let start = 0;
        let documents = 0;
        const flush = (): CorpusDocument | undefined => {
          if (lines.length === 0) return undefined;
          const doc = { id: `${path}:${start}`, split, text: lines.join('\n') };
          lines = [];
          chars = 0;
          documents++;
          return doc;
        };
        for await (const { text: raw, line } of readLines(path)) {
          const t = (line === 1 ? raw.replace(/^\uFEFF/, '') : raw).trimEnd();
          if (t === '' || chars >= TEXT_DOCUMENT_CHARS) {
            const doc = flush();
            if (doc) yield doc;
            if (t === '') continue;
          }
          if (lines.length === 0) start = line;
          lines.push(t);
          chars += t.length + 1;
        }
        const last = flush();
        if (last) yield last;
        if (documents === 0) throw new DataError(`${path} holds no text`);
      },
    };
  },
};

corpora.register('text', text);
