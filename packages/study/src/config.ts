import { createHash } from 'node:crypto';
import type { Dna } from '@primer-search/dna';
import type { PluginIdentity } from './environment.js';
import type { RunSettings } from './settings.js';

/** Everything that defines a study; recorded in the store when it is created. */
export interface StudyConfig {
  format: 'primer-study';
  version: 1;
  /** Made when the study is created (a random UUID): what tells this study's queue jobs from another's. Absent in studies from before (see `studyKey`). */
  studyId?: string;
  strategy: string;
  strategyOptions: Record<string, unknown>;
  /** What the seed DNA is (a baseline name or a file), for display. */
  seedModel: string;
  seedDna: Dna;
  /** Seeds the strategy (and, through settings.seed, the weights and batches of every candidate). */
  seed: number;
  /** Candidates to propose in all, the seed included. */
  candidates: number;
  /**
   * Candidates out for evaluation at once. Candidate k is proposed right after the result of
   * candidate k - inFlight has been told, and results are told in proposal order, so a
   * search with a step or token budget is reproducible whatever the timing.
   */
  inFlight: number;
  /** Fractions of the budget where candidates below the median so far stop (the paper's hurdles). */
  hurdles: number[];
  /** Results needed at a hurdle before it stops anyone. */
  hurdleMinSamples: number;
  settings: RunSettings;
  /**
   * The plugin modules the study was created with (plugins registering primitives or
   * strategies), as given then: a record, never imported from here (see `studyPluginRefusal`).
   */
  plugins: string[];
  /** What those plugins were (name, version or code hash) where the study was created; absent in studies from before. */
  pluginIds?: PluginIdentity[];
  /** A candidate still running after this many seconds is stopped and recorded as failed (timeout). */
  candidateTimeoutSeconds: number;
  /**
   * Behaviour de-duplication: a program computing the same function as one evaluated before
   * (same outputs on a fixed input with fixed weights) reuses its result. Absent (studies from
   * before it existed): off.
   */
  dedupeBehaviour?: boolean;
  /** The trained weights of this many best completed candidates are kept in the study (primer export uses them); absent or 0: none. */
  keepWeights?: number;
  /** How candidates reach training: local worker processes, or the study's queue for `primer worker` (a resume does the same unless told otherwise). Absent: local. */
  dispatch?: 'local' | 'queue';
  /**
   * What the search optimises (`OBJECTIVES` names, perplexity among them); more than one needs a
   * multi-objective strategy (pareto). Absent: perplexity alone.
   */
  objectives?: string[];
  /** Constraints every candidate must keep, as written (`parseConstraint`), decided before training; absent: none. */
  constraints?: string[];
  /**
   * The data the study trains on, as the first controller to prepare them found them (the
   * tokenizer's fingerprint, which a trained tokenizer takes from its training text, and the
   * token counts): a resume or a retraining on other data is refused. Absent in studies from
   * before it was recorded (the next controller records it).
   */
  data?: DataIdentity;
}

export interface DataIdentity {
  tokenizer: string;
  trainTokens: number;
  validationTokens: number;
}

/**
 * What identifies a study's jobs: its id, or for a study from before ids, a hash of what it was
 * created with (its candidate count left out: extending a study keeps its jobs).
 */
export function studyKey(config: StudyConfig): string {
  if (config.studyId) return config.studyId;
  const { candidates: _candidates, ...rest } = config;
  return `config:${createHash('sha256').update(JSON.stringify(rest)).digest('hex').slice(0, 32)}`;
}
