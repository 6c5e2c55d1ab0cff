import type { CandidateRecord, CandidateView, EvaluationRecord, NewEvaluation, NewRetrainPlan, NewRetrainRun, RetrainPlan, RetrainRun, WorkerRecord } from '@primer-search/study';

export type { CandidateRecord, CandidateView, EvaluationRecord, EvaluationStatus, NewEvaluation, NewRetrainPlan, NewRetrainRun, RetrainPlan, RetrainRun, WorkerRecord } from '@primer-search/study';

/**
 * Where a study lives, behind one asynchronous interface (a store behind a network is async).
 * Writes are durable when the returned promise settles. `SqliteStudyStore` is the
 * default; a PostgreSQL store implements the same interface.
 */
export interface StudyStore {
  readonly location: string;
  /** The study's configuration, or undefined for a new store. */
  config(): Promise<Record<string, unknown> | undefined>;
  /** Records the configuration of a new study (refused if one is recorded). */
  createStudy(config: Record<string, unknown>): Promise<void>;
  /** Replaces the recorded configuration (e.g. to extend a study with more candidates). */
  updateStudy(config: Record<string, unknown>): Promise<void>;
  /**
   * One step of the search, atomically: the candidates told so far become `told`,
   * the new candidates are added, and the strategy's state after both is saved.
   */
  advance(step: { told: number; candidates: CandidateRecord[]; strategyState: unknown }): Promise<void>;
  /** The latest strategy state and how many candidates (ids 0..told-1) it has been told. */
  latestSnapshot(): Promise<{ told: number; state: unknown } | undefined>;
  candidates(): Promise<CandidateView[]>;
  candidate(id: number): Promise<CandidateView | undefined>;
  /** The finished evaluation of a program, if any. */
  evaluationOf(hash: string): Promise<EvaluationRecord | undefined>;
  /** Writes a finished evaluation; a second one for the same hash is refused. */
  addEvaluation(e: NewEvaluation): Promise<EvaluationRecord>;
  evaluations(): Promise<EvaluationRecord[]>;
  /** Records a worker that joined the study (primer worker), with its hardware and plugins. */
  registerWorker(w: WorkerRecord): Promise<void>;
  /** The workers that joined, in the order they did. */
  workers(): Promise<WorkerRecord[]>;
  /** The retrainings of the study (`primer study retrain`), oldest first. */
  retrains(): Promise<RetrainPlan[]>;
  /** Records a new retraining's plan; its id is the next number. */
  createRetrain(plan: NewRetrainPlan): Promise<RetrainPlan>;
  /** The finished runs of one retraining (or of all), by program then seed. */
  retrainRuns(retrain?: number): Promise<RetrainRun[]>;
  /** Writes a finished run; a second one for the same retraining, program and seed is refused. */
  addRetrainRun(run: NewRetrainRun): Promise<RetrainRun>;
  /**
   * Deletes one retraining, its plan and its runs, all or nothing (runs another retraining
   * reused from it are copies and stay). The number of runs deleted; a StoreError when there is
   * no such retraining.
   */
  deleteRetrain(id: number): Promise<number>;
  /**
   * Deletes the whole study, all or nothing: a SQLite file's tables (the caller removes the
   * file), a PostgreSQL schema's study tables, and the schema itself when nothing else is left
   * in it (never `public`). Only with the controller lock held.
   */
  deleteStudy(): Promise<void>;
  /** Keeps a program's trained weights (`encodeWeights` bytes), replacing any kept before. */
  putWeights(hash: string, data: Uint8Array): Promise<void>;
  /** A program's kept weights, if any. */
  weightsOf(hash: string): Promise<Uint8Array | undefined>;
  /** Drops a program's kept weights (nothing when none are kept). */
  deleteWeights(hash: string): Promise<void>;
  /** The programs whose weights are kept. */
  weightHashes(): Promise<string[]>;
  /**
   * Optional: a short value that changes whenever the study does (its configuration, a
   * candidate, a result, a told count, a worker), read far more cheaply than the study itself:
   * what a live view polls. Stores without it are read whole to see whether anything changed.
   */
  changeToken?(): Promise<string>;
  /**
   * Takes the study's controller lock (one `primer search` or `study retrain` at a time), held
   * until released or the process ends (a crash included); a second taker is refused with a
   * StoreError naming the study. `close` releases it too.
   */
  lockController(): Promise<{ release(): Promise<void> }>;
  /** Everything the study holds, verbatim (ids, times, every kept snapshot), to copy it to another store. */
  dump(): Promise<StudyDump>;
  /** Writes a dump into this store, which must hold no study yet; all or nothing. */
  restore(dump: StudyDump): Promise<void>;
  close(): Promise<void>;
}

/** A whole study as data: what `primer study copy` moves between stores. */
export interface StudyDump {
  format: 'primer-study-dump';
  version: 1;
  config: Record<string, unknown>;
  createdAt: string;
  candidates: CandidateRecord[];
  evaluations: EvaluationRecord[];
  snapshots: Array<{ told: number; state: unknown; createdAt: string }>;
  /** Absent in dumps of studies written before workers were recorded. */
  workers?: WorkerRecord[];
  /** Absent in dumps of studies written before retrainings were recorded. */
  retrains?: RetrainPlan[];
  retrainRuns?: RetrainRun[];
  /** Kept weights (base64 of `encodeWeights` bytes); absent in dumps of studies that kept none. */
  weights?: Array<{ hash: string; data: string; createdAt: string }>;
}
