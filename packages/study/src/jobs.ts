import type { PluginIdentity } from './environment.js';
import type { NewEvaluation } from './records.js';
import type { RunSettings } from './settings.js';

/** One candidate to train, as sent to a worker: plain JSON. */
export interface EvaluationJob {
  /** The job's number: the candidate's id in a search; a retraining's runs have numbers of their own (see `retrainJobNumber`). */
  candidate: number;
  /** How logs name it (default `candidate N`). */
  label?: string;
  /** The study it belongs to (`studyKey`): part of the job's identity on a queue, so no other study's result is taken for it. */
  study?: string;
  hash: string;
  dna: unknown;
  settings: RunSettings;
  /** Where the hurdles sit (fractions of the budget) and the perplexity to beat at each (null: no threshold yet). */
  hurdles: Array<{ fraction: number; threshold: number | null }>;
  /** Fractions of the budget to evaluate at besides the end (default: the hurdles'). */
  checkpoints?: number[];
  /**
   * Behaviour de-duplication: the behaviours of the programs evaluated before this one (see
   * `programBehaviour`). The worker computes this program's behaviour first; when it is one of
   * these, it answers `equivalent` without training. Absent: de-duplication off.
   */
  behaviours?: string[];
  /**
   * A folder, on the worker's machine, where the run keeps its training checkpoint every
   * `everySeconds` (default 120): a job that finds one there of the same model, data, settings and
   * budget continues from it (under a FLOP, step or token budget, bit for bit the run it would have
   * been); one of another run is written over. Only for jobs without hurdles (a retraining's runs):
   * with hurdles it is ignored. The controller removes it once the run's outcome is recorded.
   * Never sent through a queue.
   */
  checkpoint?: { path: string; everySeconds?: number };
  /** Send the trained weights back with a completed result (`encodeWeights` bytes in base64), for the study to keep. */
  keepWeights?: boolean;
  /** Modules to import first (plugins registering primitives). */
  plugins: string[];
  /** What those plugins are on the controller's machine, so a remote worker can check it has the same (absent: not checked). */
  pluginIds?: PluginIdentity[];
}

/**
 * What a worker reports back: the evaluation as the store keeps it, less what the controller
 * adds (wall time, budget, machine). `reason` starts with its category: invalid, diverged,
 * error, crashed, out of memory, timeout.
 */
export type JobResult = Omit<NewEvaluation, 'wallSeconds' | 'budget' | 'machine'> & {
  /** The host that trained it, when not the controller's (a remote worker). */
  machine?: string;
  /** The vocabulary's size (absent when training never started). */
  vocabSize?: number;
  /** The trained weights, when the job asked for them and training completed (base64 of `encodeWeights` bytes). */
  weights?: string;
  /** The step of the job's checkpoint (`EvaluationJob.checkpoint`) the run continued from, when it did. */
  resumedAt?: number;
};

/**
 * A candidate that could not be trained for a reason that is not its program's (see
 * `blameOf`): never stored as the program's result. The search stops and says why.
 */
export interface EnvironmentFailure {
  candidate: number;
  hash: string;
  status: 'environment';
  reason: string;
}

/** A program that computes the same function as one evaluated before (one of the job's `behaviours`): not trained. */
export interface EquivalentOutcome {
  candidate: number;
  hash: string;
  status: 'equivalent';
  behaviour: string;
}

/** What a worker sends back for a job. */
export type JobOutcome = JobResult | EnvironmentFailure | EquivalentOutcome;

export const isEnvironmentFailure = (o: JobOutcome): o is EnvironmentFailure => o.status === 'environment';
/** How logs and messages name a job: its label, or `candidate N`. */
export const jobName = (job: Pick<EvaluationJob, 'candidate' | 'label'>): string => job.label ?? `candidate ${job.candidate}`;

export const isEquivalent = (o: JobOutcome): o is EquivalentOutcome => o.status === 'equivalent';

export function environmentFailure(job: Pick<EvaluationJob, 'candidate' | 'hash'>, reason: string): EnvironmentFailure {
  return { candidate: job.candidate, hash: job.hash, status: 'environment', reason };
}

export interface JobProgress {
  candidate: number;
  /** 0..1 of the budget. */
  progress: number;
  step: number;
  trainLoss: number;
  /** Tokens trained and seconds of training so far, and the backend training on (absent from workers of older versions). */
  tokens?: number;
  seconds?: number;
  backend?: string;
}

/** What a job had trained when it failed outside its training's own record: its last progress, and the backend it ran on where known. */
export interface TrainedSoFar {
  steps: number;
  tokens: number;
  trainSeconds: number;
  backend?: string | null;
}

/** What `progress` says was trained (undefined: nothing, or nothing known). */
export function trainedSoFar(progress: JobProgress | undefined): TrainedSoFar | undefined {
  if (!progress || !(progress.step > 0)) return undefined;
  return { steps: progress.step, tokens: progress.tokens ?? 0, trainSeconds: progress.seconds ?? 0, backend: progress.backend ?? null };
}

export const FAILURE_CATEGORIES = ['invalid', 'constraint', 'diverged', 'out of memory', 'timeout', 'crashed', 'error'] as const;

/** The category a failure reason starts with. */
export function failureCategory(reason: string): string {
  return FAILURE_CATEGORIES.find((c) => reason.startsWith(`${c}:`) || reason === c) ?? 'error';
}

/**
 * A failure recorded for the job rather than by its training (a timeout, a crashed worker, an
 * exception): with `trained`, what it had trained by then (its last progress), so that a study
 * counts that training and its cost; without, nothing.
 */
export function failedResult(job: Pick<EvaluationJob, 'candidate' | 'hash' | 'hurdles'>, reason: string, trained?: TrainedSoFar): JobResult {
  return {
    candidate: job.candidate,
    hash: job.hash,
    status: 'failed',
    fitness: null,
    hurdle: null,
    reason,
    curve: [],
    atHurdles: job.hurdles.map(() => null),
    steps: trained?.steps ?? 0,
    tokens: trained?.tokens ?? 0,
    trainSeconds: trained?.trainSeconds ?? 0,
    backend: trained?.backend ?? null,
    environment: null,
    parameters: null,
  };
}

