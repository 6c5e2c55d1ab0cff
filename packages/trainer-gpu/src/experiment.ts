import { resolve } from 'node:path';
import { compileLanguageModel, type LanguageModel, type ModelEstimate, type RunOptions } from '@primer-search/compiler';
import { isOutOfMemory, isPrimerError, PrimerError, type Seed } from '@primer-search/core';
import { dnaHash } from '@primer-search/dna';
import { BatchSampler, evaluationBatches, prepareData, type PreparedData } from '@primer-search/datasets';
import type { BackendChoice, RunSettings } from '@primer-search/study';
import { nativeProductsOn, selectBackend, setBlasThreads, tensorMemoryLimit, trainingMemoryLimit, type SelectedBackend } from './backends/index.js';
import type { TrainCheckpoint } from './checkpoint.js';
import { DataParallel } from './data-parallel.js';
import { trainModel, type Evaluation, type ProgressEvent, type TrainResult } from './train.js';


export interface RunRecord {
  settings: RunSettings;
  backend: { choice: BackendChoice; tfBackend: string; tfjs: string; products: string };
  model: ModelEstimate;
  data: { trainTokens: number; validationTokens: number; vocabSize: number };
  result: TrainResult;
}

/** What a training checkpoint records of the run (`TrainCheckpoint.context`): the model by DNA hash, the data and the sizes. */
export interface RunContext {
  dna: string;
  evalWindows: number;
  dataset: string;
  dataDir: string | null;
  tokenizer: string;
  vocabSize: number | null;
  tokenizerModel: string | null;
  batchMode: 'packed' | 'sentence';
  layers: number;
  dModel: number;
  seqLen: number;
  batch: number;
  seed: number;
}

/** A path as an absolute one (null for none): a run given `models/sp.model` and one given its full path read the same file. */
const absolute = (path: string | null | undefined) => (typeof path === 'string' ? resolve(path) : null);

/**
 * A checkpoint's context with its paths made absolute, so that one written with relative paths
 * (by an earlier version, or a caller that gave them) is the same run as its continuation with
 * absolute ones, read from the same folder.
 */
function withAbsolutePaths(c: TrainCheckpoint): TrainCheckpoint {
  const ctx = c.context as Partial<RunContext> | undefined;
  if (!ctx) return c;
  return { ...c, context: { ...ctx, ...(typeof ctx.dataDir === 'string' ? { dataDir: resolve(ctx.dataDir) } : {}), ...(typeof ctx.tokenizerModel === 'string' ? { tokenizerModel: resolve(ctx.tokenizerModel) } : {}) } };
}

export function runContext(settings: RunSettings, dna: string): RunContext {
  return {
    dna,
    evalWindows: settings.evalWindows,
    dataset: settings.dataset,
    dataDir: absolute(settings.dataDir),
    tokenizer: settings.tokenizer,
    vocabSize: settings.vocabSize ?? null,
    tokenizerModel: absolute(settings.tokenizerModel),
    batchMode: settings.batchMode ?? 'packed',
    layers: settings.layers,
    dModel: settings.dModel,
    seqLen: settings.seqLen,
    batch: settings.batch,
    seed: settings.seed,
  };
}

/** The run settings a checkpoint's context describes, with its budget and training configuration. */
export function settingsFromContext(ctx: RunContext, base: Omit<RunSettings, 'budget'>, budget: RunSettings['budget'], train: RunSettings['train']): RunSettings {
  return {
    ...base,
    dataset: ctx.dataset,
    dataDir: ctx.dataDir ?? undefined,
    tokenizer: ctx.tokenizer,
    vocabSize: ctx.vocabSize ?? undefined,
    tokenizerModel: ctx.tokenizerModel ?? undefined,
    batchMode: ctx.batchMode,
    layers: ctx.layers,
    dModel: ctx.dModel,
    seqLen: ctx.seqLen,
    batch: ctx.batch,
    seed: ctx.seed,
    evalWindows: ctx.evalWindows,
    budget,
    train,
  };
}

/**
 * Compiles `dna` into an LM, trains it under `settings` on the chosen backend and returns
 * the full record. The model is disposed afterwards.
 */
