import { createHash } from 'node:crypto';
import type { RunSettings } from '@primer-search/study';
import { join } from 'node:path';
import { cacheDirectory } from './bpe.js';
import { tokenStream, type Tokens } from './batches.js';
import { ensureTokenCache, openTokenCache, type PrepareProgress } from './cache.js';
import { corpora } from './corpus.js';
import { createTokenizer, type Tokenizer } from './tokenizer.js';
import { checkMqar, MQAR_DEFAULTS, mqarQueryPositions, mqarSource, mqarTokenizer } from './mqar.js';
import { PrimerError } from '@primer-search/core';

export interface PreparedData {
  tokenizer: Tokenizer;
  train: Tokens;
  validation: Tokens;
  /** Where the tokens come from: memory, or the token cache at this path. */
  cache?: string;
  /** Bad lines of the dataset files skipped when the cache was built (with skipBadLines). */
  skippedLines?: number;
  /**
   * Synthetic tasks (mqar): windows must start where an example does (training uses the
   * document starts), and these positions of a window are where recall is measured.
   */
  queryPositions?: number[];
}
/** What a run needs to know of its data (the data fields of a run's settings; the window only for mqar, whose examples fill one). */
export type DataSettings = Pick<RunSettings, 'dataset' | 'dataDir' | 'tokenizer' | 'vocabSize' | 'tokenizerModel' | 'cache' | 'skipBadLines'> & Partial<Pick<RunSettings, 'seqLen' | 'mqarPairs'>>;
const prepared = new Map<string, Promise<PreparedData>>();

/**
 * Tokenized splits of a dataset, cached in this process. Small corpora (Brown) are tokenized
 * in memory; streamed ones (LM1B, C4, text) are read through a token cache, built on first use
 * (with `onProgress`) in the cache directory unless `cache` names one.
 */
export function prepareData(s: DataSettings, hooks: { onProgress?: (p: PrepareProgress) => void } = {}): Promise<PreparedData> {
  const key = JSON.stringify([s.dataset, s.dataDir, s.tokenizer, s.vocabSize, s.tokenizerModel, s.cache, s.skipBadLines, ...(s.dataset === 'mqar' ? [s.seqLen, s.mqarPairs] : [])]);
  let p = prepared.get(key);
  if (!p) {
    p = load(s, hooks);
    prepared.set(key, p);
    // a failure is not kept
    p.catch(() => prepared.delete(key));
  }
  return p;
}

async function load(s: DataSettings, hooks: { onProgress?: (p: PrepareProgress) => void }): Promise<PreparedData> {
  if (s.dataset === 'mqar') {
    if (s.seqLen === undefined) throw new PrimerError('BAD_DATASET', 'mqar examples fill a window: the run\'s seqLen is needed to make them');
    const o = { vocab: s.vocabSize ?? MQAR_DEFAULTS.vocab, pairs: s.mqarPairs ?? MQAR_DEFAULTS.pairs, length: s.seqLen };
    checkMqar(o);
    return { tokenizer: mqarTokenizer(o), train: mqarSource(o, 'train'), validation: mqarSource(o, 'validation'), queryPositions: mqarQueryPositions(o) };
  }
  const corpus = corpora.get(s.dataset).open({ dataDir: s.dataDir, skipBadLines: s.skipBadLines });
  const tokenizer = await createTokenizer(corpus, s);
  if (corpus.documents && !s.cache) {
    return { tokenizer, train: tokenStream(corpus, 'train', tokenizer), validation: tokenStream(corpus, 'validation', tokenizer) };
  }
  const dir = s.cache ?? defaultCachePath(s, tokenizer);
  // built once, under a lock: another process building it meanwhile is waited for
  await ensureTokenCache({ corpus, dataset: s.dataset, dataDir: s.dataDir, tokenizer, out: dir, onProgress: hooks.onProgress });
  const cache = openTokenCache(dir, { dataset: s.dataset, tokenizer, files: corpus.files?.() });
  return { tokenizer, train: cache.source('train'), validation: cache.source('validation'), cache: dir, skippedLines: cache.manifest.skippedLines };
}

/** Where a streamed dataset's token cache is kept by default: by dataset, data directory and tokenizer. */
export function defaultCachePath(s: Pick<DataSettings, 'dataset' | 'dataDir'>, tokenizer: Tokenizer): string {
  const key = createHash('sha256').update(JSON.stringify([s.dataset, s.dataDir ?? null, tokenizer.fingerprint])).digest('hex').slice(0, 16);
  return join(cacheDirectory(), 'tokens', `${s.dataset}-${tokenizer.name}-${key}`);
}

