import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { corpora, type Corpus, type CorpusDocument, type OpenOptions, type Split } from './corpus.js';
import { DataError, readLines, tarGzEntries } from './files.js';

export const LM1B_TRAIN_DIR = 'training-monolingual.tokenized.shuffled';
export const LM1B_HELDOUT_DIR = 'heldout-monolingual.tokenized.shuffled';
const TRAIN_SHARD = /^news\.en-(\d{5})-of-00100$/;
const HELDOUT_SHARD = /^news\.en\.heldout-(\d{5})-of-00050$/;
const RELEASE_DIR = '1-billion-word-language-modeling-benchmark-r13output';
/** The held-out shard used for validation (the one the literature reports test perplexity on). */
export const LM1B_VALIDATION_SHARD = 'news.en.heldout-00000-of-00050';

/**
 * Which split an LM1B shard belongs to: every training shard is `train`; held-out shard
 * 00000 is `validation`; held-out shards 00001-00049 are `test`.
 */
export function lm1bSplitOf(name: string): Split | undefined {
  const base = basename(name);
  const dir = basename(name.slice(0, name.length - base.length - 1));
  if (dir === LM1B_TRAIN_DIR && TRAIN_SHARD.test(base)) return 'train';
  if (dir === LM1B_HELDOUT_DIR && HELDOUT_SHARD.test(base)) return base === LM1B_VALIDATION_SHARD ? 'validation' : 'test';
  return undefined;
}

type Layout = { kind: 'dir'; root: string } | { kind: 'archive'; file: string };

function locate(dataDir: string): Layout {
  if (!existsSync(dataDir)) throw new DataError(`--data-dir ${dataDir} does not exist`);
  if (statSync(dataDir).isFile() && dataDir.endsWith('.tar.gz')) return { kind: 'archive', file: dataDir };
  for (const root of [dataDir, join(dataDir, RELEASE_DIR)]) {
    if (existsSync(join(root, LM1B_TRAIN_DIR)) || existsSync(join(root, LM1B_HELDOUT_DIR))) return { kind: 'dir', root };
  }
  const archives = readdirSync(dataDir).filter((f) => f.endsWith('.tar.gz')).sort();
  if (archives.length > 0) return { kind: 'archive', file: join(dataDir, archives[0]!) };
  throw new DataError(
    `no LM1B data in ${dataDir}: expected ${LM1B_TRAIN_DIR}/ and ${LM1B_HELDOUT_DIR}/ (the unpacked release, possibly inside ${RELEASE_DIR}/) or the release's .tar.gz`,
  );
}

function shardsOf(root: string, split: Split): string[] {
  const dir = join(root, split === 'train' ? LM1B_TRAIN_DIR : LM1B_HELDOUT_DIR);
  const names = existsSync(dir) ? readdirSync(dir).sort() : [];
  const files = names.filter((n) => lm1bSplitOf(`${split === 'train' ? LM1B_TRAIN_DIR : LM1B_HELDOUT_DIR}/${n}`) === split).map((n) => join(dir, n));
  if (split === 'validation' && files.length === 0) throw new DataError(`missing LM1B validation shard: ${join(dir, LM1B_VALIDATION_SHARD)}`);
  if (files.length === 0) throw new DataError(`no LM1B ${split} shards (${split === 'train' ? 'news.en-NNNNN-of-00100' : 'news.en.heldout-NNNNN-of-00050'}) in ${dir}`);
  for (const f of files) if (statSync(f).size === 0) throw new DataError(`empty LM1B shard: ${f}`);
  return files;
}

/** One document per sentence (line), as the release has them: space-tokenized text. */
async function* fromLines(lines: AsyncIterable<{ text: string; line: number }>, shard: string, split: Split): AsyncGenerator<CorpusDocument> {
  let any = false;
  for await (const { text, line } of lines) {
    any = true;
    if (text.trim() === '') continue;
    yield { id: `${shard}:${line}`, split, text };
  }
  if (!any) throw new DataError(`empty LM1B shard: ${shard}`);
}

export const lm1b = {
  name: 'lm1b',
  needsDataDir: true,
  description:
    'One Billion Word benchmark (LM1B), read from the official release in --data-dir (unpacked, or its .tar.gz): one sentence per line. Training shards for train, held-out shard 00000 for validation, held-out 00001-00049 for test.',
  open(options: OpenOptions = {}): Corpus {
    if (!options.dataDir) throw new DataError('the lm1b dataset reads the official release: give --data-dir DIR');
    const layout = locate(options.dataDir);
    return {
      name: 'lm1b',
      description: lm1b.description,
      files: () => {
        const paths =
          layout.kind === 'archive' ? [layout.file] : (['train', 'validation', 'test'] as Split[]).flatMap((s) => (s === 'test' ? safeShards(layout.root, s) : shardsOf(layout.root, s)));
        return paths.map((path) => {
          const st = statSync(path);
          return { path, size: st.size, mtimeMs: st.mtimeMs };
        });
      },
      async *stream(split) {
        if (layout.kind === 'dir') {
          for (const f of shardsOf(layout.root, split)) yield* fromLines(readLines(f), f, split);
          return;
        }
        let found = false;
        for await (const entry of tarGzEntries(layout.file, (n) => lm1bSplitOf(n) === split)) {
          found = true;
          if (entry.size === 0) throw new DataError(`empty LM1B shard: ${layout.file}: ${entry.name}`);
          yield* fromLines(entry.lines, `${layout.file}: ${entry.name}`, split);
        }
        if (!found) {
          throw new DataError(
            split === 'validation'
              ? `missing LM1B validation shard in ${layout.file}: ${LM1B_HELDOUT_DIR}/${LM1B_VALIDATION_SHARD}`
              : `no LM1B ${split} shards in ${layout.file}`,
          );
        }
      },
    };
  },
};

const safeShards = (root: string, split: Split) => {
  try {
    return shardsOf(root, split);
  } catch {
    return [];
  }
};

corpora.register('lm1b', lm1b);
