import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { PrimerError } from '@primer-search/core';
import type { CandidateRecord, CandidateView, EvaluationRecord, NewEvaluation, StudyStore } from './types.js';

/** Schema changes, in order; the store applies those it has not yet applied, each in a transaction. */
export const MIGRATIONS: Array<{ version: number; description: string; sql: string }> = [
  {
    version: 1,
    description: 'study, candidates, evaluations, strategy snapshots',
    sql: `
      CREATE TABLE study (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        config TEXT NOT NULL,
        created_at TEXT NOT NULL
      );
      CREATE TABLE candidates (
        id INTEGER PRIMARY KEY,
        hash TEXT NOT NULL,
        parent INTEGER REFERENCES candidates(id),
        mutations TEXT NOT NULL,
        dna TEXT NOT NULL,
        hurdles TEXT NOT NULL,
        created_at TEXT NOT NULL
      );
      CREATE INDEX candidates_hash ON candidates(hash);
      CREATE TABLE evaluations (
        id INTEGER PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,
        candidate INTEGER NOT NULL REFERENCES candidates(id),
        status TEXT NOT NULL CHECK (status IN ('completed', 'hurdle', 'failed')),
        fitness REAL,
        hurdle INTEGER,
        reason TEXT,
        curve TEXT NOT NULL,
        at_hurdles TEXT NOT NULL,
        steps INTEGER NOT NULL,
        tokens INTEGER NOT NULL,
        train_seconds REAL NOT NULL,
        wall_seconds REAL NOT NULL,
        budget TEXT NOT NULL,
        backend TEXT,
        machine TEXT NOT NULL,
        parameters INTEGER,
        finished_at TEXT NOT NULL
      );
      CREATE TABLE strategy_snapshots (
        told INTEGER PRIMARY KEY,
        state TEXT NOT NULL,
        created_at TEXT NOT NULL
      );
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS.at(-1)!.version;

/** Older snapshots are thinned to one every this many candidates (the latest is always kept). */
const SNAPSHOT_EVERY = 50;

export class StoreError extends PrimerError {
  constructor(message: string) {
    super('STORE', message);
  }
}

interface EvaluationRow {
  id: number;
  hash: string;
  candidate: number;
  status: EvaluationRecord['status'];
  fitness: number | null;
  hurdle: number | null;
  reason: string | null;
  curve: string;
  at_hurdles: string;
  steps: number;
  tokens: number;
  train_seconds: number;
  wall_seconds: number;
  budget: string;
  backend: string | null;
  machine: string;
  parameters: number | null;
  finished_at: string;
}

interface CandidateRow {
  id: number;
  hash: string;
  parent: number | null;
  mutations: string;
  dna: string;
  hurdles: string;
  created_at: string;
}

const evaluationOfRow = (r: EvaluationRow): EvaluationRecord => ({
  id: r.id,
  hash: r.hash,
  candidate: r.candidate,
  status: r.status,
  fitness: r.fitness,
  hurdle: r.hurdle,
  reason: r.reason,
  curve: JSON.parse(r.curve),
  atHurdles: JSON.parse(r.at_hurdles),
  steps: r.steps,
  tokens: r.tokens,
  trainSeconds: r.train_seconds,
  wallSeconds: r.wall_seconds,
  budget: r.budget,
  backend: r.backend,
  machine: r.machine,
  parameters: r.parameters,
  finishedAt: r.finished_at,
});

const candidateOfRow = (r: CandidateRow): CandidateRecord => ({
  id: r.id,
  hash: r.hash,
  parent: r.parent,
  mutations: JSON.parse(r.mutations),
  dna: JSON.parse(r.dna),
  hurdles: JSON.parse(r.hurdles),
  createdAt: r.created_at,
});

/**
 * A study in one SQLite file (better-sqlite3): write-ahead logging, every write in a
 * transaction and synced before the call returns, a schema version with migrations.
 * One process writes a study at a time; `study show` may read it meanwhile.
 */
export class SqliteStudyStore implements StudyStore {
  private readonly db: Database.Database;

  private constructor(
    readonly location: string,
    options: { readonly?: boolean },
  ) {
    try {
      this.db = new Database(location, { readonly: options.readonly === true, fileMustExist: options.readonly === true });
    } catch (e) {
      throw new StoreError(`cannot open the study ${location}: ${(e as Error).message}`);
    }
    try {
      if (!options.readonly) {
        this.db.pragma('journal_mode = WAL');
        // FULL: a transaction is on disk when commit returns, power loss included
        this.db.pragma('synchronous = FULL');
      }
      this.db.pragma('foreign_keys = ON');
      this.db.pragma('busy_timeout = 5000');
      this.migrate(options.readonly ?? false);
    } catch (e) {
      this.db.close();
      if (e instanceof StoreError) throw e;
      throw new StoreError(`${location} is not a primer-search study: ${(e as Error).message}`);
    }
  }

  /** Opens (creating if needed) a study file and brings its schema up to date. */
  static open(location: string, options: { readonly?: boolean } = {}): SqliteStudyStore {
    if (options.readonly && !existsSync(location)) throw new StoreError(`no study at ${location}`);
    if (!options.readonly && location !== ':memory:') mkdirSync(dirname(location), { recursive: true });
    return new SqliteStudyStore(location, options);
  }

  /** The schema version the file is at (0 for an empty file). */
  schemaVersion(): number {
    const has = this.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get();
    if (!has) return 0;
    return (this.db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null }).v ?? 0;
  }

  private migrate(readonly: boolean): void {
    const tables = this.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>;
    const current = this.schemaVersion();
    if (current === 0 && tables.length > 0) {
      throw new StoreError(`${this.location} is a SQLite file but not a primer-search study (it has tables ${tables.map((t) => t.name).join(', ')})`);
    }
    if (current > SCHEMA_VERSION) {
      throw new StoreError(`${this.location} was written by a newer primer-search (schema ${current}; this one knows up to ${SCHEMA_VERSION})`);
    }
    if (current === SCHEMA_VERSION) return;
    if (readonly) throw new StoreError(`${this.location} needs a schema upgrade (${current} -> ${SCHEMA_VERSION}); open it for writing once`);
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)');
    for (const m of MIGRATIONS.filter((m) => m.version > current)) {
      this.db.transaction(() => {
        this.db.exec(m.sql);
        this.db.prepare('INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)').run(m.version, m.description, now());
      })();
    }
  }

  config(): Record<string, unknown> | undefined {
    const row = this.db.prepare('SELECT config FROM study WHERE id = 1').get() as { config: string } | undefined;
    return row ? JSON.parse(row.config) : undefined;
  }

  createStudy(config: Record<string, unknown>): void {
    if (this.config()) throw new StoreError(`${this.location} already holds a study`);
    this.db.prepare('INSERT INTO study (id, config, created_at) VALUES (1, ?, ?)').run(JSON.stringify(config), now());
  }

  updateStudy(config: Record<string, unknown>): void {
    if (!this.config()) throw new StoreError(`${this.location} holds no study to update`);
    this.db.prepare('UPDATE study SET config = ? WHERE id = 1').run(JSON.stringify(config));
  }

  advance(step: { told: number; candidates: CandidateRecord[]; strategyState: unknown }): void {
    const insert = this.db.prepare(
      'INSERT INTO candidates (id, hash, parent, mutations, dna, hurdles, created_at) VALUES (@id, @hash, @parent, @mutations, @dna, @hurdles, @createdAt)',
    );
    this.db.transaction(() => {
      const latest = this.latestSnapshot();
      if (latest && step.told < latest.told) {
        throw new StoreError(`the study has already been told ${latest.told} candidates; cannot go back to ${step.told}`);
      }
      for (const c of step.candidates) {
        insert.run({
          ...c,
          mutations: JSON.stringify(c.mutations),
          dna: JSON.stringify(c.dna),
          hurdles: JSON.stringify(c.hurdles),
        });
      }
      this.db
        .prepare('INSERT OR REPLACE INTO strategy_snapshots (told, state, created_at) VALUES (?, ?, ?)')
        .run(step.told, JSON.stringify(step.strategyState), now());
      this.db.prepare('DELETE FROM strategy_snapshots WHERE told < ? AND told % ? != 0').run(step.told, SNAPSHOT_EVERY);
    })();
  }

  latestSnapshot(): { told: number; state: unknown } | undefined {
    const row = this.db.prepare('SELECT told, state FROM strategy_snapshots ORDER BY told DESC LIMIT 1').get() as
      | { told: number; state: string }
      | undefined;
    return row ? { told: row.told, state: JSON.parse(row.state) } : undefined;
  }

  private views(rows: CandidateRow[]): CandidateView[] {
    const told = this.latestSnapshot()?.told ?? 0;
    const byHash = new Map(this.evaluations().map((e) => [e.hash, e]));
    return rows.map((r) => {
      const evaluation = byHash.get(r.hash) ?? null;
      return { ...candidateOfRow(r), told: r.id < told, reused: evaluation !== null && evaluation.candidate !== r.id, evaluation };
    });
  }

  candidates(): CandidateView[] {
    return this.views(this.db.prepare('SELECT * FROM candidates ORDER BY id').all() as CandidateRow[]);
  }

  candidate(id: number): CandidateView | undefined {
    const row = this.db.prepare('SELECT * FROM candidates WHERE id = ?').get(id) as CandidateRow | undefined;
    return row ? this.views([row])[0] : undefined;
  }

  evaluationOf(hash: string): EvaluationRecord | undefined {
    const row = this.db.prepare('SELECT * FROM evaluations WHERE hash = ?').get(hash) as EvaluationRow | undefined;
    return row ? evaluationOfRow(row) : undefined;
  }

  addEvaluation(e: NewEvaluation): EvaluationRecord {
    if (this.evaluationOf(e.hash)) throw new StoreError(`program ${e.hash} has already been evaluated`);
    const finishedAt = now();
    const info = this.db
      .prepare(
        `INSERT INTO evaluations (hash, candidate, status, fitness, hurdle, reason, curve, at_hurdles, steps, tokens, train_seconds, wall_seconds, budget, backend, machine, parameters, finished_at)
         VALUES (@hash, @candidate, @status, @fitness, @hurdle, @reason, @curve, @atHurdles, @steps, @tokens, @trainSeconds, @wallSeconds, @budget, @backend, @machine, @parameters, @finishedAt)`,
      )
      .run({ ...e, curve: JSON.stringify(e.curve), atHurdles: JSON.stringify(e.atHurdles), finishedAt });
    return { ...e, id: Number(info.lastInsertRowid), finishedAt };
  }

  evaluations(): EvaluationRecord[] {
    return (this.db.prepare('SELECT * FROM evaluations ORDER BY id').all() as EvaluationRow[]).map(evaluationOfRow);
  }

  close(): void {
    this.db.close();
  }
}

const now = () => new Date().toISOString();
