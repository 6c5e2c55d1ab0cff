import { compileLanguageModel, type ModelEstimate } from '@primer-search/compiler';
import type { Seed } from '@primer-search/core';
import { dnaHash } from '@primer-search/dna';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import {
  BatchSampler,
  cacheDirectory,
  corpora,
  createTokenizer,
  evaluationBatches,
  openTokenCache,
  ensureTokenCache,
  tokenStream,
  type BatchMode,
  type PrepareProgress,
  type Tokenizer,
  type Tokens,
} from '@primer-search/datasets';
import { selectBackend, trainingMemoryLimit, type BackendChoice, type SelectedBackend } from './backends.js';
import type { Budget } from './budget.js';
import type { TrainCheckpoint } from './checkpoint.js';
import { DataParallel } from './data-parallel.js';
import { trainModel, type Evaluation, type ProgressEvent, type TrainConfig, type TrainResult } from './train.js';

/** Everything that defines a training run besides the DNA; plain data, recorded with every result. */
export interface RunSettings {
  dataset: string;
  dataDir?: string;
  tokenizer: string;
  /** Vocabulary size for tokenizers that are trained (bpe). */
  vocabSize?: number;
  /** The model file of a tokenizer loaded from one (sentencepiece). */
  tokenizerModel?: string;
  /** A token cache built by `primer data prepare` (default for streamed datasets: one kept in the cache directory). */
  cache?: string;
  /** Count and skip unreadable lines of the dataset files instead of stopping. */
  skipBadLines?: boolean;
  /** How training windows are cut (default packed). */
  batchMode?: BatchMode;
  /** Threads that share each step's batch (data parallelism; default 1). Does not change the result. */
  dataParallel?: number;
  layers: number;
  dModel: number;
  seqLen: number;
  batch: number;
  budget: Budget;
  seed: number;
  /** Validation windows of seqLen tokens scored at each evaluation (the same for every model). */
  evalWindows: number;
  train: Partial<TrainConfig>;
  backend?: BackendChoice;
}

export const DEFAULT_RUN_SETTINGS: Omit<RunSettings, 'budget'> = {
  dataset: 'brown',
  tokenizer: 'byte',
  layers: 2,
  dModel: 64,
  seqLen: 64,
  batch: 16,
  seed: 1,
  evalWindows: 64,
  train: {},
};

export interface RunRecord {
  settings: RunSettings;
  backend: { choice: BackendChoice; tfBackend: string };
  model: ModelEstimate;
  data: { trainTokens: number; validationTokens: number; vocabSize: number };
  result: TrainResult;
}

export interface PreparedData {
  tokenizer: Tokenizer;
  train: Tokens;
  validation: Tokens;
  /** Where the tokens come from: memory, or the token cache at this path. */
  cache?: string;
  /** Bad lines of the dataset files skipped when the cache was built (with skipBadLines). */
  skippedLines?: number;
}
export type DataSettings = Pick<RunSettings, 'dataset' | 'dataDir' | 'tokenizer' | 'vocabSize' | 'tokenizerModel' | 'cache' | 'skipBadLines'>;
const prepared = new Map<string, Promise<PreparedData>>();

/**
 * Tokenized splits of a dataset, cached in this process. Small corpora (Brown) are tokenized
 * in memory; streamed ones (LM1B, C4) are read through a token cache, built on first use
 * (with `onProgress`) in the cache directory unless `cache` names one.
 */
export function prepareData(s: DataSettings, hooks: { onProgress?: (p: PrepareProgress) => void } = {}): Promise<PreparedData> {
  const key = JSON.stringify([s.dataset, s.dataDir, s.tokenizer, s.vocabSize, s.tokenizerModel, s.cache, s.skipBadLines]);
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

/**
 * Compiles `dna` into an LM, trains it under `settings` on the chosen backend and returns
 * the full record. The model is disposed afterwards.
 */
export async function runExperiment(
  dna: unknown,
  settings: RunSettings,
  hooks: {
    onProgress?: (e: ProgressEvent) => void;
    onEvaluation?: (e: Evaluation) => void;
    backend?: SelectedBackend;
    checkpoint?: { path: string; everySeconds?: number };
    resume?: TrainCheckpoint;
    signal?: AbortSignal;
    /** Modules registering primitives the DNA uses (already imported here): data-parallel replicas import them too. */
    plugins?: string[];
  } = {},
): Promise<RunRecord> {
  const backend = hooks.backend ?? (await selectBackend(settings.backend));
  const data = await prepareData(settings);
  const model = compileLanguageModel(dna, {
    tf: backend.tf,
    vocabSize: data.tokenizer.vocabSize,
    layers: settings.layers,
    dModel: settings.dModel,
    seqLen: settings.seqLen,
    seed: `${settings.seed}` as Seed,
    // refused before allocation if a step would not fit this backend's memory
    batch: settings.batch,
    limits: { maxTrainingBytes: trainingMemoryLimit(backend.choice) },
  });
  // no more threads than rows in a batch
  const replicas = Math.min(settings.dataParallel ?? 1, settings.batch);
  const parallel =
    replicas > 1
      ? await DataParallel.start(
          {
            dna,
            vocabSize: data.tokenizer.vocabSize,
            layers: settings.layers,
            dModel: settings.dModel,
            seqLen: settings.seqLen,
            seed: `${settings.seed}`,
            backend: backend.choice,
            plugins: hooks.plugins,
            maxRows: Math.ceil(settings.batch / replicas),
          },
          replicas,
          [...model.namedVariables] as never,
        ).catch((e) => {
          model.dispose();
          throw e;
        })
      : undefined;
  try {
    const result = await trainModel({
      parallel,
      model,
      sampler: new BatchSampler(data.train, settings.batch, settings.seqLen, settings.seed, settings.batchMode),
      evaluation: evaluationBatches(data.validation, settings.batch, settings.seqLen, settings.evalWindows),
      budget: settings.budget,
      config: settings.train,
      onProgress: hooks.onProgress,
      onEvaluation: hooks.onEvaluation,
      checkpoint: hooks.checkpoint,
      resume: hooks.resume,
      signal: hooks.signal,
      // what must match for a resumed run to continue the same experiment (the budget may change)
      context: {
        dna: dnaHash(model.blocks[0]!.plan.dna, { analysis: model.blocks[0]!.plan.analysis }),
        evalWindows: settings.evalWindows,
        dataset: settings.dataset,
        dataDir: settings.dataDir ?? null,
        tokenizer: settings.tokenizer,
        vocabSize: settings.vocabSize ?? null,
        tokenizerModel: settings.tokenizerModel ?? null,
        batchMode: settings.batchMode ?? 'packed',
        layers: settings.layers,
        dModel: settings.dModel,
        seqLen: settings.seqLen,
        batch: settings.batch,
        seed: settings.seed,
      },
    });
    return {
      settings,
      backend: { choice: backend.choice, tfBackend: backend.tfBackend },
      model: model.estimate,
      data: { trainTokens: data.train.length, validationTokens: data.validation.length, vocabSize: data.tokenizer.vocabSize },
      result,
    };
  } finally {
    model.dispose();
    await parallel?.close();
  }
}
