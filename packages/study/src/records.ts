import type { TrainingEnvironment } from './environment.js';
import type { RunSettings } from './settings.js';

/** A proposed candidate as the store keeps it. */
export interface CandidateRecord {
  id: number;
  /** Canonical hash: candidates with equal hashes share one evaluation. */
  hash: string;
  parent: number | null;
  /** The mutations that made it from its parent (JSON from the strategy). */
  mutations: unknown[];
  dna: unknown;
  /** Hurdle thresholds fixed when it was proposed: perplexity to beat at each hurdle, or null while too few results exist. */
  hurdles: Array<number | null>;
  createdAt: string;
}

export type EvaluationStatus = 'completed' | 'hurdle' | 'failed';

/** One training of one program (by canonical hash), written once it has finished. */
export interface EvaluationRecord {
  id: number;
  hash: string;
  /** The candidate that was trained; later candidates with this hash reuse the result. */
  candidate: number;
  status: EvaluationStatus;
  /** Validation perplexity (at the end, or at the hurdle it stopped at). */
  fitness: number | null;
  hurdle: number | null;
  /** Why it failed. */
  reason: string | null;
  /** Validation perplexity at each checkpoint it reached (flops: the training FLOPs spent by then; absent in older records). */
  curve: CurveRecord[];
  /** Validation perplexity at each hurdle it reached (null past where it stopped). */
  atHurdles: Array<number | null>;
  steps: number;
  tokens: number;
  trainSeconds: number;
  /** Seconds from dispatch to result, including process start, compile and evaluation. */
  wallSeconds: number;
  budget: string;
  backend: string | null;
  machine: string;
  /** Where and with what it was trained (null: not known, e.g. a worker that crashed, or a study written before this was recorded). */
  environment: TrainingEnvironment | null;
  parameters: number | null;
  /**
   * The program's behaviour: a hash of what its compiled block outputs on a fixed random input
   * with fixed random weights (null: not computed, e.g. de-duplication off, a failure before,
   * or outputs that are not finite). Programs with equal behaviours compute the same function.
   */
  behaviour?: string | null;
  /**
   * Set when this result was not trained but reused from the program with this hash, which
   * has the same behaviour (a different program computing the same function, e.g. x*2 and x+x).
   */
  sameAs?: string | null;
  finishedAt: string;
}

/**
 * Whether a result records training: steps, seconds, or the backend it trained on (a run that
 * diverged at its first step records its backend). A program refused before its first step
 * (invalid, outside a constraint, over the memory estimate) records none; a failure recorded for
 * the job (a timeout, a crashed worker, an exception: `failedResult`) records what its last
 * progress report said it had trained, so none when it failed before its first report (or was
 * recorded before these were kept), though it may have trained for a while. Results reused from another program (`sameAs`, or another
 * candidate's) are the caller's to leave out.
 */
export function trainingRecorded(e: Pick<EvaluationRecord, 'steps' | 'trainSeconds' | 'backend' | 'environment'>): boolean {
  return e.steps > 0 || e.trainSeconds > 0 || (e.environment?.backend ?? e.backend) != null;
}

/** One validation evaluation of a run, as studies keep it. */
export interface CurveRecord {
  step: number;
  tokens: number;
  seconds: number;
  perplexity: number;
  flops?: number;
  /** The in-context score at this evaluation: validation loss over the first eighth of a window's positions minus over the last eighth, in nats (absent in older records). */
  inContext?: number;
  /** A synthetic recall task (mqar): the share of queries answered right at this evaluation. */
  recall?: number;
}

export type NewEvaluation = Omit<EvaluationRecord, 'id' | 'finishedAt'>;

export interface CandidateView extends CandidateRecord {
  /** Whether the strategy has been told its result. */
  told: boolean;
  /** True when its result came from an earlier candidate with the same program. */
  reused: boolean;
  evaluation: EvaluationRecord | null;
}


/** One program of a retraining: a candidate of the study (or a reference model named by the user). */
export interface RetrainProgram {
  /** How tables name it: `candidate 37`, `seed (vanilla)`, or a baseline's name. */
  label: string;
  hash: string;
  /** The candidate it is (null: a reference model that is not one of the study's candidates). */
  candidate: number | null;
  /** Its perplexity in the search (null: not a candidate, or not completed there). */
  searchFitness: number | null;
  dna: unknown;
}

/** What `primer study retrain` retrains: fixed when it starts, so that a resumed retraining trains the same programs. */
export interface RetrainPlan {
  id: number;
  /** The programs chosen: the best `top` distinct programs of the study (by search perplexity), the seed, and any references (0 in a fidelity sample). */
  top: number;
  /**
   * Set for a fidelity measurement (`primer study fidelity`): the number of the study's distinct
   * completed programs chosen spread over its range of search perplexity, the seed and the best
   * always among them (fidelity.ts `fidelitySample`), instead of the `top` best. Absent: a retraining.
   */
  sample?: number;
  /** Set for a retraining of a Pareto search's front (`primer study retrain --front`): the seed and the front's programs, instead of the `top` best. */
  front?: boolean;
  /** The budget per run, as written (e.g. "5e12flops"). */
  budget: string;
  seeds: number[];
  /** The reference models asked for, by name (each is among the programs unless it is one of the study's). */
  references: string[];
  /** The settings every run uses (the study's, with this budget; each run's seed from `seeds`). */
  settings: RunSettings;
  /** programs[0] is the reference speedups are measured against (the study's seed). */
  programs: RetrainProgram[];
  createdAt: string;
}

export type NewRetrainPlan = Omit<RetrainPlan, 'id' | 'createdAt'>;

/** One training of one program of a retraining with one seed, written once it has finished. */
export interface RetrainRun {
  retrain: number;
  /** Index into the plan's programs. */
  program: number;
  seed: number;
  status: 'completed' | 'failed';
  /** Final validation perplexity. */
  fitness: number | null;
  reason: string | null;
  curve: CurveRecord[];
  steps: number;
  tokens: number;
  trainSeconds: number;
  wallSeconds: number;
  backend: string | null;
  machine: string;
  environment: TrainingEnvironment | null;
  parameters: number | null;
  /** The vocabulary's size (a uniform guess over it is the untrained start of speedup curves). */
  vocabSize: number | null;
  /**
   * Set when the run is another retraining's, reused: that retraining had the same settings and
   * trained the same program with the same seed (absent or null: trained for this retraining).
   * `study` is set when that retraining is another study's (`primer study retrain --reuse-from`):
   * where it was, as given (passwords masked), with its `studyId` where it had one; absent: this
   * study's.
   */
  reusedFrom?: { retrain: number; program: number; study?: string; studyId?: string } | null;
  finishedAt: string;
}

export type NewRetrainRun = Omit<RetrainRun, 'finishedAt'>;
