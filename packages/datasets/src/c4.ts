import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { corpora, type Corpus, type CorpusDocument, type OpenOptions, type Split } from './corpus.js';
import { DataError, readLines } from './files.js';

const SHARD = { train: /^c4-train\.(\d{5})-of-01024\.json\.gz$/, validation: /^c4-validation\.(\d{5})-of-00008\.json\.gz$/ };

function locate(dataDir: string): string {
  if (!existsSync(dataDir)) throw new DataError(`--data-dir ${dataDir} does not exist`);
  for (const dir of [dataDir, join(dataDir, 'en')]) {
    if (existsSync(dir) && readdirSync(dir).some((f) => SHARD.train.test(f) || SHARD.validation.test(f))) return dir;
  }
  throw new DataError(`no C4 shards in ${dataDir} (or ${join(dataDir, 'en')}): expected c4-train.NNNNN-of-01024.json.gz and c4-validation.NNNNN-of-00008.json.gz`);
}

export const c4 = {
  name: 'c4',
  needsDataDir: true,
  description:
    'C4 (the English Colossal Clean Crawled Corpus of T5), streamed from the official c4-train.NNNNN-of-01024.json.gz and c4-validation.NNNNN-of-00008.json.gz shards in --data-dir. One document per JSON line (its text field).',
  open(options: OpenOptions = {}): Corpus {
    if (!options.dataDir) throw new DataError('the c4 dataset reads the official json.gz shards: give --data-dir DIR');
    const dir = locate(options.dataDir);
    let skipped = 0;
    const shards = (split: Split) => {
      if (split === 'test') throw new DataError('C4 has no test split (its splits: train, validation)');
      const files = readdirSync(dir).filter((f) => SHARD[split].test(f)).sort().map((f) => join(dir, f));
      if (files.length === 0) throw new DataError(`no C4 ${split} shards (c4-${split}.NNNNN-of-${split === 'train' ? '01024' : '00008'}.json.gz) in ${dir}`);
      return files;
    };
    return {
      name: 'c4',
      description: c4.description,
      skipped: () => skipped,
      files: () =>
        [...shards('train'), ...shards('validation')].map((path) => {
          const st = statSync(path);
          return { path, size: st.size, mtimeMs: st.mtimeMs };
        }),
      async *stream(split): AsyncGenerator<CorpusDocument> {
        for (const file of shards(split)) {
          for await (const { text, line } of readLines(file)) {
            if (text.trim() === '') continue;
            let doc: unknown;
            let problem: string | undefined;
            try {
              doc = JSON.parse(text);
              if (typeof (doc as { text?: unknown })?.text !== 'string') problem = 'no "text" string field';
            } catch (e) {
              problem = `not JSON (${(e as Error).message})`;
            }
            if (problem) {
              if (options.skipBadLines) {
                skipped++;
                continue;
              }
              throw new DataError(`${file}:${line}: ${problem}; add --skip-bad-lines to count and skip such lines`);
            }
            const d = doc as { text: string; url?: string };
            yield { id: d.url ?? `${file}:${line}`, split, text: d.text };
          }
        }
      },
    };
  },
};

corpora.register('c4', c4);
