import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PrimerError } from '@primer-search/core';
import { bpeFromJson, END_OF_DOCUMENT } from './bpe-json.js';
import { tokenizers, type Tokenizer } from './tokenizer.js';

export { bpeFromJson, END_OF_DOCUMENT };

export const DEFAULT_BPE_VOCAB = 1024;
const TRAINER_VERSION = 1;

/** Where trained vocabularies are kept: $PRIMER_CACHE_DIR, else ~/.cache/primer-search. */
export function cacheDirectory(): string {
  return process.env.PRIMER_CACHE_DIR ?? join(homedir(), '.cache', 'primer-search');
}

/**
 * Trains (or loads from the cache) a byte-level BPE vocabulary of `vocabSize` ids on the
 * given text, with Hugging Face tokenizers. Every byte has an id, so any text encodes and
 * decodes losslessly; the last id ends a document.
 */
export function trainBpe(options: { vocabSize: number; text: () => Iterable<string>; cacheDir?: string }): Tokenizer {
  const { vocabSize } = options;
  if (!Number.isInteger(vocabSize) || vocabSize < 258 || vocabSize > 30_000) {
    throw new PrimerError('BAD_TOKENIZER', `a BPE vocabulary needs 258 to 30000 ids (256 bytes, merges, end of document), got ${vocabSize}`);
  }
  const hash = createHash('sha256');
  const parts: string[] = [];
  for (const t of options.text()) {
    parts.push(t);
    hash.update(t).update('\u0000');
  }
  const key = `bpe-v${TRAINER_VERSION}-${vocabSize}-${hash.digest('hex').slice(0, 16)}`;
  const dir = options.cacheDir ?? cacheDirectory();
  const file = join(dir, `${key}.json`);
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true });
    // The trainer's own files get names no other process uses (pids repeat across containers
    // sharing a folder): two processes training the same vocabulary at once (two studies
    // started together) each rename a whole file onto the cache's, and both results are the same.
    const unique = `${process.pid}-${randomBytes(4).toString('hex')}`;
    const textFile = join(tmpdir(), `${key}-${unique}.txt`);
    // what a trainer killed before its clean-up left of this vocabulary (the corpus's text can be large)
    sweepStale(join(tmpdir(), `${key}-`), /^\d+-[0-9a-f]{8}\.txt$/);
    sweepStale(`${file}.`, /^\d+-[0-9a-f]{8}\.(trained|json)$/);
    writeFileSync(textFile, parts.join('\n'));
    const scratch = `${file}.${unique}`;
    try {
      const script = fileURLToPath(new URL('../scripts/train-bpe.mjs', import.meta.url));
      const r = spawnSync(process.execPath, [script, JSON.stringify({ textFile, vocabSize, out: file, endOfDocument: END_OF_DOCUMENT, scratch })], {
        encoding: 'utf8',
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      if (r.status !== 0) throw new PrimerError('TOKENIZER_TRAINING', `training the BPE vocabulary failed: ${r.stderr || r.error?.message}`);
    } finally {
      rmSync(textFile, { force: true });
      rmSync(`${scratch}.trained`, { force: true });
      rmSync(`${scratch}.json`, { force: true });
    }
  }
  const text = readFileSync(file, 'utf8');
  return bpeFromJson(JSON.parse(text), key, text);
}

/** A scratch file older than this was left by a trainer that did not finish (none runs for a day). */
export const STALE_SCRATCH_MS = 24 * 3600_000;

/**
 * Removes the files named `prefix` + a name `rest` matches that were last written more than
 * `olderThanMs` ago (default STALE_SCRATCH_MS): the scratch a killed process left (a BPE trainer's,
 * an export's staging folders with `folders`). Age, not a process id, says so, because the folder
 * may be shared by machines whose process ids mean nothing here.
 */
export function sweepStale(prefix: string, rest: RegExp, options: { olderThanMs?: number; folders?: boolean; now?: number } = {}): string[] {
  const { olderThanMs = STALE_SCRATCH_MS, folders = false, now = Date.now() } = options;
  const dir = dirname(prefix);
  const start = basename(prefix);
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    if (!name.startsWith(start) || !rest.test(name.slice(start.length))) continue;
    const path = join(dir, name);
    try {
      const s = statSync(path);
      if ((s.isFile() || (folders && s.isDirectory())) && now - s.mtimeMs > olderThanMs) {
        rmSync(path, { recursive: true, force: true });
        removed.push(path);
      }
    } catch {
      // gone already (another process swept it)
    }
  }
  return removed;
}

tokenizers.register('bpe', {
  name: 'bpe',
  trainsOnData: true,
  description: `Byte-level BPE trained on the training split with Hugging Face tokenizers (vocabulary ${DEFAULT_BPE_VOCAB} by default), cached by content.`,
  create: ({ vocabSize, trainingText }) => {
    if (!trainingText) throw new PrimerError('BAD_TOKENIZER', 'the bpe tokenizer is trained on the dataset: give it trainingText');
    return trainBpe({ vocabSize: vocabSize ?? DEFAULT_BPE_VOCAB, text: trainingText });
  },
  fromVocabularyFile: (file, fingerprint) => {
    const text = readFileSync(file, 'utf8');
    return bpeFromJson(JSON.parse(text), fingerprint, text);
  },
});