async function runExperimentUnguarded(
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
    /** How the model is compiled (fused projections, stacked branches, fused kernels; default all on): replicas compile it the same way. */
    runOptions?: RunOptions;
    /** Called with the trained model (before it is disposed), its data and the result: e.g. to export it. */
    onTrained?: (model: LanguageModel, data: PreparedData, result: TrainResult) => void | Promise<void>;
  } = {},
): Promise<RunRecord> {
  const backend = hooks.backend ?? (await selectBackend(settings.backend));
  const data = await prepareData(settings);
  const model = compileLanguageModel(dna, {
    ...hooks.runOptions,
    tf: backend.tf,
    vocabSize: data.tokenizer.vocabSize,
    layers: settings.layers,
    dModel: settings.dModel,
    seqLen: settings.seqLen,
    seed: `${settings.seed}` as Seed,
    // refused before allocation if a step would not fit this backend's memory
    batch: settings.batch,
    limits: { maxTrainingBytes: trainingMemoryLimit(backend.choice), maxTensorBytes: tensorMemoryLimit(backend.choice) },
  });
  // no more threads than rows in a batch; on a GPU, one (its device is the parallelism)
  const replicas = backend.tfBackend === 'webgpu' ? 1 : Math.min(settings.dataParallel ?? 1, settings.batch);
  // replicas take a core each: the BLAS library's own threads (process-wide) would only contend with them
  const blasThreads = replicas > 1 && nativeProductsOn() ? setBlasThreads(1) : undefined;
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
            runOptions: hooks.runOptions,
            maxRows: Math.ceil(settings.batch / replicas),
          },
          replicas,
          [...model.namedVariables] as never,
        ).catch((e) => {
          model.dispose();
          if (blasThreads !== undefined) setBlasThreads(blasThreads);
          throw e;
        })
      : undefined;
  try {
    const result = await trainModel({
      parallel,
      model,
      // a synthetic task's windows start where an example does
      sampler: new BatchSampler(data.train, settings.batch, settings.seqLen, settings.seed, data.queryPositions ? 'sentence' : settings.batchMode),
      evaluation: evaluationBatches(data.validation, settings.batch, settings.seqLen, settings.evalWindows),
      queryPositions: data.queryPositions,
      budget: settings.budget,
      config: settings.train,
      onProgress: hooks.onProgress,
      onEvaluation: hooks.onEvaluation,
      checkpoint: hooks.checkpoint,
      resume: hooks.resume && withAbsolutePaths(hooks.resume),
      signal: hooks.signal,
      // what must match for a resumed run to continue the same experiment (the budget may change)
      context: runContext(settings, dnaHash(model.blocks[0]!.plan.dna, { analysis: model.blocks[0]!.plan.analysis })) as unknown as Record<string, unknown>,
    });
    await hooks.onTrained?.(model, data, result);
    return {
      settings,
      backend: { choice: backend.choice, tfBackend: backend.tfBackend, tfjs: (backend.tf as unknown as { version_core: string }).version_core, products: backend.products },
      model: model.estimate,
      data: { trainTokens: data.train.length, validationTokens: data.validation.length, vocabSize: data.tokenizer.vocabSize },
      result,
    };
  } finally {
    model.dispose();
    await parallel?.close();
    if (blasThreads !== undefined) setBlasThreads(blasThreads);
  }
}

/**
 * Trains `dna` with `settings` (see the options of each hook above), and reports running out of
 * memory as what it is, the program's failure, in one line: a WebAssembly heap overrun or
 * aborted (past the 4 GiB wasm limit), V8's heap, an allocation refused. Never a stack trace.
 */
export async function runExperiment(...args: Parameters<typeof runExperimentUnguarded>): Promise<RunRecord> {
  try {
    return await runExperimentUnguarded(...args);
  } catch (e) {
    if (!isOutOfMemory(e) || isPrimerError(e)) throw e;
    const message = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    throw new PrimerError('OUT_OF_MEMORY', `out of memory: training this program needs more memory than the backend has (${message})`);
  }
}
