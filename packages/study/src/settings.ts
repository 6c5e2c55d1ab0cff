/** The settings of one training run, as plain data: what a study records for every candidate. */
import type { Budget } from './budget.js';

export type OptimizerName = 'adam' | 'adafactor';

/** The backends tried when none is forced, fastest first (the first that starts is used). */
export const BACKENDS = ['tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu'] as const;
/**
 * The backends `--backend auto` tries, fastest first: the same, with a GPU through WebGPU
 * after CUDA's and before TensorFlow's CPU kernels (a software WebGPU adapter is passed over:
 * it is slower than wasm).
 */
export const AUTO_BACKENDS = ['tfjs-node-gpu', 'webgpu', 'tfjs-node', 'wasm', 'cpu'] as const;
/**
 * Every built-in backend: the automatic ones, and those only chosen by name (`webgpu`: WebGPU
 * through Dawn, on a GPU or on Mesa's llvmpipe; `wasm-xnnpack`: our kernels, products on
 * XNNPACK even where OpenBLAS is installed; `wasm-stock`: tfjs's own wasm kernels, plus the
 * training kernels stock wasm lacks).
 */
export const BUILTIN_BACKENDS = ['tfjs-node-gpu', 'tfjs-node', 'webgpu', 'wasm', 'wasm-xnnpack', 'wasm-stock', 'cpu'] as const;
export type BuiltinBackend = (typeof BUILTIN_BACKENDS)[number];
/** What `--backend` takes: a built-in backend, or `auto` (`AUTO_BACKENDS`, the first that starts). */
export const BACKEND_OPTIONS = [...BUILTIN_BACKENDS, 'auto'] as const;
/** A backend's name: a built-in one, `auto`, or one a plugin registers (`@primer-search/trainer-gpu`'s `backends`). */
export type BackendChoice = BuiltinBackend | 'auto' | (string & {});

/** How training windows are cut: anywhere in the concatenated documents, or at a document start. */
export type BatchMode = 'packed' | 'sentence';

export interface TrainConfig {
  optimizer: OptimizerName;
  /** Peak learning rate (reached at the end of warmup). */
  learningRate: number;
  warmupSteps: number;
  /** Clip gradients to this global norm; 0 turns clipping off. */
  clipNorm: number;
  /** Fractions of the budget (0 < f < 1) at which to evaluate besides the end (the search's hurdles). */
  checkpoints: number[];
}

export const DEFAULT_TRAIN_CONFIG: TrainConfig = {
  optimizer: 'adam',
  learningRate: 2e-3,
  warmupSteps: 100,
  clipNorm: 1,
  checkpoints: [0.25, 0.5, 0.75],
};

/** Everything that defines a training run besides the DNA; plain data, recorded with every result. */
export interface RunSettings {
  dataset: string;
  dataDir?: string;
  tokenizer: string;
  /** Vocabulary size for tokenizers that are trained (bpe), and of the mqar dataset. */
  vocabSize?: number;
  /** The mqar dataset: key-value pairs per example (default 8). */
  mqarPairs?: number;
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
