import type { TrainingEnvironment } from './environment.js';

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
  /** Validation perplexity at each checkpoint it reached. */
  curve: Array<{ step: number; tokens: number; seconds: number; perplexity: number }>;
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
  finishedAt: string;
}

export type NewEvaluation = Omit<EvaluationRecord, 'id' | 'finishedAt'>;

export interface CandidateView extends CandidateRecord {
  /** Whether the strategy has been told its result. */
  told: boolean;
  /** True when its result came from an earlier candidate with the same program. */
  reused: boolean;
  evaluation: EvaluationRecord | null;
}

