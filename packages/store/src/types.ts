import type { CandidateRecord, CandidateView, EvaluationRecord, NewEvaluation } from '@primer-search/study';

export type { CandidateRecord, CandidateView, EvaluationRecord, EvaluationStatus, NewEvaluation } from '@primer-search/study';

/**
 * Where a study lives. Writes are durable when the call returns. `SqliteStudyStore` is the
 * default; a PostgreSQL store implements the same interface.
 */
export interface StudyStore {
  readonly location: string;
  /** The study's configuration, or undefined for a new store. */
  config(): Record<string, unknown> | undefined;
  /** Records the configuration of a new study (refused if one is recorded). */
  createStudy(config: Record<string, unknown>): void;
  /** Replaces the recorded configuration (e.g. to extend a study with more candidates). */
  updateStudy(config: Record<string, unknown>): void;
  /**
   * One step of the search, atomically: the candidates told so far become `told`,
   * the new candidates are added, and the strategy's state after both is saved.
   */
  advance(step: { told: number; candidates: CandidateRecord[]; strategyState: unknown }): void;
  /** The latest strategy state and how many candidates (ids 0..told-1) it has been told. */
  latestSnapshot(): { told: number; state: unknown } | undefined;
  candidates(): CandidateView[];
  candidate(id: number): CandidateView | undefined;
  /** The finished evaluation of a program, if any. */
  evaluationOf(hash: string): EvaluationRecord | undefined;
  /** Writes a finished evaluation; a second one for the same hash is refused. */
  addEvaluation(e: NewEvaluation): EvaluationRecord;
  evaluations(): EvaluationRecord[];
  close(): void;
}
