import { compileLanguageModel, type ModelEstimate } from '@primer-search/compiler';
import type { Seed } from '@primer-search/core';
import { BatchSampler, corpora, documentsOf, evaluationBatches, tokenStream, tokenizers, type Tokenizer } from '@primer-search/datasets';
import { selectBackend, type BackendChoice, type SelectedBackend } from './backends.js';
import type { Budget } from './budget.js';
import type { TrainCheckpoint } from './checkpoint.js';
import { trainModel, type Evaluation, type ProgressEvent, type TrainConfig, type TrainResult } from './train.js';

/** Everything that defines a training run besides the DNA; plain data, recorded with every result. */
export interface RunSettings {
  dataset: string;
  dataDir?: string;
  tokenizer: string;
  /** Vocabulary size for tokenizers that are trained (bpe). */
  vocabSize?: number;
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

interface PreparedData {
  tokenizer: Tokenizer;
  train: Uint32Array;
  validation: Uint32Array;
}
const prepared = new Map<string, PreparedData>();

/** Tokenized splits of a dataset, cached in this process by dataset, directory and tokenizer. */
export function prepareData(s: Pick<RunSettings, 'dataset' | 'dataDir' | 'tokenizer' | 'vocabSize'>): PreparedData {
  const key = `${s.dataset}|${s.dataDir ?? ''}|${s.tokenizer}|${s.vocabSize ?? ''}`;
  let p = prepared.get(key);
  if (!p) {
    const corpus = corpora.get(s.dataset).open({ dataDir: s.dataDir });
    const tokenizer = tokenizers.get(s.tokenizer).create({
      vocabSize: s.vocabSize,
      // trained tokenizers learn from the training split only
      trainingText: () => documentsOf(corpus).filter((d) => d.split === 'train').map((d) => d.text),
    });
    p = { tokenizer, train: tokenStream(corpus, 'train', tokenizer), validation: tokenStream(corpus, 'validation', tokenizer) };
    prepared.set(key, p);
  }
  return p;
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
  } = {},
): Promise<RunRecord> {
  const backend = hooks.backend ?? (await selectBackend(settings.backend));
  const data = prepareData(settings);
  const model = compileLanguageModel(dna, {
    tf: backend.tf,
    vocabSize: data.tokenizer.vocabSize,
    layers: settings.layers,
    dModel: settings.dModel,
    seqLen: settings.seqLen,
    seed: `${settings.seed}` as Seed,
  });
  try {
    const result = await trainModel({
      model,
      sampler: new BatchSampler(data.train, settings.batch, settings.seqLen, settings.seed),
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
        dataset: settings.dataset,
        dataDir: settings.dataDir ?? null,
        tokenizer: settings.tokenizer,
        vocabSize: settings.vocabSize ?? null,
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
  }
}
